package report

import (
	"cmp"
	"context"
	"fmt"
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
	if c.Actions != nil {
		as := make([]github.CheckRunAction, len(c.Actions))
		for i, a := range c.Actions {
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

func createDeployment(ctx context.Context, gh *github.Client, repo Repo, d Deployment) (entry, error) {
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
	if d.Payload != nil {
		req.Payload = d.Payload
	}
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
