package source

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/gate"
	"github.com/railyard/railyard/report"
)

// What a gate reads. Branch protection is read through the branch itself,
// which needs only contents: read, not the administration permission its
// own endpoint asks for.

var _ gate.GitHub = (*GitHub)(nil)

// Pull returns pull request number: its head and the head's repository.
func (g *GitHub) Pull(ctx context.Context, repo report.Repo, number int) (gate.Pull, error) {
	c, err := g.client(repo)
	if err != nil {
		return gate.Pull{}, err
	}
	pr, _, err := c.PullRequests.Get(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return gate.Pull{}, fmt.Errorf("pull request %d: %w", number, err)
	}
	return gate.Pull{Number: number, Head: pr.GetHead().GetSHA(), HeadRepo: pr.GetHead().GetRepo().GetFullName()}, nil
}

// RequiredChecks lists the checks branch protection and the rulesets that
// apply require on branch.
func (g *GitHub) RequiredChecks(ctx context.Context, repo report.Repo, branch string) ([]string, error) {
	c, err := g.client(repo)
	if err != nil {
		return nil, err
	}
	var names []string
	b, resp, err := c.Repositories.GetBranch(ctx, repo.Owner, repo.Name, branch, 2)
	switch {
	case notFound(resp):
	case err != nil:
		return nil, fmt.Errorf("branch %s: %w", branch, err)
	default:
		if rsc := b.GetProtection().GetRequiredStatusChecks(); rsc != nil {
			if rsc.Contexts != nil {
				names = append(names, *rsc.Contexts...)
			}
			if rsc.Checks != nil {
				for _, ch := range *rsc.Checks {
					names = append(names, ch.Context)
				}
			}
		}
	}
	rules, resp, err := c.Repositories.GetRulesForBranch(ctx, repo.Owner, repo.Name, branch)
	switch {
	case notFound(resp):
	case err != nil:
		return nil, fmt.Errorf("rules of branch %s: %w", branch, err)
	}
	for _, r := range rules {
		if r.Type != "required_status_checks" || r.Parameters == nil {
			continue
		}
		var p github.RequiredStatusChecksRuleParameters
		if err := json.Unmarshal(*r.Parameters, &p); err != nil {
			return nil, fmt.Errorf("rules of branch %s: %w", branch, err)
		}
		for _, ch := range p.RequiredStatusChecks {
			names = append(names, ch.Context)
		}
	}
	return names, nil
}

// Checks lists the newest check run of each name and the commit statuses
// of sha.
func (g *GitHub) Checks(ctx context.Context, repo report.Repo, sha string) ([]gate.Check, error) {
	c, err := g.client(repo)
	if err != nil {
		return nil, err
	}
	var out []gate.Check
	opts := &github.ListCheckRunsOptions{Filter: github.String("latest"), ListOptions: github.ListOptions{PerPage: 100}}
	for {
		runs, resp, err := c.Checks.ListCheckRunsForRef(ctx, repo.Owner, repo.Name, sha, opts)
		if err != nil {
			return nil, fmt.Errorf("check runs of %s: %w", sha, err)
		}
		for _, r := range runs.CheckRuns {
			out = append(out, gate.Check{Name: r.GetName(), Status: r.GetStatus(), Result: r.GetConclusion()})
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	sopts := &github.ListOptions{PerPage: 100}
	for {
		st, resp, err := c.Repositories.GetCombinedStatus(ctx, repo.Owner, repo.Name, sha, sopts)
		if notFound(resp) {
			break
		}
		if resp != nil && resp.StatusCode == http.StatusForbidden {
			// An installation from before the App asked for statuses: read.
			// Without them a required status counts as not run: stricter, and
			// the refusal says which.
			zerolog.Ctx(ctx).Warn().Msg("Cannot read commit statuses; the App needs the statuses: read permission.")
			break
		}
		if err != nil {
			return nil, fmt.Errorf("statuses of %s: %w", sha, err)
		}
		for _, s := range st.Statuses {
			out = append(out, gate.Check{Name: s.GetContext(), Status: "completed", Result: s.GetState()})
		}
		if resp.NextPage == 0 {
			break
		}
		sopts.Page = resp.NextPage
	}
	return out, nil
}

// Contains reports whether sha is on branch: the branch is the revision or
// is ahead of it.
func (g *GitHub) Contains(ctx context.Context, repo report.Repo, branch, sha string) (bool, error) {
	c, err := g.client(repo)
	if err != nil {
		return false, err
	}
	cmp, resp, err := c.Repositories.CompareCommits(ctx, repo.Owner, repo.Name, sha, branch, &github.ListOptions{PerPage: 1})
	if notFound(resp) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("compare %s...%s: %w", sha, branch, err)
	}
	return cmp.GetStatus() == "ahead" || cmp.GetStatus() == "identical", nil
}

// Reviews lists the reviews of pull request number, oldest first.
func (g *GitHub) Reviews(ctx context.Context, repo report.Repo, number int) ([]gate.Review, error) {
	c, err := g.client(repo)
	if err != nil {
		return nil, err
	}
	var out []gate.Review
	opts := &github.ListOptions{PerPage: 100}
	for {
		reviews, resp, err := c.PullRequests.ListReviews(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return nil, fmt.Errorf("reviews of #%d: %w", number, err)
		}
		for _, r := range reviews {
			out = append(out, gate.Review{User: r.GetUser().GetLogin(), State: r.GetState(), CommitID: r.GetCommitID()})
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out, nil
}

func notFound(resp *github.Response) bool {
	return resp != nil && resp.StatusCode == http.StatusNotFound
}
