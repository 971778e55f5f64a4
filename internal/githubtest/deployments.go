package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Deployment is a deployment as GitHub shows it, with its statuses oldest
// first.
type Deployment struct {
	ID                          int64
	Ref, SHA, Environment, Task string
	Description                 string
	Production, Transient       bool
	Payload                     json.RawMessage // as sent; nil when absent
	AutoMerge                   *bool           // nil when absent (GitHub's default is true)
	RequiredContexts            []string        // nil when absent, empty when sent as []
	Statuses                    []DeploymentStatus
	CreatedAt                   time.Time
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	ID                                int64
	State, Description, Environment   string
	LogURL, TargetURL, EnvironmentURL string
	AutoInactive                      *bool // nil when absent, and on the inactive statuses GitHub adds itself
	CreatedAt                         time.Time
}

type deploymentInput struct {
	Ref                   string          `json:"ref"`
	Task                  *string         `json:"task"`
	AutoMerge             *bool           `json:"auto_merge"`
	RequiredContexts      *[]string       `json:"required_contexts"`
	Payload               json.RawMessage `json:"payload"`
	Environment           *string         `json:"environment"`
	Description           *string         `json:"description"`
	TransientEnvironment  *bool           `json:"transient_environment"`
	ProductionEnvironment *bool           `json:"production_environment"`
}

type statusInput struct {
	State          string  `json:"state"`
	TargetURL      *string `json:"target_url"`
	LogURL         *string `json:"log_url"`
	Description    *string `json:"description"`
	Environment    *string `json:"environment"`
	EnvironmentURL *string `json:"environment_url"`
	AutoInactive   *bool   `json:"auto_inactive"`
}

// Deployments returns the repository's deployments in creation order.
func (r *Repo) Deployments() []Deployment {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	out := make([]Deployment, 0, len(r.deployments))
	for _, d := range r.deployments {
		v := *d
		v.Payload = slices.Clone(d.Payload)
		v.RequiredContexts = slices.Clone(d.RequiredContexts)
		v.Statuses = slices.Clone(d.Statuses)
		out = append(out, v)
	}
	return out
}

func (r *Repo) deployment(id int64) *Deployment {
	i := slices.IndexFunc(r.deployments, func(d *Deployment) bool { return d.ID == id })
	if i < 0 {
		return nil
	}
	return r.deployments[i]
}

func (s *Server) createDeployment(w http.ResponseWriter, req *http.Request) {
	var in deploymentInput
	r, ok := s.repoWithBody(w, req, &in)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := r.resolve(in.Ref)
	if err != nil {
		s.writeError(w, http.StatusUnprocessableEntity, "No ref found for: "+in.Ref)
		return
	}
	d := &Deployment{
		ID: s.newID(), Ref: in.Ref, SHA: c.sha, Task: "deploy", Environment: "production",
		Payload: in.Payload, AutoMerge: in.AutoMerge, CreatedAt: time.Now().UTC(),
	}
	if in.RequiredContexts != nil {
		d.RequiredContexts = *in.RequiredContexts
	} else if pending := r.unfinishedChecks(c.sha); len(pending) > 0 {
		// Without required_contexts GitHub requires every check to have passed.
		s.writeJSON(w, http.StatusConflict, obj{
			"message":           "Conflict: Commit status checks failed for " + in.Ref + ".",
			"errors":            []obj{{"contexts": pending, "resource": "Deployment", "field": "required_contexts", "code": "invalid"}},
			"documentation_url": "https://docs.github.com/rest/deployments/deployments#create-a-deployment",
		})
		return
	}
	if in.Task != nil {
		d.Task = *in.Task
	}
	if in.Environment != nil {
		d.Environment = *in.Environment
	}
	if in.Description != nil {
		d.Description = *in.Description
	}
	d.Production = d.Environment == "production"
	if in.ProductionEnvironment != nil {
		d.Production = *in.ProductionEnvironment
	}
	if in.TransientEnvironment != nil {
		d.Transient = *in.TransientEnvironment
	}
	r.deployments = append(r.deployments, d)
	s.writeJSON(w, http.StatusCreated, s.deploymentJSON(r, d))
}

// unfinishedChecks lists the check runs on sha that have not passed.
func (r *Repo) unfinishedChecks(sha string) []obj {
	var out []obj
	for _, c := range r.checkRuns {
		passed := c.Status == "completed" && slices.Contains([]string{"success", "neutral", "skipped"}, c.Conclusion)
		if c.HeadSHA == sha && !passed {
			state := c.Conclusion
			if state == "" {
				state = "pending"
			}
			out = append(out, obj{"context": c.Name, "state": state})
		}
	}
	return out
}

func (s *Server) listDeployments(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := req.URL.Query()
	var out []obj
	for _, d := range slices.Backward(r.deployments) {
		if match(q, "sha", d.SHA) && match(q, "ref", d.Ref) && match(q, "task", d.Task) && match(q, "environment", d.Environment) {
			out = append(out, s.deploymentJSON(r, d))
		}
	}
	s.writeJSON(w, http.StatusOK, paginate(w, req, out))
}

func match(q map[string][]string, key, value string) bool {
	want, ok := q[key]
	return !ok || want[0] == value
}

// paginate applies GitHub's page and per_page (default 30, at most 100) and
// sets the Link header go-github follows to the next page.
func paginate[T any](w http.ResponseWriter, req *http.Request, items []T) []T {
	q := req.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max(1, (len(items)+perPage-1)/perPage)
	var links []string
	link := func(p int, rel string) {
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		links = append(links, fmt.Sprintf(`<http://%s%s?%s>; rel="%s"`, req.Host, req.URL.Path, q.Encode(), rel))
	}
	if page < last {
		link(page+1, "next")
		link(last, "last")
	}
	if page > 1 {
		link(1, "first")
		link(min(page-1, last), "prev")
	}
	if links != nil {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	start := min((page-1)*perPage, len(items))
	return append([]T{}, items[start:min(start+perPage, len(items))]...)
}

func (s *Server) createDeploymentStatus(w http.ResponseWriter, req *http.Request) {
	var in statusInput
	r, ok := s.repoWithBody(w, req, &in)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := r.deployment(pathID(req, "deployment_id"))
	if d == nil {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	st := DeploymentStatus{ID: s.newID(), State: in.State, Environment: d.Environment, AutoInactive: in.AutoInactive, CreatedAt: time.Now().UTC()}
	if in.Description != nil {
		st.Description = *in.Description
	}
	if utf8.RuneCountInString(st.Description) > 140 {
		s.validationFailed(w, "https://docs.github.com/rest/deployments/statuses#create-a-deployment-status",
			obj{"resource": "DeploymentStatus", "field": "description", "code": "custom",
				"message": "description is too long (maximum is 140 characters)"})
		return
	}
	// GitHub keeps log_url and target_url in step: either fills the other.
	for _, u := range []*string{in.TargetURL, in.LogURL} {
		if u != nil {
			st.LogURL, st.TargetURL = *u, *u
		}
	}
	if in.EnvironmentURL != nil {
		st.EnvironmentURL = *in.EnvironmentURL
	}
	if in.Environment != nil {
		st.Environment, d.Environment = *in.Environment, *in.Environment
	}
	d.Statuses = append(d.Statuses, st)
	if st.State == "success" && (in.AutoInactive == nil || *in.AutoInactive) {
		r.deactivatePrior(d)
	}
	s.writeJSON(w, http.StatusCreated, s.statusJSON(r, d, st))
}

// deactivatePrior does what GitHub's auto_inactive does: earlier successful
// deployments to the same non-production, non-transient environment get an
// inactive status.
func (r *Repo) deactivatePrior(current *Deployment) {
	for _, d := range r.deployments {
		if d == current || d.Environment != current.Environment || d.Production || d.Transient || len(d.Statuses) == 0 {
			continue
		}
		if d.Statuses[len(d.Statuses)-1].State == "success" {
			d.Statuses = append(d.Statuses, DeploymentStatus{ID: r.s.newID(), State: "inactive", Environment: d.Environment, CreatedAt: time.Now().UTC()})
		}
	}
}

func (s *Server) listDeploymentStatuses(w http.ResponseWriter, req *http.Request) {
	r, ok := s.repo(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := r.deployment(pathID(req, "deployment_id"))
	if d == nil {
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var out []obj
	for _, st := range slices.Backward(d.Statuses) {
		out = append(out, s.statusJSON(r, d, st))
	}
	s.writeJSON(w, http.StatusOK, paginate(w, req, out))
}

// deploymentJSON is GitHub's deployment. Call with s.mu held.
func (s *Server) deploymentJSON(r *Repo, d *Deployment) obj {
	api := s.api("repos/%s/deployments/%d", r.FullName(), d.ID)
	payload := any(obj{})
	if len(d.Payload) > 0 {
		payload = d.Payload
	}
	return obj{
		"id": d.ID, "node_id": nodeID("Deployment", d.ID), "url": api, "sha": d.SHA, "ref": d.Ref,
		"task": d.Task, "original_environment": d.Environment, "environment": d.Environment,
		"payload": payload, "description": d.Description, "creator": s.userJSON(BotLogin),
		"created_at": timestamp(d.CreatedAt), "updated_at": timestamp(d.CreatedAt),
		"statuses_url": api + "/statuses", "repository_url": s.api("repos/%s", r.FullName()),
		"transient_environment": d.Transient, "production_environment": d.Production,
		"performed_via_github_app": s.appJSON(AppID, AppSlug, "Railyard"),
	}
}

// statusJSON is GitHub's deployment-status. Call with s.mu held.
func (s *Server) statusJSON(r *Repo, d *Deployment, st DeploymentStatus) obj {
	api := s.api("repos/%s/deployments/%d", r.FullName(), d.ID)
	return obj{
		"id": st.ID, "node_id": nodeID("DeploymentStatus", st.ID), "url": api + "/statuses/" + strconv.FormatInt(st.ID, 10),
		"state": st.State, "description": st.Description, "environment": st.Environment,
		"target_url": st.TargetURL, "log_url": st.LogURL, "environment_url": st.EnvironmentURL,
		"creator": s.userJSON(BotLogin), "deployment_url": api, "repository_url": s.api("repos/%s", r.FullName()),
		"created_at": timestamp(st.CreatedAt), "updated_at": timestamp(st.CreatedAt),
		"performed_via_github_app": s.appJSON(AppID, AppSlug, "Railyard"),
	}
}
