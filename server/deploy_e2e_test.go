package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
)

// TestDeployCommandStartsARevisionByHand: /deploy sha=… starts a commit of
// the pipeline branch through the pipeline as a push would, for people
// with write permission; a commit of another branch is refused.
func TestDeployCommandStartsARevisionByHand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s`, markStep("compile"), markStep("deploy")))
	const reader = "reader"
	h.repo.SetPermission(reader, "read", "read")
	a := h.commit() // on the pipeline branch, never pushed to Railyard
	feature := h.repo.Commit("feature", map[string]githubtest.File{"README": {Content: "feature"}})

	h.run(t, "refused", func(t *testing.T) {
		for _, c := range []struct{ login, cmd, why string }{
			{reader, "/deploy sha=" + short(a), "@reader has read permission on this repository; /deploy needs write"},
			{user, "/deploy sha=" + short(feature), short(feature) + " is not on the pipeline branch " + defaultBranch},
			{user, "/deploy sha=0000000", "sha=0000000 names no single commit of this repository"},
			{user, "/deploy sha=abc reason=x", "sha= must be a full or abbreviated commit SHA"},
		} {
			before := h.snapshot()
			if got := h.commentAs(c.login, c.cmd); !strings.Contains(got, c.why) {
				t.Errorf("%s by %s replied %q, want it to say %q", c.cmd, c.login, got, c.why)
			}
			if after := h.snapshot(); after != before {
				t.Errorf("refused %s changed the state:\n%s\n%s", c.cmd, before, after)
			}
		}
		if len(h.marks()) != 0 {
			t.Errorf("refused deploys ran steps: %v", h.marks())
		}
	})

	h.run(t, "accepted", func(t *testing.T) {
		reply := h.comment("/deploy sha=" + short(a) + " reason=by hand")
		if want := "Deploying " + short(a) + " to build."; !strings.Contains(reply, want) {
			t.Errorf("/deploy replied %q, want %q", reply, want)
		}
		h.awaitStage("staging", engine.Succeeded, a)
		if want := []string{"build:compile:" + short(a) + ":deploy", "staging:deploy:" + short(a) + ":deploy"}; !slices.Equal(h.marks(), want) {
			t.Errorf("steps ran %v, want %v", h.marks(), want)
		}
		audit := h.audit()
		i := slices.IndexFunc(audit, func(e engine.AuditEntry) bool { return e.Stage == "build" && e.To == a })
		if i < 0 || audit[i].Operation != engine.OpDeploy || audit[i].Actor != user || audit[i].Reason != "by hand" {
			t.Errorf("audit log %+v lacks the deploy of %.7s by %s", audit, a, user)
		}
	})
}
