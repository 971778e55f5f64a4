package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/server"
)

// healthPipeline has a staging stage whose migrate step fails for a
// revision carrying the file bad-migration, and whose health check passes
// only for a revision whose file "health" says ok, and only while
// $DIR/down does not exist (the environment itself is broken). The check
// leaves a mark per attempt and prints what it saw.
func healthPipeline() string {
	return fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s      - name: migrate
        run: test ! -f bad-migration
    verify:
      run: echo "$RAILYARD_STAGE:verify:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> $DIR/log; echo "health is $(cat health)"; test "$(cat health)" = ok && test ! -f $DIR/down
      retries: 1
      interval: 10ms
    auto_rollback: true
  - name: prod
    steps:
%s`, markStep("compile"), markStep("deploy"), markStep("deploy"))
}

// pushRevision commits a revision carrying extra files (besides the
// pipeline file) and pushes it.
func (h *harness) pushRevision(extra map[string]string) string {
	h.t.Helper()
	saved := maps.Clone(h.files)
	defer func() { h.files = saved }()
	for name, content := range extra {
		h.files[name] = githubtest.File{Content: content}
	}
	sha := h.commit()
	h.push(sha)
	return sha
}

var (
	healthy   = map[string]string{"health": "ok"}
	unhealthy = map[string]string{"health": "sick"}
)

// auditOf returns the audit entries of one operation, newest first.
func (h *harness) auditOf(op engine.Operation) []engine.AuditEntry {
	h.t.Helper()
	all, err := h.srv.Engine().Audit(context.Background(), repoName, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []engine.AuditEntry
	for _, a := range all {
		if a.Operation == op {
			out = append(out, a)
		}
	}
	return out
}

// awaitDeploymentState waits until the newest status of d is state and
// returns the deployment as it is then.
func (h *harness) awaitDeploymentState(d githubtest.Deployment, state string) githubtest.Deployment {
	h.t.Helper()
	h.await(fmt.Sprintf("deployment %d to reach %s", d.ID, state), func() bool {
		for _, x := range h.repo.Deployments() {
			if x.ID == d.ID && len(x.Statuses) > 0 && x.Statuses[len(x.Statuses)-1].State == state {
				d = x
				return true
			}
		}
		return false
	})
	return d
}

func countMarks(h *harness, mark string) int {
	n := 0
	for _, m := range h.marks() {
		if m == mark {
			n++
		}
	}
	return n
}

func TestVerifyPassesOnARetry(t *testing.T) {
	t.Parallel()
	// The check counts its attempts in $DIR/n and passes from the second
	// on; it also records the environment it ran with, which must be the
	// steps' one plus its own env:, in the unpacked revision.
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s    verify:
      run: n=$(cat $DIR/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > $DIR/n; env | grep -E '^(RAILYARD_|SMOKE_)' | sort > $DIR/verify-env; echo "attempt $n"; test -f README && [ $n -ge 2 ]
      retries: 3
      interval: 10ms
      env: { SMOKE_URL: "https://staging.example" }
  - name: prod
    steps:
%s`, markStep("compile"), markStep("deploy"), markStep("deploy")))
	sha := h.commitAndPush()

	cr := h.awaitCheckRun("railyard/staging", sha, "success")
	for _, row := range []string{"| verify (attempt 1 of 4) | failure (exit 1) |", "| verify (attempt 2 of 4) | success |"} {
		if !strings.Contains(cr.Summary, row) {
			t.Errorf("check run summary lacks %q:\n%s", row, cr.Summary)
		}
	}
	if strings.Contains(cr.Summary, "attempt 3") {
		t.Errorf("verify ran again after it passed:\n%s", cr.Summary)
	}
	for _, tail := range []string{"### verify (attempt 1 of 4) (failure (exit 1))\n\n```\nattempt 1\n", "### verify (attempt 2 of 4) (success)\n\n```\nattempt 2\n"} {
		if !strings.Contains(cr.Text, tail) {
			t.Errorf("check run text lacks the output of an attempt %q:\n%s", tail, cr.Text)
		}
	}
	// Promotion continues once the check passes.
	h.awaitStage("prod", engine.Succeeded, sha)

	job := h.stage("staging").Job
	env, _ := os.ReadFile(filepath.Join(h.dir, "verify-env"))
	want := strings.Join([]string{
		"RAILYARD_ACTOR=" + job.Actor,
		"RAILYARD_CACHE=use",
		"RAILYARD_OPERATION=deploy",
		"RAILYARD_PREVIOUS_SHA=",
		"RAILYARD_REASON=" + job.Reason,
		"RAILYARD_REPOSITORY=" + repoName,
		"RAILYARD_SHA=" + sha,
		"RAILYARD_STAGE=staging",
		"SMOKE_URL=https://staging.example",
	}, "\n") + "\n"
	if string(env) != want {
		t.Errorf("verify ran with\n%s\nwant\n%s", env, want)
	}
}

func TestFailedVerifyAutoRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, healthPipeline())
	old := h.pushRevision(healthy)
	h.awaitStage("prod", engine.Succeeded, old)
	bad := h.pushRevision(unhealthy)

	failed := h.awaitCheckRun("railyard/staging", bad, "failure")
	for _, want := range []string{
		"| verify (attempt 1 of 2) | failure (exit 1) |",
		"| verify (attempt 2 of 2) | failure (exit 1) |",
		"Auto-rollback of staging to " + short(old) + " queued.",
	} {
		if !strings.Contains(failed.Summary, want) {
			t.Errorf("failed check run summary lacks %q:\n%s", want, failed.Summary)
		}
	}
	if n := strings.Count(failed.Text, "health is sick"); n != 2 {
		t.Errorf("failed check run text shows %d attempts' output, want 2:\n%s", n, failed.Text)
	}

	h.awaitStage("staging", engine.RolledBack, old)
	s7, b7 := short(old), short(bad)
	if !h.hasMark("staging:deploy:" + s7 + ":auto-rollback") {
		t.Errorf("auto-rollback did not deploy %s: %v", s7, h.marks())
	}
	// The rollback runs the health check too, with its own operation.
	if n := countMarks(h, "staging:verify:"+s7+":auto-rollback"); n != 1 {
		t.Errorf("verify ran %d times for the auto-rollback, want 1: %v", n, h.marks())
	}
	if n := countMarks(h, "staging:verify:"+b7+":deploy"); n != 2 {
		t.Errorf("verify ran %d times for the bad revision, want 2: %v", n, h.marks())
	}

	const reason = "auto-rollback: verify failed"
	cr := h.awaitCheckRunTitled("railyard/staging", old, "success", "Auto-rolled back")
	if cr.Title != "Auto-rolled back staging to "+s7 {
		t.Errorf("auto-rollback check run title %q", cr.Title)
	}
	for _, want := range []string{"**Operation:** auto-rollback", "**Actor:** @railyard", "**Reason:** " + reason} {
		if !strings.Contains(cr.Summary, want) {
			t.Errorf("auto-rollback check run summary lacks %q:\n%s", want, cr.Summary)
		}
	}

	s := h.stage("staging")
	if !s.Blocked || s.Current != old || !strings.Contains(s.BlockedBy, "verify failed") {
		t.Errorf("staging after auto-rollback: blocked=%v (%s) current=%.7s", s.Blocked, s.BlockedBy, s.Current)
	}
	// The failing revision never promotes.
	if p := h.stage("prod"); p.Current != old || p.Job.SHA != old || p.Waiting != nil {
		t.Errorf("prod moved after staging failed: %s", h.describe())
	}
	if h.hasMark("prod:deploy:" + b7 + ":deploy") {
		t.Error("the failing revision reached prod")
	}
	if n := len(h.deployments("prod")); n != 1 {
		t.Errorf("prod has %d deployments, want 1", n)
	}

	badDeploy := h.awaitDeploymentsOf("staging", "deploy", 2)
	if len(badDeploy) != 2 || badDeploy[1].Ref != bad {
		t.Fatalf("staging deploy deployments: %+v", badDeploy)
	}
	h.awaitDeploymentState(badDeploy[1], "failure")
	rbs := h.awaitDeploymentsOf("staging", "deploy:auto-rollback", 1)
	if len(rbs) != 1 {
		t.Fatalf("%d auto-rollback deployments, want 1", len(rbs))
	}
	rb := h.awaitDeploymentState(rbs[0], "success")
	wantDesc := "auto-rollback by @railyard: " + reason
	if rb.Ref != old || rb.Description != wantDesc || rb.Statuses[len(rb.Statuses)-1].Description != wantDesc {
		t.Errorf("auto-rollback deployment ref %.7s description %q status %q", rb.Ref, rb.Description, rb.Statuses[len(rb.Statuses)-1].Description)
	}
	var payload map[string]any
	json.Unmarshal(rb.Payload, &payload)
	if payload["operation"] != "auto-rollback" || payload["actor"] != "railyard" || payload["reason"] != reason {
		t.Errorf("auto-rollback deployment payload %s", rb.Payload)
	}

	audit := h.auditOf(engine.OpAutoRollback)
	if len(audit) != 1 {
		t.Fatalf("%d auto-rollback audit entries, want 1", len(audit))
	}
	if a := audit[0]; a.Actor != "railyard" || a.Stage != "staging" || a.From != bad || a.To != old || a.Reason != reason {
		t.Errorf("auto-rollback audit entry %+v", a)
	}

	// Blocked: the next healthy revision waits before staging until /unblock.
	next := h.pushRevision(healthy)
	h.await("next revision held before blocked staging", func() bool {
		w := h.stage("staging").Waiting
		return w != nil && w.SHA == next && strings.Contains(w.Hold, "blocked")
	})
	h.comment("/unblock stage=staging")
	h.awaitStage("prod", engine.Succeeded, next)
}

func TestFailedStepAutoRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, healthPipeline())
	old := h.pushRevision(healthy)
	h.awaitStage("prod", engine.Succeeded, old)
	bad := h.pushRevision(map[string]string{"health": "ok", "bad-migration": ""})

	failed := h.awaitCheckRun("railyard/staging", bad, "failure")
	if !strings.Contains(failed.Summary, "| migrate | failure (exit 1) |") || strings.Contains(failed.Summary, "verify (attempt") {
		t.Errorf("failed check run should show migrate failing and no health check:\n%s", failed.Summary)
	}
	h.awaitStage("staging", engine.RolledBack, old)
	const reason = "auto-rollback: migrate failed"
	cr := h.awaitCheckRunTitled("railyard/staging", old, "success", "Auto-rolled back")
	if cr.Title != "Auto-rolled back staging to "+short(old) || !strings.Contains(cr.Summary, "**Reason:** "+reason) || !strings.Contains(cr.Summary, "**Actor:** @railyard") {
		t.Errorf("auto-rollback check run %q:\n%s", cr.Title, cr.Summary)
	}
	if !h.hasMark("staging:deploy:" + short(old) + ":auto-rollback") {
		t.Errorf("auto-rollback did not deploy %s: %v", short(old), h.marks())
	}
	if h.hasMark("staging:verify:" + short(bad) + ":deploy") {
		t.Error("verify ran after a failed step")
	}
	if a := h.auditOf(engine.OpAutoRollback); len(a) != 1 || a[0].Reason != reason || a[0].Actor != "railyard" {
		t.Errorf("auto-rollback audit entries %+v", a)
	}
	if !h.stage("staging").Blocked || h.stage("prod").Current != old || h.hasMark("prod:deploy:"+short(bad)+":deploy") {
		t.Errorf("staging should be blocked and prod untouched: %s", h.describe())
	}
}

func TestAutoRollbackNeedsAnEarlierGoodRevision(t *testing.T) {
	t.Parallel()
	h := newHarness(t, healthPipeline())
	bad := h.pushRevision(unhealthy)

	failed := h.awaitCheckRun("railyard/staging", bad, "failure")
	if !strings.Contains(failed.Summary, "No auto-rollback: staging has no earlier good revision.") {
		t.Errorf("failed check run does not say why nothing rolled back:\n%s", failed.Summary)
	}
	// The failure and the decision not to roll back commit together, so
	// the state now is final.
	if s := h.stage("staging"); s.State != engine.Failed || s.Blocked || s.Job.Operation != engine.OpDeploy {
		t.Errorf("staging after a failure with nothing to roll back to: %s", h.describe())
	}
	if n := len(h.deploymentsOf("staging", "deploy:auto-rollback")); n != 0 {
		t.Errorf("%d auto-rollback deployments, want none", n)
	}
	if a := h.auditOf(engine.OpAutoRollback); len(a) != 0 {
		t.Errorf("auto-rollback audit entries %+v, want none", a)
	}
	if s := h.stage("prod"); s.State != engine.Idle || s.Job != nil || s.Waiting != nil {
		t.Errorf("prod moved: %s", h.describe())
	}
}

func TestFailingAutoRollbackStopsThere(t *testing.T) {
	t.Parallel()
	h := newHarness(t, healthPipeline())
	first := h.pushRevision(healthy)
	h.awaitStage("prod", engine.Succeeded, first)
	second := h.pushRevision(healthy)
	h.awaitStage("prod", engine.Succeeded, second)
	// With staging itself down every health check fails: the deploy, then
	// the auto-rollback to second. A chained one would go on to first.
	os.WriteFile(filepath.Join(h.dir, "down"), nil, 0o644)
	bad := h.pushRevision(healthy)

	h.awaitCheckRun("railyard/staging", bad, "failure")
	cr := h.awaitCheckRun("railyard/staging", second, "failure")
	if !strings.HasPrefix(cr.Title, "Auto-rollback of staging to "+short(second)) {
		t.Errorf("failed auto-rollback check run title %q", cr.Title)
	}
	if !strings.Contains(cr.Summary, "No auto-rollback: this job was itself an auto-rollback.") {
		t.Errorf("failed auto-rollback check run does not say why it stops:\n%s", cr.Summary)
	}
	s := h.stage("staging")
	if s.State != engine.Failed || s.Job.Operation != engine.OpAutoRollback || s.Job.SHA != second || !s.Blocked {
		t.Errorf("staging after a failed auto-rollback: %s", h.describe())
	}
	if h.hasMark("staging:deploy:" + short(first) + ":auto-rollback") {
		t.Errorf("a failed auto-rollback triggered another: %v", h.marks())
	}
	if a := h.auditOf(engine.OpAutoRollback); len(a) != 1 || a[0].To != second {
		t.Errorf("auto-rollback audit entries %+v, want one to %.7s", a, second)
	}
	rbs := h.awaitDeploymentsOf("staging", "deploy:auto-rollback", 1)
	if len(rbs) != 1 {
		t.Fatalf("%d auto-rollback deployments, want 1", len(rbs))
	}
	h.awaitDeploymentState(rbs[0], "failure")
}

func TestCancelDoesNotAutoRollBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s%s    auto_rollback: true
  - name: prod
    steps:
%s`, markStep("compile"), gateStep("staging"), markStep("deploy"), markStep("deploy")))
	h.open("staging")
	old := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, old)
	os.Remove(filepath.Join(h.dir, "open-staging"))

	sha := h.commitAndPush()
	h.awaitPID("staging", sha)
	h.awaitStage("staging", engine.InProgress, sha)
	if reply := h.comment("/cancel stage=staging reason=not now"); !strings.Contains(reply, "Cancelling deploy of staging") {
		t.Fatalf("reply to /cancel: %q", reply)
	}
	cr := h.awaitCheckRun("railyard/staging", sha, "cancelled")
	if strings.Contains(cr.Summary, "uto-rollback") {
		t.Errorf("cancelled check run mentions an auto-rollback:\n%s", cr.Summary)
	}
	// Cancelled is final: an auto-rollback would have been queued with it.
	s := h.stage("staging")
	if s.State != engine.Cancelled || s.Job.SHA != sha || s.Blocked || s.Current != old {
		t.Errorf("staging after /cancel: %s", h.describe())
	}
	if n := len(h.deploymentsOf("staging", "deploy:auto-rollback")); n != 0 {
		t.Errorf("%d auto-rollback deployments after /cancel, want none", n)
	}
	if a := h.auditOf(engine.OpAutoRollback); len(a) != 0 {
		t.Errorf("auto-rollback audit entries after /cancel: %+v", a)
	}
	if p := h.stage("prod"); p.Job.SHA != old || p.Waiting != nil {
		t.Errorf("prod moved after a cancelled staging: %s", h.describe())
	}
}

// TestCancelledStepThatFailsDoesNotAutoRollBack covers a step that fails on
// its own after a person's /cancel, before the worker noticed the cancel
// (it looks every Poll, made long here): the person's cancel still wins.
func TestCancelledStepThatFailsDoesNotAutoRollBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
      - name: deploy
        run: test -f $DIR/pass || { while [ ! -f $DIR/fail-now ]; do sleep 0.01; done; exit 1; }
    auto_rollback: true
`, markStep("compile")), func(_ *config.Env, o *server.Options) { o.Engine.Poll = 10 * time.Second })
	os.WriteFile(filepath.Join(h.dir, "pass"), nil, 0o644)
	old := h.commitAndPush()
	h.awaitStage("staging", engine.Succeeded, old)
	os.Remove(filepath.Join(h.dir, "pass"))

	sha := h.commitAndPush()
	h.awaitStage("staging", engine.InProgress, sha)
	h.comment("/cancel stage=staging reason=not now")
	os.WriteFile(filepath.Join(h.dir, "fail-now"), nil, 0o644)

	cr := h.awaitCheckRun("railyard/staging", sha, "cancelled")
	if strings.Contains(cr.Summary, "uto-rollback") {
		t.Errorf("cancelled check run mentions an auto-rollback:\n%s", cr.Summary)
	}
	if s := h.stage("staging"); s.State != engine.Cancelled || s.Job.SHA != sha || s.Blocked {
		t.Errorf("staging after /cancel: %s", h.describe())
	}
	if a := h.auditOf(engine.OpAutoRollback); len(a) != 0 {
		t.Errorf("auto-rollback audit entries after /cancel: %+v", a)
	}
}
