package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/railyard/railyard/engine"
)

// TestPassingTarballFailureIsWaitedOut answers the first downloads of the
// revision with 502: the stage is not failed; it waits, its check run says
// so meanwhile, and it ends in success without anyone typing /retry.
func TestPassingTarballFailureIsWaitedOut(t *testing.T) {
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
