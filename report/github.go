package report

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
)

// checkRunBody is the JSON of a check run create or update. go-github's
// options cannot send an empty actions list, which is how buttons are
// cleared.
type checkRunBody struct {
	Name        string                   `json:"name,omitempty"`
	HeadSHA     string                   `json:"head_sha,omitempty"`
	DetailsURL  string                   `json:"details_url,omitempty"`
	ExternalID  string                   `json:"external_id,omitempty"`
	Status      string                   `json:"status,omitempty"`
	Conclusion  string                   `json:"conclusion,omitempty"`
	StartedAt   *github.Timestamp        `json:"started_at,omitempty"`
	CompletedAt *github.Timestamp        `json:"completed_at,omitempty"`
	Output      *github.CheckRunOutput   `json:"output,omitempty"`
	Actions     *[]github.CheckRunAction `json:"actions,omitempty"`
}

func newCheckRunBody(c CheckRun) checkRunBody {
	b := checkRunBody{
		Name:        c.Name,
		DetailsURL:  c.DetailsURL,
		ExternalID:  c.ExternalID,
		Status:      c.Status,
		Conclusion:  c.Conclusion,
		StartedAt:   timestamp(c.StartedAt),
		CompletedAt: timestamp(c.CompletedAt),
	}
	if c.Title != "" || c.Summary != "" || c.Text != "" {
		// GitHub wants a title and a summary with any output.
		title := cmp.Or(c.Title, c.Name)
		b.Output = &github.CheckRunOutput{Title: &title, Summary: github.String(cmp.Or(c.Summary, title))}
		if c.Text != "" {
			b.Output.Text = &c.Text
		}
	}
	if c.Buttons != nil {
		as := make([]github.CheckRunAction, len(c.Buttons))
		for i, a := range c.Buttons {
			as[i] = github.CheckRunAction{Label: a.Label, Description: a.Description, Identifier: a.Identifier}
		}
		b.Actions = &as
	}
	return b
}

func timestamp(t time.Time) *github.Timestamp {
	if t.IsZero() {
		return nil
	}
	return &github.Timestamp{Time: t.UTC().Truncate(time.Second)}
}

func createCheckRun(ctx context.Context, gh *github.Client, repo Repo, c CheckRun) (entry, error) {
	b := newCheckRunBody(c)
	b.HeadSHA = c.HeadSHA
	req, err := gh.NewRequest("POST", fmt.Sprintf("repos/%v/%v/check-runs", repo.Owner, repo.Name), b)
	if err != nil {
		return entry{}, err
	}
	var created github.CheckRun
	if _, err := gh.Do(ctx, req, &created); err != nil {
		return entry{}, err
	}
	return entry{ID: created.GetID(), HTMLURL: created.GetHTMLURL(), Name: c.Name}, nil
}

func updateCheckRun(ctx context.Context, gh *github.Client, repo Repo, id int64, c CheckRun) error {
	req, err := gh.NewRequest("PATCH", fmt.Sprintf("repos/%v/%v/check-runs/%d", repo.Owner, repo.Name, id), newCheckRunBody(c))
	if err != nil {
		return err
	}
	_, err = gh.Do(ctx, req, nil)
	return err
}

func createDeployment(ctx context.Context, gh *github.Client, repo Repo, key string, d Deployment) (entry, error) {
	req := &github.DeploymentRequest{
		Ref:                   &d.Ref,
		AutoMerge:             github.Bool(false),
		RequiredContexts:      &[]string{}, // an empty list skips commit status checks
		TransientEnvironment:  github.Bool(false),
		ProductionEnvironment: &d.Production,
	}
	if d.Task != "" {
		req.Task = &d.Task
	}
	if d.Environment != "" {
		req.Environment = &d.Environment
	}
	if d.Description != "" {
		req.Description = &d.Description
	}
	// The marker is how findDeployment recognises it.
	payload := map[string]any{}
	maps.Copy(payload, d.Payload)
	payload[payloadMarker] = key
	req.Payload = payload
	created, _, err := gh.Repositories.CreateDeployment(ctx, repo.Owner, repo.Name, req)
	if err != nil {
		return entry{}, err
	}
	return entry{ID: created.GetID()}, nil
}

func createDeploymentStatus(ctx context.Context, gh *github.Client, repo Repo, id int64, s DeploymentStatus, logURL string) error {
	req := &github.DeploymentStatusRequest{
		State:        &s.State,
		AutoInactive: github.Bool(true),
	}
	if logURL != "" {
		req.LogURL = &logURL
	}
	if s.Description != "" {
		req.Description = &s.Description
	}
	if s.Environment != "" {
		req.Environment = &s.Environment
	}
	_, _, err := gh.Repositories.CreateDeploymentStatus(ctx, repo.Owner, repo.Name, id, req)
	return err
}

// maxPages bounds a search for an object an earlier request may have made:
// it is among the newest, and a search that cannot end must not block the
// outbox.
const maxPages = 10

// payloadMarker is the deployment payload field holding the deployment's
// key.
const payloadMarker = "railyard_key"

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// findCheckRun looks on c's commit for the check run a create whose answer
// was lost may have made: same name, same external_id.
func findCheckRun(ctx context.Context, gh *github.Client, repo Repo, c CheckRun) (entry, bool, error) {
	opts := &github.ListCheckRunsOptions{CheckName: &c.Name, Filter: github.String("all"), ListOptions: github.ListOptions{PerPage: 100}}
	for range maxPages {
		list, resp, err := gh.Checks.ListCheckRunsForRef(ctx, repo.Owner, repo.Name, c.HeadSHA, opts)
		if err != nil {
			return entry{}, false, fmt.Errorf("list check runs: %w", err)
		}
		for _, run := range list.CheckRuns {
			if run.GetExternalID() == c.ExternalID && run.GetName() == c.Name {
				return entry{ID: run.GetID(), HTMLURL: run.GetHTMLURL(), Name: c.Name}, true, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return entry{}, false, nil
}

// findDeployment looks for the deployment of key a create whose answer was
// lost may have made, by the marker in its payload.
func findDeployment(ctx context.Context, gh *github.Client, repo Repo, key string, d Deployment) (entry, bool, error) {
	opts := &github.DeploymentsListOptions{Environment: d.Environment, Task: d.Task, ListOptions: github.ListOptions{PerPage: 100}}
	if fullSHA.MatchString(d.Ref) {
		opts.SHA = d.Ref
	} else {
		opts.Ref = d.Ref
	}
	for range maxPages {
		list, resp, err := gh.Repositories.ListDeployments(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return entry{}, false, fmt.Errorf("list deployments: %w", err)
		}
		for _, dep := range list {
			var payload map[string]any
			if json.Unmarshal(dep.Payload, &payload) == nil && payload[payloadMarker] == key {
				return entry{ID: dep.GetID()}, true, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return entry{}, false, nil
}

// statusShown reports whether the deployment's newest status already is s:
// then a create whose answer was lost made it. Statuses carry no key, so
// an identical status sent twice in a row on purpose is sent once; it
// would show nothing new.
func statusShown(ctx context.Context, gh *github.Client, repo Repo, id int64, s DeploymentStatus) (bool, error) {
	list, _, err := gh.Repositories.ListDeploymentStatuses(ctx, repo.Owner, repo.Name, id, &github.ListOptions{PerPage: 1})
	if err != nil {
		return false, fmt.Errorf("list deployment statuses: %w", err)
	}
	return len(list) > 0 && list[0].GetState() == s.State && list[0].GetDescription() == s.Description, nil
}

// commentMarker is hidden in a comment's body, so that the comment can be
// found again: GitHub renders HTML comments as nothing.
func commentMarker(id string) string { return "<!-- railyard:" + id + " -->" }

// findComment looks on an issue for the comment a create whose answer was
// lost may have made, among those written since the first attempt.
func findComment(ctx context.Context, gh *github.Client, repo Repo, issue int, marker string, since time.Time) (bool, error) {
	opts := &github.IssueListCommentsOptions{Since: &since, ListOptions: github.ListOptions{PerPage: 100}}
	for range maxPages {
		list, resp, err := gh.Issues.ListComments(ctx, repo.Owner, repo.Name, issue, opts)
		if err != nil {
			return false, fmt.Errorf("list comments: %w", err)
		}
		for _, c := range list {
			if strings.Contains(c.GetBody(), marker) {
				return true, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return false, nil
}
