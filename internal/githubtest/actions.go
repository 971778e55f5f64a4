package githubtest

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WorkflowRun is a GitHub Actions run started through the API.
type WorkflowRun struct {
	ID, WorkflowID       int64
	RunNumber            int
	Path                 string // ".github/workflows/deploy.yml"
	HeadBranch, HeadSHA  string
	Event                string // "workflow_dispatch"
	Status, Conclusion   string
	Inputs               map[string]any
	CancelRequested      bool
	HTMLURL              string
	CreatedAt, UpdatedAt time.Time
}

// WorkflowRuns returns the runs dispatched so far, oldest first.
func (r *Repo) WorkflowRuns() []WorkflowRun {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	out := make([]WorkflowRun, 0, len(r.runs))
	for _, run := range r.runs {
		v := *run
		v.Inputs = maps.Clone(run.Inputs)
		out = append(out, v)
	}
	return out
}

// DispatchWithoutRunDetails makes workflow dispatches answer 204 with no
// run, as GitHub did before return_run_details, so the bot has to find
// the run it started.
func (r *Repo) DispatchWithoutRunDetails() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.withoutRunDetails = true
}

// StartRun moves run id to in_progress, as when a runner picks it up.
func (r *Repo) StartRun(id int64) { r.setRun(id, "in_progress", "") }

// CompleteRun completes run id with conclusion ("success", "failure",
// "cancelled", …).
func (r *Repo) CompleteRun(id int64, conclusion string) { r.setRun(id, "completed", conclusion) }

func (r *Repo) setRun(id int64, status, conclusion string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	run := r.run(id)
	if run == nil {
		r.s.t.Errorf("githubtest: no workflow run %d in %s", id, r.FullName())
		return
	}
	run.Status, run.Conclusion, run.UpdatedAt = status, conclusion, time.Now().UTC()
}

func (r *Repo) run(id int64) *WorkflowRun {
	i := slices.IndexFunc(r.runs, func(run *WorkflowRun) bool { return run.ID == id })
	if i < 0 {
		return nil
	}
	return r.runs[i]
}

// workflowPath turns a workflow_id (a file name or a numeric ID) into the
// workflow's path. Call with s.mu held.
func (r *Repo) workflowPath(id string) string {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		for p, wid := range r.workflowIDs {
			if wid == n {
				return p
			}
		}
		return ""
	}
	return ".github/workflows/" + id
}

func (r *Repo) workflowID(p string) int64 {
	id, ok := r.workflowIDs[p]
	if !ok {
		id = r.s.newID()
		r.workflowIDs[p] = id
	}
	return id
}

// dispatchWorkflow queues a run. Like GitHub, ref must be a branch or tag
// (not a SHA) and the workflow file must exist there.
func (s *Server) dispatchWorkflow(w http.ResponseWriter, req *http.Request) {
	var in struct {
		Ref              string         `json:"ref"`
		Inputs           map[string]any `json:"inputs"`
		ReturnRunDetails bool           `json:"return_run_details"`
	}
	r, ok := s.repoWithBody(w, req, &in)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	branch := strings.TrimPrefix(strings.TrimPrefix(in.Ref, "refs/heads/"), "refs/tags/")
	sha, ok := r.branches[branch]
	if !ok {
		sha, ok = r.tags[branch]
	}
	if !ok {
		s.writeError(w, http.StatusUnprocessableEntity, "No ref found for: "+in.Ref)
		return
	}
	p := r.workflowPath(req.PathValue("workflow_id"))
	if _, exists := r.commits[sha].files[p]; !exists {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	wid := r.workflowID(p)
	number := 1
	for _, run := range r.runs {
		if run.WorkflowID == wid {
			number++
		}
	}
	now := time.Now().UTC()
	run := &WorkflowRun{
		ID: s.newID(), WorkflowID: wid, RunNumber: number, Path: p, HeadBranch: branch, HeadSHA: sha,
		Event: "workflow_dispatch", Status: "queued", Inputs: in.Inputs, CreatedAt: now, UpdatedAt: now,
	}
	run.HTMLURL = fmt.Sprintf("%s%s/actions/runs/%d", s.URL, r.FullName(), run.ID)
	r.runs = append(r.runs, run)
	if in.ReturnRunDetails && !r.withoutRunDetails {
		s.writeJSON(w, http.StatusOK, obj{"workflow_run_id": run.ID, "html_url": run.HTMLURL,
			"run_url": s.api("repos/%s/actions/runs/%d", r.FullName(), run.ID)})
		return
	}
	s.writeJSON(w, http.StatusNoContent, nil)
}

// listWorkflowRuns serves both the repository's and one workflow's runs,
// newest first, with GitHub's filters.
func (s *Server) listWorkflowRuns(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := req.URL.Query()
	created, err := parseCreated(q.Get("created"))
	if err != nil {
		s.writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	wid := int64(-1)
	if id := req.PathValue("workflow_id"); id != "" {
		p := r.workflowPath(id)
		if p == "" {
			s.writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		wid = r.workflowID(p)
	}
	var runs []obj
	for _, run := range slices.Backward(r.runs) {
		if (wid < 0 || run.WorkflowID == wid) && match(q, "head_sha", run.HeadSHA) && match(q, "event", run.Event) &&
			match(q, "branch", run.HeadBranch) && match(q, "actor", BotLogin) &&
			(!q.Has("status") || q.Get("status") == run.Status || q.Get("status") == run.Conclusion) &&
			created(run.CreatedAt) {
			runs = append(runs, s.runJSON(r, run))
		}
	}
	s.writeJSON(w, http.StatusOK, obj{"total_count": len(runs), "workflow_runs": paginate(w, req, runs)})
}

// parseCreated reads GitHub's date filter: "X", ">=X", ">X", "<=X", "<X" or
// "X..Y" ("*" for an open end), where X is a date or a date-time.
func parseCreated(v string) (func(time.Time) bool, error) {
	if v == "" {
		return func(time.Time) bool { return true }, nil
	}
	// span turns a date into its whole day and a date-time into its second.
	span := func(s string) (lo, hi time.Time, err error) {
		if s == "*" {
			return time.Time{}, time.Unix(1<<40, 0), nil
		}
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return t, t.AddDate(0, 0, 1), nil
		}
		t, err := time.Parse(time.RFC3339, s)
		return t, t.Add(time.Second), err
	}
	inside := func(t, lo, hi time.Time) bool { return !t.Before(lo) && t.Before(hi) }
	if a, b, ok := strings.Cut(v, ".."); ok {
		lo, _, err1 := span(a)
		_, hi, err2 := span(b)
		if a == "*" {
			lo = time.Time{}
		}
		return func(t time.Time) bool { return inside(t, lo, hi) }, errors.Join(err1, err2)
	}
	for _, op := range []string{">=", "<=", ">", "<"} {
		if rest, ok := strings.CutPrefix(v, op); ok {
			lo, hi, err := span(rest)
			return func(t time.Time) bool {
				switch op {
				case ">=":
					return !t.Before(lo)
				case ">":
					return !t.Before(hi)
				case "<=":
					return t.Before(hi)
				}
				return t.Before(lo)
			}, err
		}
	}
	lo, hi, err := span(v)
	return func(t time.Time) bool { return inside(t, lo, hi) }, err
}

func (s *Server) getWorkflowRun(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	run := r.run(pathID(req, "run_id"))
	if run == nil {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	s.writeJSON(w, http.StatusOK, s.runJSON(r, run))
}

func (s *Server) cancelWorkflowRun(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	run := r.run(pathID(req, "run_id"))
	switch {
	case run == nil:
		s.writeError(w, http.StatusNotFound, "Not Found")
	case run.Status == "completed":
		s.writeError(w, http.StatusConflict, "Cannot cancel a workflow run that is completed.")
	default:
		run.CancelRequested = true
		s.writeJSON(w, http.StatusAccepted, obj{})
	}
}

// runJSON is GitHub's workflow-run. Call with s.mu held.
func (s *Server) runJSON(r *Repo, run *WorkflowRun) obj {
	api := s.api("repos/%s/actions/runs/%d", r.FullName(), run.ID)
	name := strings.TrimSuffix(path.Base(run.Path), path.Ext(run.Path))
	repo := s.repoJSON(r)
	return obj{
		"id": run.ID, "node_id": nodeID("WorkflowRun", run.ID), "name": name, "display_title": name,
		"head_branch": run.HeadBranch, "head_sha": run.HeadSHA, "path": run.Path, "run_number": run.RunNumber,
		"run_attempt": 1, "event": run.Event, "status": run.Status, "conclusion": nullable(run.Conclusion),
		"workflow_id": run.WorkflowID, "check_suite_id": run.ID + 1, "url": api, "html_url": run.HTMLURL,
		"pull_requests": []obj{}, "created_at": timestamp(run.CreatedAt), "updated_at": timestamp(run.UpdatedAt),
		"run_started_at": timestamp(run.CreatedAt), "actor": s.userJSON(BotLogin), "triggering_actor": s.userJSON(BotLogin),
		"jobs_url": api + "/jobs", "logs_url": api + "/logs", "artifacts_url": api + "/artifacts",
		"cancel_url": api + "/cancel", "rerun_url": api + "/rerun",
		"check_suite_url": s.api("repos/%s/check-suites/%d", r.FullName(), run.ID+1),
		"workflow_url":    s.api("repos/%s/actions/workflows/%d", r.FullName(), run.WorkflowID),
		"head_commit":     simpleCommitJSON(r.commits[run.HeadSHA]), "repository": repo, "head_repository": repo,
	}
}
