package githubtest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
)

func TestCheckRunLifecycle(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	created, _, err := st.gh.Checks.CreateCheckRun(ctx, "octo", "app", github.CreateCheckRunOptions{
		Name: "railyard/staging", HeadSHA: st.second, Status: github.String("queued"),
		Output: &github.CheckRunOutput{Title: github.String("Waiting"), Summary: github.String("held: pipeline stopped")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%socto/app/runs/%d", st.s.URL, created.GetID()); created.GetHTMLURL() != want {
		t.Errorf("html_url = %s, want %s", created.GetHTMLURL(), want)
	}
	if created.GetStatus() != "queued" || created.GetApp().GetID() != AppID || created.GetOutput().GetTitle() != "Waiting" {
		t.Errorf("created = status %s app %d title %q", created.GetStatus(), created.GetApp().GetID(), created.GetOutput().GetTitle())
	}
	cancel := &github.CheckRunAction{Label: "Cancel", Description: "Cancel this deploy", Identifier: "cancel"}
	if _, _, err := st.gh.Checks.UpdateCheckRun(ctx, "octo", "app", created.GetID(), github.UpdateCheckRunOptions{
		Name: "railyard/staging", Status: github.String("in_progress"), Actions: []*github.CheckRunAction{cancel},
	}); err != nil {
		t.Fatal(err)
	}
	done, _, err := st.gh.Checks.UpdateCheckRun(ctx, "octo", "app", created.GetID(), github.UpdateCheckRunOptions{
		Name: "railyard/staging", Conclusion: github.String("success"),
		Output: &github.CheckRunOutput{Title: github.String("Deployed 1a2b3c4"), Summary: github.String("deploy by @alice"), Text: github.String("log tail")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if done.GetStatus() != "completed" || done.GetConclusion() != "success" || done.CompletedAt == nil {
		t.Errorf("after conclusion: status %s conclusion %s completed_at %v", done.GetStatus(), done.GetConclusion(), done.CompletedAt)
	}
	got := st.repo.CheckRuns()
	want := []CheckRun{{
		ID: created.GetID(), Name: "railyard/staging", HeadSHA: st.second, Status: "completed", Conclusion: "success",
		Title: "Deployed 1a2b3c4", Summary: "deploy by @alice", Text: "log tail", HTMLURL: created.GetHTMLURL(),
		Actions: []Action{{Label: "Cancel", Description: "Cancel this deploy", Identifier: "cancel"}}, Updates: 2,
	}}
	if len(got) != 1 {
		t.Fatalf("CheckRuns() = %+v", got)
	}
	got[0].StartedAt, got[0].CompletedAt = time.Time{}, time.Time{}
	if !equalJSON(got, want) {
		t.Errorf("CheckRuns() = %+v\nwant %+v", got, want)
	}
	fetched, _, err := st.gh.Checks.GetCheckRun(ctx, "octo", "app", created.GetID())
	if err != nil || fetched.GetOutput().GetText() != "log tail" {
		t.Errorf("GetCheckRun = %+v, %v", fetched, err)
	}
}

func TestCheckRunRefusals(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	tests := []struct {
		name       string
		call       func() error
		wantStatus int
	}{
		{"unknown head SHA", func() error {
			_, _, err := st.gh.Checks.CreateCheckRun(ctx, "octo", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: strings.Repeat("0", 40)})
			return err
		}, 422},
		{"completed without conclusion", func() error {
			_, _, err := st.gh.Checks.CreateCheckRun(ctx, "octo", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: st.second, Status: github.String("completed")})
			return err
		}, 422},
		{"update of an unknown check run", func() error {
			_, _, err := st.gh.Checks.UpdateCheckRun(ctx, "octo", "app", 12345, github.UpdateCheckRunOptions{Name: "n"})
			return err
		}, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); statusOf(err) != tt.wantStatus {
				t.Errorf("error = %v, want status %d", err, tt.wantStatus)
			}
		})
	}
	if got := st.repo.CheckRuns(); len(got) != 0 {
		t.Errorf("refused requests left check runs: %+v", got)
	}
}

func TestDeploymentLifecycle(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	d, _, err := st.gh.Repositories.CreateDeployment(ctx, "octo", "app", &github.DeploymentRequest{
		Ref: github.String(st.second), Task: github.String("deploy:rollback"), Environment: github.String("prod"),
		AutoMerge: github.Bool(false), RequiredContexts: &[]string{}, ProductionEnvironment: github.Bool(true),
		Description: github.String("rollback by @alice"), Payload: map[string]any{"operation": "rollback", "actor": "alice"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetSHA() != st.second || d.GetEnvironment() != "prod" || d.GetTask() != "deploy:rollback" || d.GetCreator().GetLogin() != BotLogin {
		t.Errorf("created = %+v", d)
	}
	logURL := st.s.URL + "octo/app/runs/1"
	for _, state := range []string{"queued", "in_progress", "success"} {
		if _, _, err := st.gh.Repositories.CreateDeploymentStatus(ctx, "octo", "app", d.GetID(), &github.DeploymentStatusRequest{
			State: github.String(state), LogURL: github.String(logURL), Description: github.String("rollback by @alice: bad migration"),
			AutoInactive: github.Bool(true),
		}); err != nil {
			t.Fatal(err)
		}
	}
	got := st.repo.Deployments()
	if len(got) != 1 {
		t.Fatalf("Deployments() = %+v", got)
	}
	g := got[0]
	var payload map[string]any
	if err := json.Unmarshal(g.Payload, &payload); err != nil || payload["operation"] != "rollback" {
		t.Errorf("payload = %s (%v)", g.Payload, err)
	}
	if g.ID != d.GetID() || g.Ref != st.second || g.Environment != "prod" || g.Task != "deploy:rollback" || !g.Production ||
		g.AutoMerge == nil || *g.AutoMerge || g.RequiredContexts == nil || len(g.RequiredContexts) != 0 || g.Description != "rollback by @alice" {
		t.Errorf("deployment = %+v", g)
	}
	var states []string
	for _, s := range g.Statuses {
		states = append(states, s.State)
		if s.LogURL != logURL || s.Environment != "prod" || s.AutoInactive == nil || !*s.AutoInactive || s.Description != "rollback by @alice: bad migration" {
			t.Errorf("status = %+v", s)
		}
	}
	if !slices.Equal(states, []string{"queued", "in_progress", "success"}) {
		t.Errorf("states = %v", states)
	}

	listed, _, err := st.gh.Repositories.ListDeployments(ctx, "octo", "app", &github.DeploymentsListOptions{Environment: "prod"})
	if err != nil || len(listed) != 1 || listed[0].GetID() != d.GetID() {
		t.Errorf("ListDeployments = %v, %v", listed, err)
	}
	statuses, _, err := st.gh.Repositories.ListDeploymentStatuses(ctx, "octo", "app", d.GetID(), nil)
	if err != nil || len(statuses) != 3 || statuses[0].GetState() != "success" || statuses[0].GetLogURL() != logURL {
		t.Errorf("ListDeploymentStatuses = %v, %v (want newest first)", statuses, err)
	}
}

func TestDeploymentDefaultsAndRefusals(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	if _, _, err := st.gh.Checks.CreateCheckRun(ctx, "octo", "app", github.CreateCheckRunOptions{Name: "railyard/build", HeadSHA: st.second, Status: github.String("in_progress")}); err != nil {
		t.Fatal(err)
	}
	_, _, err := st.gh.Repositories.CreateDeployment(ctx, "octo", "app", &github.DeploymentRequest{Ref: github.String("main")})
	if statusOf(err) != 409 {
		t.Errorf("deployment without required_contexts while a check runs: error = %v, want 409", err)
	}
	d, _, err := st.gh.Repositories.CreateDeployment(ctx, "octo", "app", &github.DeploymentRequest{Ref: github.String(st.first), RequiredContexts: &[]string{}})
	if err != nil {
		t.Fatal(err)
	}
	got := st.repo.Deployments()
	if len(got) != 1 || got[0].Task != "deploy" || got[0].Environment != "production" || !got[0].Production || got[0].AutoMerge != nil || got[0].Payload != nil {
		t.Errorf("defaults = %+v", got)
	}
	_, _, err = st.gh.Repositories.CreateDeploymentStatus(ctx, "octo", "app", d.GetID(), &github.DeploymentStatusRequest{
		State: github.String("failure"), Description: github.String(strings.Repeat("é", 141)),
	})
	if statusOf(err) != 422 {
		t.Errorf("141-character description: error = %v, want 422", err)
	}
	if _, _, err := st.gh.Repositories.CreateDeploymentStatus(ctx, "octo", "app", 1, &github.DeploymentStatusRequest{State: github.String("queued")}); statusOf(err) != 404 {
		t.Errorf("status of an unknown deployment: error = %v, want 404", err)
	}
	if _, _, err := st.gh.Repositories.CreateDeployment(ctx, "octo", "app", &github.DeploymentRequest{Ref: github.String("nope"), RequiredContexts: &[]string{}}); statusOf(err) != 422 {
		t.Errorf("deployment of an unknown ref: error = %v, want 422", err)
	}
}

func TestAutoInactive(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	deploy := func(env string, production bool) int64 {
		d, _, err := st.gh.Repositories.CreateDeployment(ctx, "octo", "app", &github.DeploymentRequest{
			Ref: github.String("main"), Environment: github.String(env), RequiredContexts: &[]string{}, ProductionEnvironment: github.Bool(production),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.gh.Repositories.CreateDeploymentStatus(ctx, "octo", "app", d.GetID(), &github.DeploymentStatusRequest{State: github.String("success"), AutoInactive: github.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		return d.GetID()
	}
	deploy("staging", false)
	deploy("prod", true)
	deploy("staging", false)
	deploy("prod", true)
	var got []string
	for _, d := range st.repo.Deployments() {
		var states []string
		for _, s := range d.Statuses {
			states = append(states, s.State)
		}
		got = append(got, d.Environment+":"+strings.Join(states, ","))
	}
	want := []string{"staging:success,inactive", "prod:success", "staging:success", "prod:success"}
	if !slices.Equal(got, want) {
		t.Errorf("deployments = %v, want %v", got, want)
	}
}

func TestCommentsAndReactions(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	c1, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 4, &github.IssueComment{Body: github.String("Queued `railyard/prod`")})
	if err != nil {
		t.Fatal(err)
	}
	if c1.GetUser().GetLogin() != BotLogin || c1.GetUser().GetType() != "Bot" || !strings.Contains(c1.GetHTMLURL(), "octo/app/issues/4#issuecomment-") {
		t.Errorf("comment = user %s (%s) html %s", c1.GetUser().GetLogin(), c1.GetUser().GetType(), c1.GetHTMLURL())
	}
	c2, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 4, &github.IssueComment{Body: github.String("second")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.gh.Issues.EditComment(ctx, "octo", "app", c2.GetID(), &github.IssueComment{Body: github.String("edited")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 5, &github.IssueComment{Body: github.String("elsewhere")}); err != nil {
		t.Fatal(err)
	}
	want := []Comment{{ID: c1.GetID(), Body: "Queued `railyard/prod`"}, {ID: c2.GetID(), Body: "edited"}}
	got := st.repo.Comments(4)
	if len(got) != len(want) || got[0].ID != want[0].ID || got[0].Body != want[0].Body || got[1].ID != want[1].ID || got[1].Body != want[1].Body || got[0].Issue != 4 {
		t.Errorf("Comments(4) = %+v, want %+v", got, want)
	}
	if _, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 4, &github.IssueComment{Body: github.String(strings.Repeat("ü", 65537))}); statusOf(err) != 422 {
		t.Errorf("comment over 65536 characters: error = %v, want 422", err)
	}
	if _, _, err := st.gh.Issues.EditComment(ctx, "octo", "app", c2.GetID(), &github.IssueComment{Body: github.String(strings.Repeat("ü", 65537))}); statusOf(err) != 422 {
		t.Errorf("comment edited to over 65536 characters: error = %v, want 422", err)
	}
	listed, _, err := st.gh.Issues.ListComments(ctx, "octo", "app", 4, nil)
	if err != nil || len(listed) != 2 || listed[1].GetBody() != "edited" {
		t.Errorf("ListComments = %v, %v", listed, err)
	}

	// 492700400 is comment.id in the issue_comment payloads: the fake never saw it.
	const fromWebhook = 492700400
	tests := []struct {
		content    string
		wantStatus int
	}{{"eyes", 201}, {"rocket", 201}, {"eyes", 200}}
	for _, tt := range tests {
		r, resp, err := st.gh.Reactions.CreateIssueCommentReaction(ctx, "octo", "app", fromWebhook, tt.content)
		if err != nil || resp.StatusCode != tt.wantStatus || r.GetContent() != tt.content || r.GetUser().GetLogin() != BotLogin {
			t.Errorf("reaction %s: %v status %d, %v", tt.content, r, resp.StatusCode, err)
		}
	}
	if got := st.repo.Reactions(fromWebhook); !slices.Equal(got, []string{"eyes", "rocket"}) {
		t.Errorf("Reactions = %v, want [eyes rocket]", got)
	}
	if got := st.repo.Reactions(c1.GetID()); len(got) != 0 {
		t.Errorf("Reactions of another comment = %v", got)
	}
}

func TestListsPaginateLikeGitHub(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	var want []int64
	for i := range 23 {
		c, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 9, &github.IssueComment{Body: github.String(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, c.GetID())
	}
	var got []int64
	pages := 0
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 10}}
	for {
		page, resp, err := st.gh.Issues.ListComments(ctx, "octo", "app", 9, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range page {
			got = append(got, c.GetID())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("%d pages with %v, want 3 pages with %v", pages, got, want)
	}
}

func TestIDsAreUniqueAcrossKinds(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	seen := map[int64]string{}
	add := func(kind string, id int64) {
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s share ID %d", prev, kind, id)
		}
		seen[id] = kind
	}
	for range 3 {
		cr, _, err := st.gh.Checks.CreateCheckRun(ctx, "octo", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: st.second})
		if err != nil {
			t.Fatal(err)
		}
		add("check run", cr.GetID())
		d, _, err := st.gh.Repositories.CreateDeployment(ctx, "octo", "app", &github.DeploymentRequest{Ref: github.String("main"), RequiredContexts: &[]string{}})
		if err != nil {
			t.Fatal(err)
		}
		add("deployment", d.GetID())
		c, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 1, &github.IssueComment{Body: github.String("x")})
		if err != nil {
			t.Fatal(err)
		}
		add("comment", c.GetID())
		r, _, err := st.gh.Reactions.CreateIssueCommentReaction(ctx, "octo", "app", c.GetID(), "eyes")
		if err != nil {
			t.Fatal(err)
		}
		add("reaction", r.GetID())
	}
}

func TestCollaboratorPermission(t *testing.T) {
	st := newSetup(t)
	tests := []struct {
		user, permission, role string
		set                    bool
		wantFlags              map[string]bool
	}{
		{"ada", "admin", "admin", true, map[string]bool{"admin": true, "maintain": true, "push": true, "triage": true, "pull": true}},
		{"max", "write", "maintain", true, map[string]bool{"admin": false, "maintain": true, "push": true, "triage": true, "pull": true}},
		{"wes", "write", "write", true, map[string]bool{"admin": false, "maintain": false, "push": true, "triage": true, "pull": true}},
		{"tia", "read", "triage", true, map[string]bool{"admin": false, "maintain": false, "push": false, "triage": true, "pull": true}},
		{"rod", "read", "read", true, map[string]bool{"admin": false, "maintain": false, "push": false, "triage": false, "pull": true}},
		{"nob", "none", "none", true, map[string]bool{"admin": false, "maintain": false, "push": false, "triage": false, "pull": false}},
		{"cus", "write", "deployer", true, map[string]bool{"admin": false, "maintain": false, "push": true, "triage": true, "pull": true}},
		{"stranger", "read", "read", false, map[string]bool{"admin": false, "maintain": false, "push": false, "triage": false, "pull": true}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			if tt.set {
				st.repo.SetPermission(tt.user, tt.permission, tt.role)
			}
			level, _, err := st.gh.Repositories.GetPermissionLevel(t.Context(), "octo", "app", tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if level.GetPermission() != tt.permission || level.GetUser().GetLogin() != tt.user || !equalJSON(level.GetUser().GetPermissions(), tt.wantFlags) {
				t.Errorf("go-github sees permission %q user %q flags %v", level.GetPermission(), level.GetUser().GetLogin(), level.GetUser().GetPermissions())
			}
			// go-github v62 does not decode role_name; callers read it raw.
			req, err := st.gh.NewRequest("GET", "repos/octo/app/collaborators/"+url.PathEscape(tt.user)+"/permission", nil)
			if err != nil {
				t.Fatal(err)
			}
			var raw struct {
				Permission string `json:"permission"`
				RoleName   string `json:"role_name"`
				User       struct {
					RoleName    string          `json:"role_name"`
					Permissions map[string]bool `json:"permissions"`
				} `json:"user"`
			}
			if _, err := st.gh.Do(t.Context(), req, &raw); err != nil {
				t.Fatal(err)
			}
			if raw.RoleName != tt.role || raw.User.RoleName != tt.role {
				t.Errorf("role_name = %q (user %q), want %q", raw.RoleName, raw.User.RoleName, tt.role)
			}
		})
	}
}

func TestMisuseIsReported(t *testing.T) {
	tests := []struct {
		name string
		use  func(r *Repo)
		want string
	}{
		{"unfolded permission", func(r *Repo) { r.SetPermission("max", "maintain", "maintain") }, "admin, write, read or none"},
		{"tag of an unknown commit", func(r *Repo) { r.Tag("v9", strings.Repeat("0", 40)) }, "no such commit"},
		{"completing an unknown run", func(r *Repo) { r.CompleteRun(42, "success") }, "no workflow run 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			tt.use(New(rec).AddRepo("octo/app", "main"))
			if got := rec.reported(); len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Errorf("reported %q, want one report mentioning %q", got, tt.want)
			}
		})
	}
}

func TestWorkflowRuns(t *testing.T) {
	st := newSetup(t)
	ctx := t.Context()
	before := time.Now().UTC().Add(-time.Second).Truncate(time.Second)
	inputs := map[string]any{"stage": "prod", "sha": st.first, "operation": "rollback"}
	if _, err := st.gh.Actions.CreateWorkflowDispatchEventByFileName(ctx, "octo", "app", "deploy.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: inputs}); err != nil {
		t.Fatal(err)
	}
	runs := st.repo.WorkflowRuns()
	if len(runs) != 1 {
		t.Fatalf("WorkflowRuns() = %+v", runs)
	}
	run := runs[0]
	if run.Status != "queued" || run.HeadSHA != st.second || run.Event != "workflow_dispatch" || run.Path != ".github/workflows/deploy.yml" ||
		run.HeadBranch != "main" || !equalJSON(run.Inputs, inputs) || run.CreatedAt.Before(before) {
		t.Errorf("run = %+v", run)
	}

	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	filters := []struct {
		name string
		opts github.ListWorkflowRunsOptions
		want int
	}{
		{"no filter", github.ListWorkflowRunsOptions{}, 1},
		{"head_sha", github.ListWorkflowRunsOptions{HeadSHA: st.second}, 1},
		{"other head_sha", github.ListWorkflowRunsOptions{HeadSHA: st.first}, 0},
		{"status", github.ListWorkflowRunsOptions{Status: "queued"}, 1},
		{"other status", github.ListWorkflowRunsOptions{Status: "completed"}, 0},
		{"event", github.ListWorkflowRunsOptions{Event: "workflow_dispatch"}, 1},
		{"other event", github.ListWorkflowRunsOptions{Event: "push"}, 0},
		{"created after", github.ListWorkflowRunsOptions{Created: ">=" + ts(before)}, 1},
		{"created before", github.ListWorkflowRunsOptions{Created: "<" + ts(before)}, 0},
		{"created range", github.ListWorkflowRunsOptions{Created: ts(before) + ".." + ts(before.Add(time.Hour))}, 1},
		{"created day", github.ListWorkflowRunsOptions{Created: run.CreatedAt.Format(time.DateOnly)}, 1},
	}
	for _, f := range filters {
		t.Run(f.name, func(t *testing.T) {
			all, _, err := st.gh.Actions.ListRepositoryWorkflowRuns(ctx, "octo", "app", &f.opts)
			if err != nil {
				t.Fatal(err)
			}
			byFile, _, err := st.gh.Actions.ListWorkflowRunsByFileName(ctx, "octo", "app", "deploy.yml", &f.opts)
			if err != nil {
				t.Fatal(err)
			}
			if all.GetTotalCount() != f.want || len(all.WorkflowRuns) != f.want || len(byFile.WorkflowRuns) != f.want {
				t.Errorf("got %d (total %d) and %d by file, want %d", len(all.WorkflowRuns), all.GetTotalCount(), len(byFile.WorkflowRuns), f.want)
			}
		})
	}

	st.repo.StartRun(run.ID)
	if inProgress, _, err := st.gh.Actions.ListRepositoryWorkflowRuns(ctx, "octo", "app", &github.ListWorkflowRunsOptions{Status: "in_progress"}); err != nil || inProgress.GetTotalCount() != 1 {
		t.Errorf("in_progress runs after StartRun = %v, %v", inProgress, err)
	}
	got, _, err := st.gh.Actions.GetWorkflowRunByID(ctx, "octo", "app", run.ID)
	if err != nil || got.GetHeadSHA() != st.second || got.GetStatus() != "in_progress" || got.GetHTMLURL() != run.HTMLURL || got.GetWorkflowID() != run.WorkflowID {
		t.Errorf("GetWorkflowRunByID = %+v, %v", got, err)
	}
	if byID, _, err := st.gh.Actions.ListWorkflowRunsByID(ctx, "octo", "app", run.WorkflowID, nil); err != nil || byID.GetTotalCount() != 1 {
		t.Errorf("ListWorkflowRunsByID = %v, %v", byID, err)
	}
	if resp, err := st.gh.Actions.CancelWorkflowRunByID(ctx, "octo", "app", run.ID); resp == nil || resp.StatusCode != 202 {
		t.Errorf("cancel: %v, %v", resp, err) // go-github reports 202 as an AcceptedError
	}
	if !st.repo.WorkflowRuns()[0].CancelRequested {
		t.Error("cancel not recorded")
	}
	st.repo.CompleteRun(run.ID, "cancelled")
	got, _, err = st.gh.Actions.GetWorkflowRunByID(ctx, "octo", "app", run.ID)
	if err != nil || got.GetStatus() != "completed" || got.GetConclusion() != "cancelled" {
		t.Errorf("after CompleteRun: %s/%s, %v", got.GetStatus(), got.GetConclusion(), err)
	}
	if _, err := st.gh.Actions.CancelWorkflowRunByID(ctx, "octo", "app", run.ID); statusOf(err) != 409 {
		t.Errorf("cancel of a completed run: error = %v, want 409", err)
	}
}

func TestWorkflowDispatchRefusals(t *testing.T) {
	st := newSetup(t)
	tests := []struct {
		name, workflow, ref string
		wantStatus          int
	}{
		{"a SHA is not a ref", "deploy.yml", "", 422},
		{"unknown branch", "deploy.yml", "nope", 422},
		{"workflow absent at the ref", "deploy.yml", "v1", 404},
		{"unknown workflow", "other.yml", "main", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := tt.ref
			if ref == "" {
				ref = st.second
			}
			_, err := st.gh.Actions.CreateWorkflowDispatchEventByFileName(t.Context(), "octo", "app", tt.workflow, github.CreateWorkflowDispatchEventRequest{Ref: ref})
			if statusOf(err) != tt.wantStatus {
				t.Errorf("error = %v, want status %d", err, tt.wantStatus)
			}
		})
	}
	if runs := st.repo.WorkflowRuns(); len(runs) != 0 {
		t.Errorf("refused dispatches recorded runs: %+v", runs)
	}
}

func TestWorkflowDispatchReturnsRunDetails(t *testing.T) {
	st := newSetup(t)
	req, err := st.gh.NewRequest("POST", "repos/octo/app/actions/workflows/deploy.yml/dispatches",
		map[string]any{"ref": "refs/heads/main", "return_run_details": true})
	if err != nil {
		t.Fatal(err)
	}
	var details struct {
		ID      int64  `json:"workflow_run_id"`
		HTMLURL string `json:"html_url"`
	}
	if _, err := st.gh.Do(t.Context(), req, &details); err != nil {
		t.Fatal(err)
	}
	runs := st.repo.WorkflowRuns()
	if len(runs) != 1 || runs[0].ID != details.ID || runs[0].HTMLURL != details.HTMLURL {
		t.Errorf("details %+v, runs %+v", details, runs)
	}
}

func TestAppEndpoints(t *testing.T) {
	st := newSetup(t)
	app, err := st.s.ClientCreator().NewAppClient()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := app.Apps.Get(t.Context(), "")
	if err != nil || got.GetID() != AppID || got.GetSlug() != AppSlug {
		t.Errorf("Apps.Get = %+v, %v", got, err)
	}
	inst, _, err := app.Apps.FindRepositoryInstallation(t.Context(), "octo", "app")
	if err != nil || inst.GetID() != DefaultInstallationID || inst.GetAppID() != AppID {
		t.Errorf("FindRepositoryInstallation = %+v, %v", inst, err)
	}
	token, _, err := app.Apps.CreateInstallationToken(t.Context(), DefaultInstallationID, nil)
	if err != nil || !strings.HasPrefix(token.GetToken(), "ghs_") || time.Until(token.GetExpiresAt().Time) < 59*time.Minute {
		t.Errorf("CreateInstallationToken = %+v, %v", token, err)
	}
	// An installation token is not the App's JWT.
	if _, _, err := st.gh.Apps.Get(t.Context(), ""); statusOf(err) != 401 {
		t.Errorf("GET /app with an installation token: error = %v, want 401", err)
	}
}

func TestManifestConversion(t *testing.T) {
	s := newServer(t)
	want := s.AddManifestCode("a1b2c3")
	anon := github.NewClient(nil)
	anon.BaseURL, _ = url.Parse(s.URL)
	tests := []struct {
		code       string
		wantStatus int
	}{{"a1b2c3", 0}, {"a1b2c3", 404}, {"unknown", 404}}
	for _, tt := range tests {
		cfg, _, err := anon.Apps.CompleteAppManifest(t.Context(), tt.code)
		if tt.wantStatus != 0 {
			if statusOf(err) != tt.wantStatus {
				t.Errorf("code %s: error = %v, want %d", tt.code, err, tt.wantStatus)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if cfg.GetID() != want.ID || cfg.GetSlug() != want.Slug || cfg.GetWebhookSecret() != want.WebhookSecret || want.WebhookSecret == "" ||
			cfg.GetPEM() != string(s.PrivateKeyPEM()) || cfg.GetClientID() != want.ClientID || cfg.GetHTMLURL() == "" {
			t.Errorf("conversion = %+v, want %+v", cfg, want)
		}
	}
}

// equalJSON compares values by their JSON encoding.
func equalJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
