package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/engine"
)

// TestRetryRepeatsTheFailedRollback: /retry after a failed /rollback
// rolls back again — RAILYARD_OPERATION stays rollback, the infra step
// stays skipped, the blocks stay, and nothing is promoted to prod.
func TestRetryRepeatsTheFailedRollback(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
      - name: terraform
        infra: true
        run: echo "$RAILYARD_STAGE:terraform:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> $DIR/log
%s      - name: flaky
        run: test ! -f $DIR/fail
  - name: prod
    steps:
%s`, markStep("compile"), markStep("deploy"), markStep("deploy")))
	a := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, a)
	b := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, b)

	os.WriteFile(filepath.Join(h.dir, "fail"), nil, 0o644)
	h.comment(fmt.Sprintf("/rollback stage=staging to=%s reason=bad", a))
	h.awaitStage("staging", engine.Failed, a)
	os.Remove(filepath.Join(h.dir, "fail"))
	before := len(h.marks())

	reply := h.comment("/retry stage=staging")
	if !strings.Contains(reply, "Retrying rollback of staging at "+short(a)) {
		t.Errorf("/retry replied %q", reply)
	}
	h.awaitStage("staging", engine.RolledBack, a)
	if got, want := h.marks()[before:], []string{"staging:deploy:" + short(a) + ":rollback"}; !slices.Equal(got, want) {
		t.Errorf("the retry ran %v, want %v (infra skipped, still a rollback)", got, want)
	}
	staging, prod := h.stage("staging"), h.stage("prod")
	if !staging.Blocked || !prod.Blocked {
		t.Errorf("the retry lifted the rollback's blocks: %s", h.describe())
	}
	if prod.Current != b || prod.Job.SHA != b || prod.Waiting != nil {
		t.Errorf("the retried rollback was promoted to prod: %s", h.describe())
	}
	if d := h.lastDeployment("staging"); d.Task != "deploy:rollback" || d.Ref != a {
		t.Errorf("the retry's deployment task %q ref %.7s, want deploy:rollback of %.7s", d.Task, d.Ref, a)
	}
}

// TestRetryOfACancelledFirstStage: a cancelled first stage cannot be
// promoted into; /retry runs it again, and on success it is promoted on.
func TestRetryOfACancelledFirstStage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s%s  - name: staging
    steps:
%s`, gateStep("build"), markStep("compile"), markStep("deploy")))
	a := h.commitAndPush()
	h.awaitPID("build", a)
	h.comment("/cancel stage=build")
	h.awaitStage("build", engine.Cancelled, a)
	h.open("build")

	reply := h.comment("/retry stage=build")
	if !strings.Contains(reply, "Retrying deploy of build at "+short(a)) {
		t.Errorf("/retry of the cancelled build replied %q", reply)
	}
	h.awaitStage("staging", engine.Succeeded, a)
	if want := []string{"build:compile:" + short(a) + ":retry", "staging:deploy:" + short(a) + ":deploy"}; !slices.Equal(h.marks(), want) {
		t.Errorf("steps ran %v, want %v", h.marks(), want)
	}
	h.awaitCheckRun("railyard/build", a, "success")
}

// TestRetryOfAFailedPatch: a failed /patch is retried in patch mode, as a
// patch, without /release; patch mode stays.
func TestRetryOfAFailedPatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s      - name: flaky
        run: test ! -f $DIR/fail
`, markStep("compile"), markStep("deploy")))
	a := h.commitAndPush()
	h.awaitStage("staging", engine.Succeeded, a)
	b := h.commit()

	os.WriteFile(filepath.Join(h.dir, "fail"), nil, 0o644)
	h.comment(fmt.Sprintf("/patch stage=staging to=%s reason=hotfix", b))
	h.awaitStage("staging", engine.Failed, b)
	os.Remove(filepath.Join(h.dir, "fail"))

	reply := h.comment("/retry stage=staging")
	if !strings.Contains(reply, "Retrying patch of staging at "+short(b)) {
		t.Errorf("/retry of the failed patch replied %q", reply)
	}
	h.awaitStage("staging", engine.Succeeded, b)
	if got := h.marks(); got[len(got)-1] != "staging:deploy:"+short(b)+":patch" {
		t.Errorf("steps ran %v, want the patch repeated last", got)
	}
	if pt := h.pipeline().Patched; pt == nil || pt.Stage != "staging" || pt.SHA != b {
		t.Errorf("patch mode after the retry: %+v, want staging at %.7s", pt, b)
	}
	if d := h.lastDeployment("staging"); d.Task != "deploy:patch" || d.Ref != b {
		t.Errorf("the retry's deployment task %q ref %.7s, want deploy:patch of %.7s", d.Task, d.Ref, b)
	}
}
