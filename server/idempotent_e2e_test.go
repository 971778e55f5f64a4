package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
)

// Writes to GitHub whose answers are lost, or refused for a moment, leave
// exactly what a healthy GitHub would show.

// awaitOneOfEach waits until every stage shows one successful check run
// and one deployment with its three statuses, and fails if anything shows
// twice.
func (h *harness) awaitOneOfEach(sha string, stages ...string) {
	h.t.Helper()
	for _, stage := range stages {
		cr := h.awaitCheckRun("railyard/"+stage, sha, "success")
		h.await(stage+" deployment success", func() bool {
			ds := h.deployments(stage)
			return len(ds) > 0 && lastState(ds[0]) == "success"
		})
		n := 0
		for _, c := range h.repo.CheckRuns() {
			if c.Name == cr.Name && c.HeadSHA == sha {
				n++
			}
		}
		ds := h.deployments(stage)
		for _, st := range ds[0].Statuses {
			if st.LogURL != cr.HTMLURL {
				h.t.Errorf("%s status %s links %q, want the check run %q", stage, st.State, st.LogURL, cr.HTMLURL)
			}
		}
		if got := states(ds[0]); n != 1 || len(ds) != 1 || !shownInOrder(got, "queued", "in_progress", "success") {
			h.t.Errorf("%s: %d check runs, %d deployments, statuses %v; want 1, 1 and queued, in_progress, success each once at most, success last", stage, n, len(ds), got)
		}
	}
}

func TestLostAnswersLeaveOneOfEachOnGitHub(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline3())
	repo := "/repos/" + repoName
	h.gh.LoseAnswers("POST", repo+"/check-runs", 2, githubtest.Answer502)
	h.gh.LoseAnswers("POST", repo+"/deployments", 1, githubtest.DropConnection) // the first creation
	h.gh.LoseAnswers("POST", repo+"/deployments/", 2, githubtest.Answer502)     // then two statuses
	sha := h.commitAndPush()

	h.awaitStage("prod", engine.Succeeded, sha)
	h.awaitOneOfEach(sha, "build", "staging", "prod")
	// Found, not made again: one creation each, one request per status
	// shown.
	shown := 0
	for _, stage := range []string{"build", "staging", "prod"} {
		shown += len(h.deployments(stage)[0].Statuses)
	}
	for op, want := range map[string]int{"checks/create": 3, "repos/create-deployment": 3, "repos/create-deployment-status": shown} {
		if n := h.gh.Count(op); n != want {
			t.Errorf("%d requests %s, want %d", n, op, want)
		}
	}
}

func TestTransientRefusalKeepsTheStageCheckRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline3())
	repo := "/repos/" + repoName
	// A new token GitHub has not spread yet: refused, then accepted.
	h.gh.FailNext("POST", repo+"/check-runs", 1, http.StatusUnauthorized, nil)
	h.gh.FailNext("POST", repo+"/check-runs", 1, http.StatusNotFound, nil)
	sha := h.commitAndPush()

	h.awaitStage("prod", engine.Succeeded, sha)
	h.awaitOneOfEach(sha, "build", "staging", "prod")
}

func TestLostReplyIsPostedOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	h.commit()
	h.gh.LoseAnswers("POST", "/repos/"+repoName+"/issues/1/comments", 1, githubtest.DropConnection)

	got := h.ask(user, "/status")
	if got.replies != 1 || !strings.Contains(got.reply, "| stage | state |") {
		t.Errorf("%d replies, first %q; want the reply to /status once", got.replies, got.reply)
	}
}

func TestLostDispatchAnswerRunsTheWorkflowOnce(t *testing.T) {
	t.Parallel()
	h := newWorkflowHarness(t, 30*time.Millisecond, "")
	h.gh.LoseAnswers("POST", "/repos/"+repoName+"/actions/workflows/", 1, githubtest.Answer502)
	h.pushAndCompleteFirstRun()
	if runs, n := h.repo.WorkflowRuns(), h.gh.Count("actions/create-workflow-dispatch"); len(runs) != 1 || n != 1 {
		t.Errorf("%d runs from %d dispatches, want 1 from 1", len(runs), n)
	}
}
