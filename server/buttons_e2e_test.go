package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
)

// buttons lists the identifiers of a check run's buttons.
func buttons(cr githubtest.CheckRun) []string {
	var ids []string
	for _, a := range cr.Actions {
		ids = append(ids, a.Identifier)
	}
	return ids
}

// awaitButtons waits for the newest check run name on sha to offer want.
func (h *harness) awaitButtons(name, sha string, want ...string) {
	h.t.Helper()
	h.await(fmt.Sprintf("%s on %.7s to offer %v", name, sha, want), func() bool {
		cr, ok := h.checkRun(name, sha)
		return ok && slices.Equal(buttons(cr), want)
	})
}

// TestPromoteAndUnblockButtons: a revision waiting for /promote has a
// Promote button, and a blocked stage an Unblock button; each acts only on
// the revision of its check run, with the clicker's permission.
func TestPromoteAndUnblockButtons(t *testing.T) {
	t.Parallel()
	h := newHarness(t, manualProdPipeline())
	const clicker, reader = "clicker", "reader"
	h.repo.SetPermission(clicker, "write", "write")
	h.repo.SetPermission(reader, "read", "read")

	a := h.commitAndPush()
	h.await("prod to wait for /promote", func() bool { w := h.stage("prod").Waiting; return w != nil && w.SHA == a })

	h.run(t, "promote", func(t *testing.T) {
		h.awaitButtons("railyard/prod", a, "promote", "cancel")
		h.refusedClick("prod", a, "promote", reader, "@reader has read permission on this repository; /promote on prod needs write")
		h.click("prod", a, "promote", clicker)
		h.awaitStage("prod", engine.Succeeded, a)
		if j := h.stage("prod").Job; j.Operation != engine.OpPromote || j.Actor != clicker {
			t.Errorf("prod job %s by %s, want a promotion by %s", j.Operation, j.Actor, clicker)
		}
		if cr := h.awaitCheckRun("railyard/prod", a, "success"); slices.Contains(buttons(cr), "promote") {
			t.Errorf("the promoted check run still offers Promote: %v", buttons(cr))
		}
	})

	b := h.commitAndPush()
	h.await("prod to wait for b", func() bool { w := h.stage("prod").Waiting; return w != nil && w.SHA == b })

	h.run(t, "promote on an older check run", func(t *testing.T) {
		h.refusedClick("prod", a, "promote", clicker, fmt.Sprintf("this button is on %s, but the revision waiting for prod is %s", short(a), short(b)))
	})

	// The waiting revision's Cancel button drops it, as /cancel to= does.
	h.run(t, "cancel the waiting revision", func(t *testing.T) {
		h.awaitButtons("railyard/prod", b, "promote", "cancel")
		h.refusedClick("prod", b, "cancel", reader, "@reader has read permission on this repository; /cancel on prod needs write")
		h.click("prod", b, "cancel", clicker)
		cr := h.awaitCheckRun("railyard/prod", b, "cancelled")
		if !strings.Contains(cr.Summary, "Cancelled by:** @"+clicker) || len(buttons(cr)) != 0 {
			t.Errorf("the dropped revision's check run offers %v:\n%s", buttons(cr), cr.Summary)
		}
		if s := h.stage("prod"); s.Waiting != nil || s.Current != a {
			t.Errorf("prod after the drop: %s", h.describe())
		}
		if audit := h.audit(); audit[0].Operation != engine.OpCancel || audit[0].Actor != clicker || audit[0].From != b {
			t.Errorf("newest audit entry %+v, want the cancel of %.7s by %s", audit[0], b, clicker)
		}
	})

	h.run(t, "unblock", func(t *testing.T) {
		h.comment(fmt.Sprintf("/rollback stage=build to=%s reason=bad", a))
		h.awaitStage("build", engine.RolledBack, a)
		h.awaitButtons("railyard/build", a, "rollback", "unblock")
		h.refusedClick("build", b, "unblock", clicker, fmt.Sprintf("this button is on %s, but build is now at %s", short(b), short(a)))
		h.refusedClick("build", a, "unblock", reader, "@reader has read permission on this repository; /unblock on build needs write")
		h.click("build", a, "unblock", clicker)
		h.await("build to be unblocked", func() bool { return !h.stage("build").Blocked })
		if audit := h.audit(); audit[0].Operation != engine.OpUnblock || audit[0].Actor != clicker || audit[0].Stage != "build" {
			t.Errorf("newest audit entry %+v, want unblock of build by %s", audit[0], clicker)
		}
	})
}
