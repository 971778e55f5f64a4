package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/server"
)

// TestCancelDropsAWaitingRevision: /cancel of a stage where a revision
// waits for /promote drops it: the reply names it, its check run ends
// cancelled, the audit log has it, and it never deploys.
func TestCancelDropsAWaitingRevision(t *testing.T) {
	t.Parallel()
	h := newHarness(t, manualProdPipeline())
	a := h.commitAndPush()
	h.await("prod to wait for /promote", func() bool { w := h.stage("prod").Waiting; return w != nil && w.SHA == a })

	reply := h.comment("/cancel stage=prod reason=not this one")
	if want := "Dropped the deploy of " + short(a) + " that waited for prod."; !strings.Contains(reply, want) {
		t.Errorf("/cancel replied %q, want it to say %q", reply, want)
	}
	cr := h.awaitCheckRun("railyard/prod", a, "cancelled")
	if !strings.Contains(cr.Summary, "Cancelled by:** @"+user) || !strings.Contains(cr.Summary, "Dropped before it started.") {
		t.Errorf("the dropped revision's check run summary:\n%s", cr.Summary)
	}
	if s := h.stage("prod"); s.Waiting != nil || s.State != engine.Idle {
		t.Errorf("prod after the drop: %s", h.describe())
	}
	if audit := h.audit(); audit[0].Operation != engine.OpCancel || audit[0].From != a || audit[0].Reason != "not this one" {
		t.Errorf("newest audit entry %+v, want the cancel of %.7s", audit[0], a)
	}
	if reply := h.comment("/promote stage=prod to=" + a); !strings.Contains(reply, "Promoting "+short(a)+" to prod") {
		t.Errorf("/promote after the drop replied %q", reply)
	}
	h.awaitStage("prod", engine.Succeeded, a)
	if d := h.deployments("prod"); len(d) != 1 {
		t.Errorf("prod has %d deployments, want only the promotion's", len(d))
	}
}

// TestCancelQueuedJob: /cancel of a stage whose job is queued but that no
// worker started yet ends it at once, and it never runs; /retry runs it.
func TestCancelQueuedJob(t *testing.T) {
	t.Parallel()
	// One worker, kept busy by prod's gate: build's job stays queued.
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: prod
    steps:
%s`, markStep("compile"), gateStep("prod")), func(env *config.Env, _ *server.Options) { env.Workers = 1 })
	a := h.commitAndPush()
	h.awaitPID("prod", a)

	if reply := h.comment("/redeploy stage=build"); !strings.Contains(reply, "Queued redeploy of build") {
		t.Fatalf("/redeploy replied %q", reply)
	}
	reply := h.comment("/cancel stage=build reason=not now")
	if want := "Cancelled the queued redeploy of build at " + short(a) + " before it started."; !strings.Contains(reply, want) {
		t.Errorf("/cancel replied %q, want it to say %q", reply, want)
	}
	cr := h.awaitCheckRun("railyard/build", a, "cancelled")
	if !strings.Contains(cr.Summary, "Cancelled by:** @"+user) || !strings.Contains(cr.Title, "Redeploy") {
		t.Errorf("the cancelled redeploy's check run: %q\n%s", cr.Title, cr.Summary)
	}
	if s := h.stage("build"); s.State != engine.Cancelled || s.Job.Operation != engine.OpRedeploy {
		t.Errorf("build after the cancel: %s", h.describe())
	}
	h.open("prod")
	h.awaitStage("prod", engine.Succeeded, a)
	if h.hasMark("build:compile:" + short(a) + ":redeploy") {
		t.Errorf("the cancelled redeploy ran: %v", h.marks())
	}
	if reply := h.comment("/retry stage=build"); !strings.Contains(reply, "Retrying redeploy of build") {
		t.Errorf("/retry replied %q", reply)
	}
	h.awaitStage("build", engine.Succeeded, a)
	if !h.hasMark("build:compile:" + short(a) + ":redeploy") {
		t.Errorf("the retried redeploy did not run: %v", h.marks())
	}
}
