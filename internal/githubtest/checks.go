package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// CheckRun is a check run as GitHub shows it: its creation merged with every
// update since.
type CheckRun struct {
	ID                                int64
	Name, HeadSHA, Status, Conclusion string
	Title, Summary, Text              string
	HTMLURL, DetailsURL, ExternalID   string
	Actions                           []Action
	Updates                           int // PATCH requests applied
	StartedAt, CompletedAt            time.Time
	App                               string // slug of the App that made it; "" for Railyard
}

// Action is a check run button.
type Action struct {
	Label       string `json:"label"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

type checkRunInput struct {
	Name        *string    `json:"name"`
	HeadSHA     *string    `json:"head_sha"`
	DetailsURL  *string    `json:"details_url"`
	ExternalID  *string    `json:"external_id"`
	Status      *string    `json:"status"`
	Conclusion  *string    `json:"conclusion"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
	Output      *struct {
		Title   string `json:"title"`
		Summary string `json:"summary"`
		Text    string `json:"text"`
	} `json:"output"`
	Actions *[]Action `json:"actions"`
}

// CheckRuns returns the repository's check runs in creation order.
func (r *Repo) CheckRuns() []CheckRun {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	out := make([]CheckRun, 0, len(r.checkRuns))
	for _, c := range r.checkRuns {
		v := *c
		v.Actions = slices.Clone(c.Actions)
		out = append(out, v)
	}
	return out
}

func (s *Server) createCheckRun(w http.ResponseWriter, req *http.Request) {
	var in checkRunInput
	r, ok := s.repoWithBody(w, req, &in)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.commits[*in.HeadSHA] == nil {
		s.writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+*in.HeadSHA)
		return
	}
	id := s.newID()
	c := &CheckRun{ID: id, HeadSHA: *in.HeadSHA, Status: "queued", StartedAt: time.Now().UTC(),
		HTMLURL: fmt.Sprintf("%s%s/runs/%d", s.URL, r.FullName(), id)}
	if msg := c.apply(in); msg != "" {
		s.writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	r.checkRuns = append(r.checkRuns, c)
	s.writeJSON(w, http.StatusCreated, s.checkRunJSON(r, c))
}

func (s *Server) updateCheckRun(w http.ResponseWriter, req *http.Request) {
	var in checkRunInput
	r, ok := s.repoWithBody(w, req, &in)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := r.checkRun(pathID(req, "check_run_id"))
	if c == nil {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	next := *c
	if msg := next.apply(in); msg != "" {
		s.writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	next.Updates++
	*c = next
	s.writeJSON(w, http.StatusOK, s.checkRunJSON(r, c))
}

func (s *Server) getCheckRun(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := r.checkRun(pathID(req, "check_run_id"))
	if c == nil {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	s.writeJSON(w, http.StatusOK, s.checkRunJSON(r, c))
}

func (r *Repo) checkRun(id int64) *CheckRun {
	i := slices.IndexFunc(r.checkRuns, func(c *CheckRun) bool { return c.ID == id })
	if i < 0 {
		return nil
	}
	return r.checkRuns[i]
}

// apply merges a create or update body into c, with GitHub's rules: a
// conclusion completes the run, and a completed run needs a conclusion.
// It returns GitHub's complaint, if any.
func (c *CheckRun) apply(in checkRunInput) string {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.Name, in.Name)
	set(&c.DetailsURL, in.DetailsURL)
	set(&c.ExternalID, in.ExternalID)
	set(&c.Status, in.Status)
	set(&c.Conclusion, in.Conclusion)
	if in.Conclusion != nil {
		c.Status = "completed"
	}
	if in.Status != nil && *in.Status != "completed" && in.Conclusion == nil {
		c.Conclusion = ""
	}
	if c.Status == "completed" && c.Conclusion == "" {
		return "Invalid request.\n\nWhen the status is completed, a conclusion is required."
	}
	if in.StartedAt != nil {
		c.StartedAt = *in.StartedAt
	}
	switch {
	case in.CompletedAt != nil:
		c.CompletedAt = *in.CompletedAt
	case c.Status == "completed" && c.CompletedAt.IsZero():
		c.CompletedAt = time.Now().UTC()
	case c.Status != "completed":
		c.CompletedAt = time.Time{}
	}
	if in.Output != nil {
		c.Title, c.Summary, c.Text = in.Output.Title, in.Output.Summary, in.Output.Text
	}
	if in.Actions != nil {
		c.Actions = slices.Clone(*in.Actions)
	}
	return ""
}

// checkRunJSON is GitHub's check-run. Call with s.mu held.
func (s *Server) checkRunJSON(r *Repo, c *CheckRun) obj {
	api := s.api("repos/%s/check-runs/%d", r.FullName(), c.ID)
	app := s.appJSON(AppID, AppSlug, "Railyard")
	if c.App != "" {
		app = s.appJSON(ciAppID, c.App, c.App)
	}
	completed := any(nil)
	if !c.CompletedAt.IsZero() {
		completed = timestamp(c.CompletedAt)
	}
	return obj{
		"id": c.ID, "node_id": nodeID("CheckRun", c.ID), "name": c.Name, "head_sha": c.HeadSHA,
		"external_id": c.ExternalID, "url": api, "html_url": c.HTMLURL, "details_url": nullable(c.DetailsURL),
		"status": c.Status, "conclusion": nullable(c.Conclusion),
		"started_at": timestamp(c.StartedAt), "completed_at": completed,
		"output": obj{"title": nullable(c.Title), "summary": nullable(c.Summary), "text": nullable(c.Text),
			"annotations_count": 0, "annotations_url": api + "/annotations"},
		"check_suite": obj{"id": r.id + 1}, "app": app, "pull_requests": []obj{},
	}
}
