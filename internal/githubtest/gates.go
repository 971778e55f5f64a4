package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// What a deploy gate reads: pull requests from forks and their reviews,
// other apps' check runs and commit statuses, and the checks a branch
// requires through protection or rulesets.

// ciAppID is the App of check runs AddCheckRun adds: not Railyard.
const ciAppID int64 = 2

type gateState struct {
	forks    map[int]string // pull number → head repository full name
	reviews  map[int][]*review
	statuses map[string][]*commitStatus // by SHA, oldest first
	protect  map[string][]string        // branch → contexts branch protection requires
	rulesets map[string][]string        // branch → contexts a ruleset requires
}

type review struct {
	id                    int64
	user, state, commitID string
	at                    time.Time
}

type commitStatus struct {
	id             int64
	context, state string
	at             time.Time
}

func (g *gateState) init() {
	if g.forks == nil {
		g.forks, g.reviews, g.statuses = map[int]string{}, map[int][]*review{}, map[string][]*commitStatus{}
		g.protect, g.rulesets = map[string][]string{}, map[string][]string{}
	}
}

// SetPullFork makes pull request number's head live in the repository
// headRepo ("owner/name"), a fork. Its commits stay reachable here, as
// GitHub keeps them under refs/pull/.
func (r *Repo) SetPullFork(number int, headRepo string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.gates.init()
	r.gates.forks[number] = headRepo
}

// AddReview adds a review by user (state APPROVED, CHANGES_REQUESTED,
// COMMENTED, DISMISSED) of pull request number's commit commitID.
func (r *Repo) AddReview(number int, user, state, commitID string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.gates.init()
	r.gates.reviews[number] = append(r.gates.reviews[number], &review{id: r.s.newID(), user: user, state: state, commitID: commitID, at: time.Now().UTC()})
}

// AddCheckRun adds a check run of another App (a CI service) on sha; an
// empty conclusion leaves it in status.
func (r *Repo) AddCheckRun(sha, name, status, conclusion string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	id := r.s.newID()
	c := &CheckRun{ID: id, Name: name, HeadSHA: sha, Status: status, Conclusion: conclusion, App: "ci",
		StartedAt: time.Now().UTC(), HTMLURL: fmt.Sprintf("%s%s/runs/%d", r.s.URL, r.FullName(), id)}
	if conclusion != "" {
		c.Status, c.CompletedAt = "completed", c.StartedAt
	}
	r.checkRuns = append(r.checkRuns, c)
}

// SetStatus adds a commit status (error, failure, pending, success) of
// context on sha; the newest of a context counts.
func (r *Repo) SetStatus(sha, context, state string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.gates.init()
	r.gates.statuses[sha] = append(r.gates.statuses[sha], &commitStatus{id: r.s.newID(), context: context, state: state, at: time.Now().UTC()})
}

// ProtectBranch makes branch protection require the checks contexts.
func (r *Repo) ProtectBranch(branch string, contexts ...string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.gates.init()
	r.gates.protect[branch] = slices.Clone(contexts)
}

// AddRulesetChecks makes a ruleset require the checks contexts on branch.
func (r *Repo) AddRulesetChecks(branch string, contexts ...string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.gates.init()
	r.gates.rulesets[branch] = append(r.gates.rulesets[branch], contexts...)
}

func (s *Server) listReviews(w http.ResponseWriter, req *http.Request) {
	r, n, _, ok := s.pullOf(w, req)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	out := []obj{}
	pull := s.api("repos/%s/pulls/%d", r.FullName(), n)
	for _, rv := range r.gates.reviews[n] {
		web := fmt.Sprintf("%s%s/pull/%d#pullrequestreview-%d", s.URL, r.FullName(), n, rv.id)
		out = append(out, obj{
			"id": rv.id, "node_id": nodeID("PullRequestReview", rv.id), "user": s.userJSON(rv.user),
			"body": "", "state": rv.state, "commit_id": rv.commitID, "html_url": web, "pull_request_url": pull,
			"_links":             obj{"html": obj{"href": web}, "pull_request": obj{"href": pull}},
			"author_association": "COLLABORATOR", "submitted_at": timestamp(rv.at),
		})
	}
	s.writeJSON(w, http.StatusOK, paginate(w, req, out))
}

// getCombinedStatus answers the newest status of each context of a commit.
func (s *Server) getCombinedStatus(w http.ResponseWriter, req *http.Request) {
	r, c, ok := s.refCommit(w, req, http.StatusNotFound)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	var newest []*commitStatus
	for _, st := range slices.Backward(r.gates.statuses[c.sha]) {
		if !slices.ContainsFunc(newest, func(o *commitStatus) bool { return o.context == st.context }) {
			newest = append(newest, st)
		}
	}
	state := "success"
	if len(newest) == 0 {
		state = "pending"
	}
	list := []obj{}
	for _, st := range newest {
		switch {
		case st.state == "failure" || st.state == "error":
			state = "failure"
		case st.state == "pending" && state == "success":
			state = "pending"
		}
		list = append(list, obj{
			"id": st.id, "node_id": nodeID("StatusContext", st.id), "state": st.state, "context": st.context,
			"description": nil, "target_url": nil, "required": false,
			"avatar_url": s.api("avatars/u/%d?v=4", ciAppID), "url": s.api("repos/%s/statuses/%s", r.FullName(), c.sha),
			"created_at": timestamp(st.at), "updated_at": timestamp(st.at),
		})
	}
	repo := s.repoJSON(r)
	s.writeJSON(w, http.StatusOK, obj{
		"state": state, "statuses": paginate(w, req, list), "sha": c.sha, "total_count": len(list), "repository": repo,
		"commit_url": s.api("repos/%s/commits/%s", r.FullName(), c.sha), "url": s.api("repos/%s/commits/%s/status", r.FullName(), c.sha),
	})
}

// getBranch answers a branch with the checks its protection requires.
func (s *Server) getBranch(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := req.PathValue("branch")
	sha, ok := r.branches[name]
	if !ok {
		s.writeError(w, http.StatusNotFound, "Branch not found")
		return
	}
	api := s.api("repos/%s/branches/%s", r.FullName(), name)
	contexts, protected := r.gates.protect[name]
	checks := []obj{}
	for _, c := range contexts {
		checks = append(checks, obj{"context": c, "app_id": nil})
	}
	protection := obj{"enabled": protected, "required_status_checks": obj{
		"enforcement_level": map[bool]string{true: "non_admins", false: "off"}[protected],
		"contexts":          append([]string{}, contexts...), "checks": checks,
	}}
	s.writeJSON(w, http.StatusOK, obj{
		"name": name, "commit": s.commitJSON(r, r.commits[sha]),
		"_links":    obj{"html": s.URL + r.FullName() + "/tree/" + name, "self": api},
		"protected": protected, "protection": protection, "protection_url": api + "/protection",
	})
}

// getBranchRules answers the rules that apply to a branch: here only
// rulesets' required status checks.
func (s *Server) getBranchRules(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rules := []obj{}
	if contexts := r.gates.rulesets[req.PathValue("branch")]; len(contexts) > 0 {
		checks := []obj{}
		for _, c := range contexts {
			checks = append(checks, obj{"context": c})
		}
		rules = append(rules, obj{
			"type":                "required_status_checks",
			"parameters":          obj{"required_status_checks": checks, "strict_required_status_checks_policy": false},
			"ruleset_source_type": "Repository", "ruleset_source": r.FullName(), "ruleset_id": r.id,
		})
	}
	s.writeJSON(w, http.StatusOK, paginate(w, req, rules))
}

// forkSide is the head of a pull request from the fork fullName. Call with
// s.mu held.
func (s *Server) forkSide(r *Repo, fullName, branch string) obj {
	owner, name, _ := strings.Cut(fullName, "/")
	repo := s.repoJSON(r)
	id := r.id + 100000
	repo["id"], repo["node_id"], repo["name"], repo["full_name"], repo["fork"] = id, nodeID("Repository", id), name, fullName, true
	repo["owner"], repo["html_url"], repo["url"] = s.userJSON(owner), s.URL+fullName, s.api("repos/%s", fullName)
	return obj{"label": owner + ":" + branch, "ref": branch, "sha": r.branches[branch], "user": s.userJSON(owner), "repo": repo}
}

// refCommit finds the request's repository and the commit its {ref} names,
// answering missing (GitHub's status for that endpoint) when there is none.
// When ok, s.mu is held and the caller unlocks it.
func (s *Server) refCommit(w http.ResponseWriter, req *http.Request, missing int) (*Repo, *commit, bool) {
	r, ok := s.repo(w, req)
	if !ok {
		return nil, nil, false
	}
	s.mu.Lock()
	c, err := r.resolve(req.PathValue("ref"))
	if err != nil {
		s.mu.Unlock()
		s.writeError(w, missing, "No commit found for SHA: "+req.PathValue("ref"))
		return nil, nil, false
	}
	return r, c, true
}

// pullOf finds the request's repository and its pull request {pull_number}
// with its head branch, answering 404 when there is none. When ok, s.mu is
// held and the caller unlocks it.
func (s *Server) pullOf(w http.ResponseWriter, req *http.Request) (r *Repo, n int, branch string, ok bool) {
	if r, ok = s.repo(w, req); !ok {
		return nil, 0, "", false
	}
	s.mu.Lock()
	n = int(pathID(req, "pull_number"))
	if branch, ok = r.pulls[n]; !ok {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "Not Found")
	}
	return r, n, branch, ok
}
