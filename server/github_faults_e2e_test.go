package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/server"
)

// TestPassingTarballFailureIsWaitedOut answers the first downloads of the
// revision with 502: the stage is not failed; it waits, its check run says
// so meanwhile, and it ends in success without anyone typing /retry.
func TestPassingTarballFailureIsWaitedOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf("stages:\n  - name: build\n    steps:\n%s", markStep("compile")))
	const fails = 2
	h.gh.FailNext(http.MethodGet, "/repos/"+repoName+"/tarball/", fails, http.StatusBadGateway, nil)
	sha := h.commitAndPush()

	h.awaitStage("build", engine.Succeeded, sha)
	h.awaitCheckRun("railyard/build", sha, "success")
	if got := h.marks(); len(got) != 1 {
		t.Errorf("steps ran %v, want compile once", got)
	}
	tarballs, waiting := 0, 0
	const want = "Waiting for GitHub: downloading the revision failed (502); trying again."
	for _, r := range h.gh.Requests() {
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.Path, "/repos/"+repoName+"/tarball/"):
			tarballs++
		case r.OperationID == "checks/update" && strings.Contains(string(r.Body), want):
			waiting++
		case r.OperationID == "issues/create-comment":
			t.Errorf("Railyard commented %s; a passing failure needs nobody", r.Body)
		}
	}
	if tarballs != fails+1 {
		t.Errorf("%d tarball requests, want %d failed and one that worked", tarballs, fails)
	}
	if waiting == 0 {
		t.Errorf("the check run never said %q", want)
	}
}

// TestStageGivenUpOnFails: when GitHub keeps failing the tarball for all of
// RAILYARD_RETRY_FOR, the queue gives the job up, and the stage fails
// saying why, with a Retry button, instead of staying in progress with no
// job left to end it.
func TestStageGivenUpOnFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf("stages:\n  - name: build\n    steps:\n%s", markStep("compile")),
		func(_ *config.Env, o *server.Options) { o.Queue.RetryFor = 1500 * time.Millisecond })
	h.gh.FailNext(http.MethodGet, "/repos/"+repoName+"/tarball/", 1000, http.StatusBadGateway, nil)
	sha := h.commitAndPush()

	h.awaitStage("build", engine.Failed, sha)
	cr := h.awaitCheckRun("railyard/build", sha, "failure")
	if !strings.Contains(cr.Summary, "Railyard gave up") {
		t.Errorf("the failed check run does not say Railyard gave up:\n%s", cr.Summary)
	}
	if len(h.marks()) != 0 {
		t.Errorf("steps ran %v, want none", h.marks())
	}
	if !slices.ContainsFunc(cr.Actions, func(a githubtest.Action) bool { return a.Label == "Retry" }) {
		t.Errorf("the failed check run offers %+v, want a Retry button", cr.Actions)
	}
}
