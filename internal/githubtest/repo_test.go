package githubtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"
)

func TestGetCommitResolvesRefs(t *testing.T) {
	st := newSetup(t)
	// Two commits sharing their first 8 hex digits make that prefix ambiguous.
	a := st.repo.CommitWithSHA("twins", "abcdef12"+strings.Repeat("1", 32), map[string]File{"t": {Content: "1"}})
	b := st.repo.CommitWithSHA("twins", "abcdef12"+strings.Repeat("2", 32), map[string]File{"t": {Content: "2"}})
	tests := []struct {
		ref     string
		wantSHA string // "" means GitHub's 422
	}{
		{st.second, st.second},
		{strings.ToUpper(st.second), st.second},
		{st.second[:7], st.second},
		{st.first[:12], st.first},
		{"main", st.second},
		{"refs/heads/main", st.second},
		{"feature/x", st.branch},
		{"v1", st.tagged},
		{"tags/v1", st.tagged},
		{a[:9], a},
		{b[:9], b},
		{"abcdef12", ""},    // ambiguous
		{"abcdef1", ""},     // ambiguous
		{st.second[:6], ""}, // too short
		{"no-such-branch", ""},
		{strings.Repeat("0", 40), ""},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			c, _, err := st.gh.Repositories.GetCommit(t.Context(), "octo", "app", tt.ref, nil)
			if tt.wantSHA == "" {
				if statusOf(err) != 422 || messageOf(err) != "No commit found for SHA: "+tt.ref {
					t.Errorf("error = %v, want 422 No commit found for SHA: %s", err, tt.ref)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.GetSHA() != tt.wantSHA {
				t.Errorf("SHA = %s, want %s", c.GetSHA(), tt.wantSHA)
			}
		})
	}
}

func TestCommitShape(t *testing.T) {
	st := newSetup(t)
	c, _, err := st.gh.Repositories.GetCommit(t.Context(), "octo", "app", "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Parents) != 1 || c.Parents[0].GetSHA() != st.first {
		t.Errorf("parents = %v, want [%s]", c.Parents, st.first)
	}
	if c.GetCommit().GetMessage() == "" || c.GetCommit().GetAuthor().GetDate().IsZero() || c.GetHTMLURL() != st.s.URL+"octo/app/commit/"+st.second {
		t.Errorf("commit = %+v", c)
	}
	if st.repo.Head("main") != st.second || st.repo.Head("feature/x") != st.branch || st.repo.Head("nope") != "" {
		t.Errorf("Head: main %s, feature/x %s, nope %q", st.repo.Head("main"), st.repo.Head("feature/x"), st.repo.Head("nope"))
	}
	// A new branch starts from the default branch.
	b, _, err := st.gh.Repositories.GetCommit(t.Context(), "octo", "app", "feature/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Parents) != 1 || b.Parents[0].GetSHA() != st.second {
		t.Errorf("feature/x parents = %v, want [%s]", b.Parents, st.second)
	}
}

func TestGetContents(t *testing.T) {
	st := newSetup(t)
	tests := []struct {
		name, path, ref string
		wantContent     string
		wantStatus      int
	}{
		{"default branch", ".github/railyard.yml", "", "branch: main\nstages: []\n", 0},
		{"older commit by SHA", ".github/railyard.yml", st.first, "branch: main\n", 0},
		{"tag", "old.txt", "v1", "only in the first commit\n", 0},
		{"abbreviated SHA", "old.txt", st.first[:7], "only in the first commit\n", 0},
		{"files replace the tree", "old.txt", "main", "", 404},
		{"absent file", "nope.yml", "", "", 404},
		{"unknown ref", ".github/railyard.yml", "nope", "", 404},
		{"long file", "docs/guide/intro.md", "main", strings.Repeat("long line of text ", 20) + "\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts *github.RepositoryContentGetOptions
			if tt.ref != "" {
				opts = &github.RepositoryContentGetOptions{Ref: tt.ref}
			}
			file, _, _, err := st.gh.Repositories.GetContents(t.Context(), "octo", "app", tt.path, opts)
			if tt.wantStatus != 0 {
				if statusOf(err) != tt.wantStatus {
					t.Errorf("error = %v, want status %d", err, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := file.GetContent()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantContent || file.GetPath() != tt.path || file.GetType() != "file" || file.GetSHA() != blobSHA(tt.wantContent) {
				t.Errorf("got %q (path %q, type %q, sha %s), want %q", got, file.GetPath(), file.GetType(), file.GetSHA(), tt.wantContent)
			}
			resp, err := http.Get(file.GetDownloadURL())
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(raw) != tt.wantContent {
				t.Errorf("download_url gives %q", raw)
			}
		})
	}
}

func TestGetContentsDirectoryAndSymlink(t *testing.T) {
	st := newSetup(t)
	_, dir, _, err := st.gh.Repositories.GetContents(t.Context(), "octo", "app", ".github", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range dir {
		names = append(names, e.GetType()+":"+e.GetPath())
	}
	if got, want := strings.Join(names, " "), "file:.github/railyard.yml dir:.github/workflows"; got != want {
		t.Errorf(".github listing = %s, want %s", got, want)
	}
	_, dir, _, err = st.gh.Repositories.GetContents(t.Context(), "octo", "app", "docs/guide", nil)
	if err != nil || len(dir) != 1 || dir[0].GetPath() != "docs/guide/intro.md" {
		t.Errorf("docs/guide listing = %v, %v", dir, err)
	}
	link, _, _, err := st.gh.Repositories.GetContents(t.Context(), "octo", "app", "current", nil)
	if err != nil || link.GetType() != "symlink" || link.GetTarget() != "deploy.sh" {
		t.Errorf("symlink = %+v, %v", link, err)
	}
}

type tarEntry struct {
	hdr  *tar.Header
	body string
}

func readTarball(t *testing.T, raw []byte) []tarEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, string(body)})
	}
}

func download(t *testing.T, st setup, ref string) (*http.Response, []byte) {
	t.Helper()
	u, _, err := st.gh.Repositories.GetArchiveLink(t.Context(), "octo", "app", github.Tarball, &github.RepositoryContentGetOptions{Ref: ref}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.String(), st.s.URL+"_fake/") {
		t.Errorf("archive link %s is not under %s_fake/", u, st.s.URL)
	}
	resp, err := st.gh.Client().Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

func TestTarballIsLikeGitHubs(t *testing.T) {
	st := newSetup(t)
	_, raw := download(t, st, "main")
	entries := readTarball(t, raw)
	root := "octo-app-" + st.second[:7] + "/"

	if len(entries) == 0 || entries[0].hdr.Typeflag != tar.TypeXGlobalHeader || entries[0].hdr.Name != "pax_global_header" ||
		entries[0].hdr.PAXRecords["comment"] != st.second {
		t.Fatalf("first entry = %+v, want pax_global_header with comment %s", entries[0].hdr, st.second)
	}
	type want struct {
		kind byte
		mode int64
		body string
	}
	wants := map[string]want{
		root:                                  {tar.TypeDir, 0o775, ""},
		root + ".github/":                     {tar.TypeDir, 0o775, ""},
		root + ".github/workflows/":           {tar.TypeDir, 0o775, ""},
		root + ".github/railyard.yml":         {tar.TypeReg, 0o644, "branch: main\nstages: []\n"},
		root + ".github/workflows/deploy.yml": {tar.TypeReg, 0o644, "on: workflow_dispatch\n"},
		root + "deploy.sh":                    {tar.TypeReg, 0o755, "#!/bin/sh\necho deploy v2\n"},
		root + "docs/":                        {tar.TypeDir, 0o775, ""},
		root + "docs/guide/":                  {tar.TypeDir, 0o775, ""},
		root + "docs/guide/intro.md":          {tar.TypeReg, 0o644, strings.Repeat("long line of text ", 20) + "\n"},
		root + "current":                      {tar.TypeSymlink, 0o777, ""},
	}
	seen := map[string]bool{}
	for _, e := range entries[1:] {
		w, ok := wants[e.hdr.Name]
		if !ok {
			t.Errorf("unexpected entry %s", e.hdr.Name)
			continue
		}
		seen[e.hdr.Name] = true
		if e.hdr.Typeflag != w.kind || e.hdr.Mode != w.mode || e.body != w.body {
			t.Errorf("%s: type %c mode %o body %q, want type %c mode %o body %q", e.hdr.Name, e.hdr.Typeflag, e.hdr.Mode, e.body, w.kind, w.mode, w.body)
		}
		if dir := e.hdr.Name[:strings.LastIndex(strings.TrimSuffix(e.hdr.Name, "/"), "/")+1]; dir != "" && !seen[dir] {
			t.Errorf("%s comes before its directory %s", e.hdr.Name, dir)
		}
	}
	if len(seen) != len(wants) {
		t.Errorf("archive has %d of the %d expected entries", len(seen), len(wants))
	}
	if link := entries[len(entries)-1]; link.hdr.Name == root+"current" && link.hdr.Linkname != "deploy.sh" {
		t.Errorf("symlink points at %q", link.hdr.Linkname)
	}
}

func TestTarballByRef(t *testing.T) {
	st := newSetup(t)
	hostile := []byte("not even gzip")
	st.repo.SetTarball(st.first, hostile)
	tests := []struct {
		ref     string
		wantSHA string
		wantRaw []byte
	}{
		{"feature/x", st.branch, nil},
		{st.second[:8], st.second, nil},
		{"v1", st.first, hostile},
		{st.first, st.first, hostile},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			_, raw := download(t, st, tt.ref)
			if tt.wantRaw != nil {
				if !bytes.Equal(raw, tt.wantRaw) {
					t.Errorf("got %q, want the exact bytes set", raw)
				}
				return
			}
			if e := readTarball(t, raw); e[0].hdr.PAXRecords["comment"] != tt.wantSHA {
				t.Errorf("archive of %s is commit %s, want %s", tt.ref, e[0].hdr.PAXRecords["comment"], tt.wantSHA)
			}
		})
	}
	if _, _, err := st.gh.Repositories.GetArchiveLink(t.Context(), "octo", "app", github.Tarball, &github.RepositoryContentGetOptions{Ref: "nope"}, 0); err == nil {
		t.Error("archive link for an unknown ref succeeded")
	}
}

func TestCompare(t *testing.T) {
	st := newSetup(t)
	tests := []struct {
		base, head        string
		status            string
		aheadBy, behindBy int
	}{
		{st.first, st.second, "ahead", 1, 0},
		{"main", "v1", "behind", 0, 1},
		{"main", "main", "identical", 0, 0},
		{"v1", "feature/x", "ahead", 2, 0},
	}
	diverged := st.repo.Commit("hotfix", map[string]File{"z": {Content: "z"}})
	tests = append(tests, struct {
		base, head        string
		status            string
		aheadBy, behindBy int
	}{diverged, "feature/x", "diverged", 1, 1})
	for _, tt := range tests {
		t.Run(tt.base+"..."+tt.head, func(t *testing.T) {
			c, _, err := st.gh.Repositories.CompareCommits(t.Context(), "octo", "app", tt.base, tt.head, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.GetStatus() != tt.status || c.GetAheadBy() != tt.aheadBy || c.GetBehindBy() != tt.behindBy || len(c.Commits) != tt.aheadBy {
				t.Errorf("got %s +%d -%d (%d commits), want %s +%d -%d", c.GetStatus(), c.GetAheadBy(), c.GetBehindBy(), len(c.Commits), tt.status, tt.aheadBy, tt.behindBy)
			}
		})
	}
}

func TestPullRequest(t *testing.T) {
	st := newSetup(t)
	st.repo.AddPull(7, "feature/x")
	pr, _, err := st.gh.PullRequests.Get(t.Context(), "octo", "app", 7)
	if err != nil {
		t.Fatal(err)
	}
	if pr.GetHead().GetSHA() != st.branch || pr.GetHead().GetRef() != "feature/x" || pr.GetBase().GetRef() != "main" || pr.GetState() != "open" {
		t.Errorf("pull = head %s@%s base %s state %s", pr.GetHead().GetRef(), pr.GetHead().GetSHA(), pr.GetBase().GetRef(), pr.GetState())
	}
	next := st.repo.Commit("feature/x", map[string]File{"README.md": {Content: "v2\n"}})
	if pr, _, _ := st.gh.PullRequests.Get(t.Context(), "octo", "app", 7); pr.GetHead().GetSHA() != next {
		t.Errorf("head after a push = %s, want %s", pr.GetHead().GetSHA(), next)
	}
	if _, _, err := st.gh.PullRequests.Get(t.Context(), "octo", "app", 8); statusOf(err) != 404 {
		t.Errorf("unknown pull: error = %v, want 404", err)
	}
}

func TestGetRepository(t *testing.T) {
	st := newSetup(t)
	r, _, err := st.gh.Repositories.Get(t.Context(), "OCTO", "App")
	if err != nil {
		t.Fatal(err)
	}
	if r.GetID() != st.repo.ID() || r.GetFullName() != "octo/app" || r.GetDefaultBranch() != "main" || r.GetOwner().GetLogin() != "octo" || r.GetHTMLURL() != st.s.URL+"octo/app" {
		t.Errorf("repository = id %d %s default %s owner %s html %s", r.GetID(), r.GetFullName(), r.GetDefaultBranch(), r.GetOwner().GetLogin(), r.GetHTMLURL())
	}
}
