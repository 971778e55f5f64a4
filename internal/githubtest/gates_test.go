package githubtest

import (
	"slices"
	"testing"

	"github.com/google/go-github/v62/github"
)

// TestGateEndpoints: what a deploy gate reads, answered as GitHub's
// description says (newSetup's server checks its own answers).
func TestGateEndpoints(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	st.repo.AddPull(7, "feature/x")
	st.repo.SetPullFork(7, "mallory/app")
	st.repo.AddReview(7, "alice", "APPROVED", st.branch)
	st.repo.AddCheckRun(st.branch, "ci/test", "completed", "failure")
	st.repo.AddCheckRun(st.branch, "ci/test", "completed", "success")
	st.repo.AddCheckRun(st.branch, "lint", "in_progress", "")
	st.repo.SetStatus(st.branch, "deploy-ok", "pending")
	st.repo.SetStatus(st.branch, "deploy-ok", "success")
	st.repo.ProtectBranch("main", "ci/test")
	st.repo.AddRulesetChecks("main", "lint")

	pr, _, err := st.gh.PullRequests.Get(ctx, "octo", "app", 7)
	if err != nil || pr.GetHead().GetRepo().GetFullName() != "mallory/app" || !pr.GetHead().GetRepo().GetFork() || pr.GetHead().GetSHA() != st.branch {
		t.Errorf("fork pull request head = %+v, %v", pr.GetHead(), err)
	}
	reviews, _, err := st.gh.PullRequests.ListReviews(ctx, "octo", "app", 7, nil)
	if err != nil || len(reviews) != 1 || reviews[0].GetState() != "APPROVED" || reviews[0].GetCommitID() != st.branch || reviews[0].GetUser().GetLogin() != "alice" {
		t.Errorf("reviews = %+v, %v", reviews, err)
	}
	runs, _, err := st.gh.Checks.ListCheckRunsForRef(ctx, "octo", "app", st.branch, &github.ListCheckRunsOptions{Filter: github.String("latest")})
	var got []string
	for _, r := range runs.CheckRuns {
		got = append(got, r.GetName()+":"+r.GetStatus()+":"+r.GetConclusion()+":"+r.GetApp().GetSlug())
	}
	slices.Sort(got)
	if want := []string{"ci/test:completed:success:ci", "lint:in_progress::ci"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("latest check runs = %q, %v; want %q", got, err, want)
	}
	combined, _, err := st.gh.Repositories.GetCombinedStatus(ctx, "octo", "app", st.branch, nil)
	if err != nil || combined.GetState() != "success" || len(combined.Statuses) != 1 || combined.Statuses[0].GetContext() != "deploy-ok" {
		t.Errorf("combined status = %+v, %v", combined, err)
	}
	b, _, err := st.gh.Repositories.GetBranch(ctx, "octo", "app", "main", 0)
	if err != nil || !b.GetProtected() || !slices.Equal(*b.GetProtection().GetRequiredStatusChecks().Contexts, []string{"ci/test"}) {
		t.Errorf("branch = %+v, %v", b, err)
	}
	rules, _, err := st.gh.Repositories.GetRulesForBranch(ctx, "octo", "app", "main")
	if err != nil || len(rules) != 1 || rules[0].Type != "required_status_checks" {
		t.Errorf("rules = %+v, %v", rules, err)
	}
	if _, resp, err := st.gh.Repositories.GetBranch(ctx, "octo", "app", "gone", 0); err == nil || resp == nil || resp.StatusCode != 404 {
		t.Errorf("unknown branch: %v, want 404", err)
	}
	if rules, _, err := st.gh.Repositories.GetRulesForBranch(ctx, "octo", "app", "feature"); err != nil || len(rules) != 0 {
		t.Errorf("rules of an unprotected branch = %+v, %v; want none", rules, err)
	}
}
