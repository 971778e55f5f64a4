package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/webhooktest"
	"github.com/railyard/railyard/server"
)

// workflowPipeline deploys build with a marked step and staging with a
// workflow step, so a test sees both kinds in one job.
const workflowPipeline = `
stages:
  - name: build
    steps:
` + "%s" + `
  - name: staging
    auto_rollback: true
    steps:
      - name: deploy
        workflow: deploy.yml
        inputs: { environment: staging-eu }
%s
`

// deployWorkflow is the workflow file the tests' revisions carry; the fake
// GitHub only needs it to exist on the dispatched branch.
const deployWorkflow = `on:
  workflow_dispatch:
    inputs:
      stage: { required: true }
      sha: { required: true }
      operation: { required: true }
      environment: { required: false }
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with: { ref: "${{ inputs.sha }}" }
      - run: ./deploy.sh "${{ inputs.environment }}"
`

// withActions polls the store every few milliseconds and GitHub every
// fallback: a long fallback proves a webhook did the work.
func withActions(fallback time.Duration) harnessOption {
	return func(_ *config.Env, o *server.Options) {
		o.Actions = actions.Options{Poll: 10 * time.Millisecond, Fallback: fallback, Find: 5 * time.Second}
	}
}

func newWorkflowHarness(t *testing.T, fallback time.Duration, stepExtra string) *harness {
	t.Helper()
	h := newHarness(t, fmt.Sprintf(workflowPipeline, markStep("compile"), stepExtra), withActions(fallback))
	h.files[".github/workflows/deploy.yml"] = githubtest.File{Content: deployWorkflow}
	return h
}

// awaitRun waits for the n-th workflow run (1-based) to be dispatched.
func (h *harness) awaitRun(n int) githubtest.WorkflowRun {
	h.t.Helper()
	var run githubtest.WorkflowRun
	h.await(fmt.Sprintf("workflow run #%d to be dispatched", n), func() bool {
		runs := h.repo.WorkflowRuns()
		if len(runs) >= n {
			run = runs[n-1]
			return true
		}
		return false
	})
	return run
}

// workflowRunWebhook delivers GitHub's workflow_run event of run, as it is
// now in the fake GitHub.
func (h *harness) workflowRunWebhook(id int64, action string) {
	h.t.Helper()
	var run githubtest.WorkflowRun
	for _, r := range h.repo.WorkflowRuns() {
		if r.ID == id {
			run = r
		}
	}
	file := "workflow_run/completed.payload.json"
	if action == "requested" {
		file = "workflow_run/requested.payload.json"
	}
	conclusion := any(nil)
	if run.Conclusion != "" {
		conclusion = run.Conclusion
	}
	body := webhooktest.Payload(h.t, file,
		webhooktest.SetRepo(repoName),
		webhooktest.Set("installation", map[string]any{"id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}),
		webhooktest.Set("workflow.id", run.WorkflowID), webhooktest.Set("workflow.path", run.Path),
		webhooktest.Set("workflow_run.id", run.ID), webhooktest.Set("workflow_run.workflow_id", run.WorkflowID),
		webhooktest.Set("workflow_run.event", run.Event), webhooktest.Set("workflow_run.status", run.Status),
		webhooktest.Set("workflow_run.conclusion", conclusion),
		webhooktest.Set("workflow_run.head_branch", run.HeadBranch), webhooktest.Set("workflow_run.head_sha", run.HeadSHA),
		webhooktest.Set("workflow_run.html_url", run.HTMLURL),
		webhooktest.Set("workflow_run.created_at", run.CreatedAt.Format(time.RFC3339)),
	)
	if code := h.deliver("workflow_run", body); code != http.StatusAccepted {
		h.t.Fatalf("workflow_run webhook answered %d, want 202", code)
	}
}

// pushAndCompleteFirstRun pushes a revision, completes the first workflow
// run dispatched, and checks that the staging stage succeeded with a check
// run linking that run.
func (h *harness) pushAndCompleteFirstRun() {
	h.t.Helper()
	sha := h.commitAndPush()
	run := h.awaitRun(1)
	h.repo.CompleteRun(run.ID, "success")

	h.awaitStage("staging", engine.Succeeded, sha)
	cr := h.awaitCheckRun("railyard/staging", sha, "success")
	if !strings.Contains(cr.Summary, run.HTMLURL) {
		h.t.Errorf("check run summary does not link the run %s:\n%s", run.HTMLURL, cr.Summary)
	}
}

func TestWorkflowStepSucceedsOnItsCompletedWebhook(t *testing.T) {
	t.Parallel()
	h := newWorkflowHarness(t, time.Hour, "") // GitHub is never polled
	sha := h.commitAndPush()

	run := h.awaitRun(1)
	want := map[string]any{"stage": "staging", "sha": sha, "operation": "deploy", "environment": "staging-eu"}
	if fmt.Sprint(run.Inputs) != fmt.Sprint(want) {
		t.Errorf("dispatched inputs %v, want %v", run.Inputs, want)
	}
	if run.HeadBranch != defaultBranch || run.Path != ".github/workflows/deploy.yml" || run.Event != "workflow_dispatch" {
		t.Errorf("dispatched %s on %s by %s, want deploy.yml on %s by workflow_dispatch", run.Path, run.HeadBranch, run.Event, defaultBranch)
	}
	h.awaitStage("staging", engine.InProgress, sha)

	h.repo.StartRun(run.ID)
	h.workflowRunWebhook(run.ID, "requested")
	h.repo.CompleteRun(run.ID, "success")
	h.workflowRunWebhook(run.ID, "completed")

	h.awaitStage("staging", engine.Succeeded, sha)
	cr := h.awaitCheckRun("railyard/staging", sha, "success")
	if !strings.Contains(cr.Summary, "[deploy]("+run.HTMLURL+")") {
		t.Errorf("check run summary does not link the run %s:\n%s", run.HTMLURL, cr.Summary)
	}
	if n := h.gh.Count("actions/get-workflow-run"); n != 0 {
		t.Errorf("GitHub was polled %d times although the webhook arrived", n)
	}
	h.await("the staging deployment to succeed", func() bool {
		ds := h.deployments("staging")
		return len(ds) == 1 && len(ds[0].Statuses) > 0 && ds[0].Statuses[len(ds[0].Statuses)-1].State == "success"
	})
}

func TestWorkflowStepFailsWithItsRun(t *testing.T) {
	t.Parallel()
	h := newWorkflowHarness(t, time.Hour, "")
	good := h.commitAndPush()
	h.repo.CompleteRun(h.awaitRun(1).ID, "success")
	h.workflowRunWebhook(h.awaitRun(1).ID, "completed")
	h.awaitStage("staging", engine.Succeeded, good)

	bad := h.commitAndPush()
	run := h.awaitRun(2)
	h.repo.CompleteRun(run.ID, "failure")
	h.workflowRunWebhook(run.ID, "completed")

	cr := h.awaitCheckRun("railyard/staging", bad, "failure")
	if !strings.Contains(cr.Summary, "failure (run failure)") {
		t.Errorf("check run summary does not say the run failed:\n%s", cr.Summary)
	}
	// The stage rolls back on its own; the rollback dispatches the workflow
	// again, for the good revision.
	back := h.awaitRun(3)
	if back.Inputs["sha"] != good || back.Inputs["operation"] != "auto-rollback" {
		t.Errorf("rollback dispatched inputs %v, want sha %s and operation auto-rollback", back.Inputs, good)
	}
}

func TestWorkflowStepCancelledByCommandCancelsTheRun(t *testing.T) {
	t.Parallel()
	h := newWorkflowHarness(t, time.Hour, "")
	sha := h.commitAndPush()
	run := h.awaitRun(1)
	h.repo.StartRun(run.ID)

	reply := h.comment("/cancel stage=staging")
	if !strings.Contains(reply, "Cancel") && !strings.Contains(reply, "cancel") {
		t.Errorf("reply to /cancel: %q", reply)
	}
	h.awaitCheckRun("railyard/staging", sha, "cancelled")
	h.await("the cancel request to reach GitHub", func() bool {
		return h.gh.Count("actions/cancel-workflow-run") == 1
	})
	if got := h.awaitRun(1); !got.CancelRequested {
		t.Error("the workflow run was not asked to cancel")
	}
	if h.stage("staging").State != engine.Cancelled {
		t.Errorf("staging is %s, want cancelled", h.stage("staging").State)
	}
	if len(h.repo.WorkflowRuns()) != 1 {
		t.Error("a person's cancel started another run (auto-rollback must not follow a cancel)")
	}
}

func TestWorkflowStepFinishesByPollingWhenTheWebhookIsLost(t *testing.T) {
	t.Parallel()
	h := newWorkflowHarness(t, 30*time.Millisecond, "")
	sha := h.commitAndPush()
	run := h.awaitRun(1)
	h.repo.CompleteRun(run.ID, "success") // and no webhook ever comes

	h.awaitStage("staging", engine.Succeeded, sha)
	if h.gh.Count("actions/get-workflow-run") == 0 {
		t.Error("the stage finished without asking GitHub about the run")
	}
}

func TestWorkflowStepTimesOut(t *testing.T) {
	t.Parallel()
	h := newWorkflowHarness(t, 30*time.Millisecond, "        timeout: 300ms")
	sha := h.commitAndPush()
	run := h.awaitRun(1)
	h.repo.StartRun(run.ID) // and it never completes

	cr := h.awaitCheckRun("railyard/staging", sha, "failure")
	if !strings.Contains(cr.Summary, "| timed out |") {
		t.Errorf("check run summary does not say the step timed out:\n%s", cr.Summary)
	}
	h.await("the timed-out run to be cancelled", func() bool { return h.awaitRun(1).CancelRequested })
}

func TestWorkflowStepFindsItsRunWithoutRunDetails(t *testing.T) {
	t.Parallel()
	h := newWorkflowHarness(t, 30*time.Millisecond, "")
	h.repo.DispatchWithoutRunDetails()
	h.pushAndCompleteFirstRun()
	if h.gh.Count("actions/list-workflow-runs") == 0 {
		t.Error("the run was found without listing runs")
	}
}

func TestWorkflowStepRefusedByGitHubFailsSayingWhy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(workflowPipeline, markStep("compile"), ""), withActions(time.Hour))
	sha := h.commitAndPush() // the revision has no .github/workflows/deploy.yml

	cr := h.awaitCheckRun("railyard/staging", sha, "failure")
	if !strings.Contains(cr.Summary, "dispatch deploy.yml on master: GitHub answered 404") {
		t.Errorf("check run summary does not say GitHub refused the dispatch:\n%s", cr.Summary)
	}
}
