package githubtest

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultInstallationID is the installation AddRepo registers; it is
// installation.id in the testdata/webhooks payloads that have one.
const DefaultInstallationID int64 = 1

// Repo is a repository of the fake. Its methods are safe for concurrent use
// with the server.
type Repo struct {
	s              *Server
	owner, name    string
	id             int64
	defaultBranch  string
	installationID int64
	created        time.Time

	commits  map[string]*commit // by full SHA
	branches map[string]string  // name → SHA
	tags     map[string]string  // name → SHA
	tarballs map[string][]byte  // SHA → raw archive
	perms    map[string]permission
	pulls    map[int]string // number → head branch

	checkRuns   []*CheckRun
	deployments []*Deployment
	comments    []*Comment
	reactions   map[int64][]reaction
	runs        []*WorkflowRun
	workflowIDs map[string]int64 // workflow file path → ID
	gates       gateState
	// withoutRunDetails makes dispatch answer 204 whatever the request
	// asks, as GitHub Enterprise Server did before return_run_details.
	withoutRunDetails bool
}

// File is one file in a commit.
type File struct {
	Content string
	// Mode is 0644 when zero; 0755 makes the file executable; 0120000 makes it
	// a symbolic link to Content.
	Mode int64
}

const modeSymlink = 0o120000

func (f File) mode() int64 {
	if f.Mode == 0 {
		return 0o644
	}
	return f.Mode
}

type commit struct {
	sha, parent string
	id          int64
	message     string
	files       map[string]File
	at          time.Time
}

func (c *commit) paths() []string { return slices.Sorted(maps.Keys(c.files)) }

// tree is a stable stand-in for the commit's tree SHA.
func (c *commit) tree() string {
	h := sha1.New()
	for _, p := range c.paths() {
		fmt.Fprintf(h, "%o %s\x00%s\n", c.files[p].mode(), p, blobSHA(c.files[p].Content))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// blobSHA is the git blob ID of content, as GitHub reports it.
func blobSHA(content string) string {
	sum := sha1.Sum(fmt.Appendf(nil, "blob %d\x00%s", len(content), content))
	return hex.EncodeToString(sum[:])
}

// AddRepo creates the repository fullName ("owner/name") with an empty
// default branch, accessible to installation DefaultInstallationID. Adding
// an existing repository returns it.
func (s *Server) AddRepo(fullName, defaultBranch string) *Repo {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") || defaultBranch == "" {
		s.t.Fatalf("githubtest: AddRepo(%q, %q): want \"owner/name\" and a branch", fullName, defaultBranch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repos[strings.ToLower(fullName)]; ok {
		return r
	}
	r := &Repo{
		s: s, owner: owner, name: name, id: s.newID(), defaultBranch: defaultBranch,
		installationID: DefaultInstallationID, created: time.Now(),
		commits: map[string]*commit{}, branches: map[string]string{}, tags: map[string]string{},
		tarballs: map[string][]byte{}, perms: map[string]permission{}, pulls: map[int]string{},
		reactions: map[int64][]reaction{}, workflowIDs: map[string]int64{},
	}
	s.repos[strings.ToLower(fullName)] = r
	return r
}

// ID is the repository's numeric ID (repository.id in webhooks).
func (r *Repo) ID() int64 { return r.id }

// FullName is "owner/name".
func (r *Repo) FullName() string { return r.owner + "/" + r.name }

// SetInstallation moves the repository to another installation: only that
// installation's tokens can reach it.
func (r *Repo) SetInstallation(id int64) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.installationID = id
}

// Commit adds a commit on branch whose tree is exactly files, and returns its
// SHA. Its parent is the branch head or, for a new branch, the default
// branch head.
func (r *Repo) Commit(branch string, files map[string]File) string {
	r.s.mu.Lock()
	parent := r.parentFor(branch)
	r.s.mu.Unlock()
	sum := sha1.Sum(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d\x00%d", r.FullName(), branch, parent, r.s.newID(), time.Now().UnixNano()))
	return r.CommitWithSHA(branch, hex.EncodeToString(sum[:]), files)
}

// CommitWithSHA is Commit with a chosen SHA, for tests of abbreviated SHAs.
func (r *Repo) CommitWithSHA(branch, sha string, files map[string]File) string {
	if !fullSHA.MatchString(sha) {
		r.s.t.Fatalf("githubtest: CommitWithSHA(%q, %q): not a 40-hex SHA", branch, sha)
	}
	for p, f := range files {
		if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") {
			r.s.t.Fatalf("githubtest: Commit: file path %q is not clean and relative", p)
		}
		if m := f.mode(); m != 0o644 && m != 0o755 && m != modeSymlink {
			r.s.t.Fatalf("githubtest: Commit: file %q mode %o: want 0644, 0755 or 0120000", p, m)
		}
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if _, dup := r.commits[sha]; dup {
		r.s.t.Fatalf("githubtest: Commit: %s already exists", sha)
	}
	c := &commit{
		sha: sha, parent: r.parentFor(branch), id: r.s.newID(), files: maps.Clone(files),
		message: fmt.Sprintf("Commit %d on %s", len(r.commits)+1, branch),
		at:      time.Now().UTC().Truncate(time.Second),
	}
	r.commits[sha] = c
	r.branches[branch] = sha
	return sha
}

func (r *Repo) parentFor(branch string) string {
	if head, ok := r.branches[branch]; ok {
		return head
	}
	return r.branches[r.defaultBranch]
}

// Tag points the tag name at sha.
func (r *Repo) Tag(name, sha string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.commits[sha] == nil {
		r.s.t.Errorf("githubtest: Tag(%q, %q): no such commit", name, sha)
		return
	}
	r.tags[name] = sha
}

// Head returns the SHA at the head of branch, or "" if there is none.
func (r *Repo) Head(branch string) string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.branches[branch]
}

// SetTarball makes the tarball of sha these exact bytes instead of the one
// built from the commit, for tests of hostile archives.
func (r *Repo) SetTarball(sha string, raw []byte) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.tarballs[sha] = slices.Clone(raw)
}

// AddPull registers pull request number with its head on branch.
func (r *Repo) AddPull(number int, headBranch string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.pulls[number] = headBranch
}

var (
	fullSHA  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	shortSHA = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

	errNoCommit  = errors.New("no commit found")
	errAmbiguous = errors.New("ambiguous abbreviated SHA")
)

// resolve turns a full or abbreviated SHA, a branch or a tag (bare or as
// refs/heads/…, heads/…, refs/tags/…, tags/…) into a commit. Call with s.mu held.
func (r *Repo) resolve(ref string) (*commit, error) {
	if c := r.commits[strings.ToLower(ref)]; c != nil {
		return c, nil
	}
	for _, refs := range []struct {
		m        map[string]string
		prefixes []string
	}{
		{r.branches, []string{"refs/heads/", "heads/", ""}},
		{r.tags, []string{"refs/tags/", "tags/", ""}},
	} {
		for _, p := range refs.prefixes {
			if name, ok := strings.CutPrefix(ref, p); ok {
				if sha, ok := refs.m[name]; ok {
					return r.commits[sha], nil
				}
			}
		}
	}
	if !shortSHA.MatchString(strings.ToLower(ref)) {
		return nil, errNoCommit
	}
	var found *commit
	for sha, c := range r.commits {
		if strings.HasPrefix(sha, strings.ToLower(ref)) {
			if found != nil {
				return nil, errAmbiguous
			}
			found = c
		}
	}
	if found == nil {
		return nil, errNoCommit
	}
	return found, nil
}

// isAncestor reports whether a is b or one of its ancestors. Call with s.mu held.
func (r *Repo) isAncestor(a, b string) bool {
	for sha := b; sha != ""; sha = r.commits[sha].parent {
		if sha == a {
			return true
		}
	}
	return false
}

// repo finds the repository of the request and checks that the request's
// installation may reach it; it answers 404 like GitHub otherwise. Call
// without s.mu held.
func (s *Server) repo(w http.ResponseWriter, req *http.Request) (*Repo, bool) {
	s.mu.Lock()
	r := s.repos[strings.ToLower(req.PathValue("owner")+"/"+req.PathValue("repo"))]
	s.mu.Unlock()
	if r == nil {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return nil, false
	}
	if inst, ok := req.Context().Value(installationKey{}).(int64); ok {
		s.mu.Lock()
		allowed := inst == r.installationID
		s.mu.Unlock()
		if !allowed {
			s.writeError(w, http.StatusNotFound, "Not Found")
			return nil, false
		}
	}
	return r, true
}
