package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/railyard/railyard/engine"
)

const threeStages = `
stages:
  - name: build
    steps:
` + "%s" + `
  - name: staging
    steps:
` + "%s" + `
  - name: prod
    production: true
    steps:
      - name: terraform
        infra: true
        run: echo "$RAILYARD_STAGE:terraform:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> $DIR/log
` + "%s"

func pipeline3() string {
	return fmt.Sprintf(threeStages, markStep("compile"), markStep("deploy"), markStep("deploy"))
}

func TestPushRunsEveryStageInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline3())
	sha := h.commitAndPush()

	h.awaitStage("prod", engine.Succeeded, sha)
	s7 := short(sha)
	want := []string{
		"build:compile:" + s7 + ":deploy",
		"staging:deploy:" + s7 + ":deploy",
		"prod:terraform:" + s7 + ":deploy",
		"prod:deploy:" + s7 + ":deploy",
	}
	if got := h.marks(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("steps ran %v, want %v", got, want)
	}
	for _, stage := range []string{"build", "staging", "prod"} {
		cr := h.awaitCheckRun("railyard/"+stage, sha, "success")
		if !strings.Contains(cr.Title, "Deployed "+s7+" to "+stage) {
			t.Errorf("%s check run title %q", stage, cr.Title)
		}
		if !strings.Contains(cr.Summary, "@"+user) || !strings.Contains(cr.Summary, "| deploy |") && stage != "build" {
			t.Errorf("%s check run summary lacks actor or steps:\n%s", stage, cr.Summary)
		}
		ds := h.deployments(stage)
		if len(ds) != 1 {
			t.Fatalf("%s has %d deployments, want 1", stage, len(ds))
		}
		d := ds[0]
		if d.Ref != sha || d.Task != "deploy" || d.AutoMerge == nil || *d.AutoMerge || d.RequiredContexts == nil || len(d.RequiredContexts) != 0 {
			t.Errorf("%s deployment = ref %s task %s auto_merge %v required_contexts %v", stage, d.Ref, d.Task, d.AutoMerge, d.RequiredContexts)
		}
		if d.Production != (stage == "prod") {
			t.Errorf("%s deployment production_environment = %v", stage, d.Production)
		}
		h.await(stage+" deployment success", func() bool {
			d = h.deployments(stage)[0]
			return lastState(d) == "success"
		})
		for _, st := range d.Statuses {
			if st.LogURL != cr.HTMLURL {
				t.Errorf("%s status %s log_url %q, want the check run %q", stage, st.State, st.LogURL, cr.HTMLURL)
			}
			if st.AutoInactive == nil || !*st.AutoInactive {
				t.Errorf("%s status %s without auto_inactive: true", stage, st.State)
			}
		}
		if got := states(d); !shownInOrder(got, "queued", "in_progress", "success") {
			t.Errorf("%s deployment statuses %v", stage, got)
		}
	}
	if s := h.stage("prod"); s.Current != sha {
		t.Errorf("prod current = %q, want %s", s.Current, sha)
	}
}

func TestManualStageWaitsForPromote(t *testing.T) {
	t.Parallel()
	h := newHarness(t, manualProdPipeline())
	sha := h.commitAndPush()
	h.awaitCheckRun("railyard/build", sha, "success")
	h.await("prod to wait for /promote", func() bool {
		w := h.stage("prod").Waiting
		return w != nil && w.SHA == sha && strings.Contains(w.Hold, "/promote")
	})
	if h.hasMark("prod:deploy:" + short(sha) + ":deploy") {
		t.Fatal("manual stage ran without /promote")
	}
	reply := h.comment("/promote stage=prod")
	if !strings.Contains(reply, "Promoting "+short(sha)+" to prod") {
		t.Errorf("reply to /promote: %q", reply)
	}
	h.awaitStage("prod", engine.Succeeded, sha)
	if !h.hasMark("prod:deploy:" + short(sha) + ":promote") {
		t.Errorf("prod did not run for the promotion: %v", h.marks())
	}
}

// gateStep is a step that waits until the file $DIR/open-<stage> exists,
// leaving its shell PID in $DIR/pid-<stage>-<sha7>.
func gateStep(stage string) string {
	return fmt.Sprintf(`      - name: gate
        run: echo $$ > $DIR/pid-%[1]s-$(echo $RAILYARD_SHA | cut -c1-7); while [ ! -f $DIR/open-%[1]s ]; do sleep 0.02; done
`, stage)
}

func (h *harness) open(stage string) {
	os.WriteFile(filepath.Join(h.dir, "open-"+stage), nil, 0o644)
}

func (h *harness) awaitPID(stage, sha string) int {
	h.t.Helper()
	var pid int
	h.await("step of "+stage+" to start", func() bool {
		data, err := os.ReadFile(filepath.Join(h.dir, "pid-"+stage+"-"+short(sha)))
		if err != nil || len(data) == 0 || data[len(data)-1] != '\n' {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil
	})
	return pid
}

func TestNewerWaitingRevisionSupersedesOlder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s%s`, gateStep("build"), markStep("compile")))
	a := h.commitAndPush()
	h.awaitPID("build", a)
	b := h.commitAndPush()
	h.await("b to wait", func() bool { w := h.stage("build").Waiting; return w != nil && w.SHA == b })
	c := h.commitAndPush()
	h.await("c to wait", func() bool { w := h.stage("build").Waiting; return w != nil && w.SHA == c })

	skipped := h.awaitCheckRun("railyard/build", b, "skipped")
	if !strings.Contains(skipped.Title, "Superseded by "+short(c)) {
		t.Errorf("superseded check run title %q", skipped.Title)
	}
	h.open("build")
	h.awaitStage("build", engine.Succeeded, c)
	if h.hasMark("build:compile:" + short(b) + ":deploy") {
		t.Error("the superseded revision ran")
	}
	for _, sha := range []string{a, c} {
		if !h.hasMark("build:compile:" + short(sha) + ":deploy") {
			t.Errorf("%s did not run: %v", short(sha), h.marks())
		}
	}
	// Deployments reach GitHub after the state changes: wait for c's.
	h.awaitCheckRun("railyard/build", c, "success")
	h.await("c's deployment", func() bool {
		for _, d := range h.deployments("build") {
			if d.SHA == c {
				return true
			}
		}
		return false
	})
	for _, d := range h.deployments("build") {
		if d.SHA == b {
			t.Error("the superseded revision got a deployment")
		}
	}
	if n := len(h.deployments("build")); n != 2 {
		t.Errorf("%d deployments, want 2 (the superseded revision never deployed)", n)
	}
}

func TestStopHoldsPushesAndResumeDeploysNewest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline3())
	head := h.commit()
	if reply := h.comment("/stop reason=incident 42"); !strings.Contains(reply, "Stopped the pipeline") {
		t.Fatalf("reply to /stop: %q", reply)
	}
	pipelineRun := h.awaitCheckRun("railyard/pipeline", head, "neutral")
	if !strings.Contains(pipelineRun.Summary, "incident 42") || !strings.Contains(pipelineRun.Title, "@"+user) {
		t.Errorf("railyard/pipeline check run for /stop: %q\n%s", pipelineRun.Title, pipelineRun.Summary)
	}
	a := h.commitAndPush()
	h.await("a to be held with a queued check run that says why", func() bool {
		w := h.stage("build").Waiting
		cr, _ := h.checkRun("railyard/build", a)
		return w != nil && w.SHA == a && cr.Status == "queued" && strings.Contains(cr.Summary, "stopped by @"+user+": incident 42")
	})
	b := h.commitAndPush()
	h.await("b to be held", func() bool { w := h.stage("build").Waiting; return w != nil && w.SHA == b })
	if len(h.marks()) != 0 {
		t.Fatalf("steps ran while stopped: %v", h.marks())
	}

	h.comment("/resume")
	h.awaitStage("prod", engine.Succeeded, b)
	h.awaitCheckRun("railyard/build", a, "skipped")
	for _, m := range h.marks() {
		if strings.Contains(m, short(a)) {
			t.Errorf("older held revision ran: %s", m)
		}
	}
}

func TestCancelKillsTheStepAndStopsPromotion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s`, gateStep("build"), markStep("deploy")))
	sha := h.commitAndPush()
	pid := h.awaitPID("build", sha)
	h.awaitStage("build", engine.InProgress, sha)

	reply := h.comment("/cancel stage=build reason=wrong commit")
	if !strings.Contains(reply, "Cancelling deploy of build") {
		t.Errorf("reply to /cancel: %q", reply)
	}
	cr := h.awaitCheckRun("railyard/build", sha, "cancelled")
	if !strings.Contains(cr.Summary, "Cancelled by:** @"+user) {
		t.Errorf("cancelled check run summary:\n%s", cr.Summary)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("step process %d still runs after cancel", pid)
	}
	if s := h.stage("build"); s.State != engine.Cancelled {
		t.Errorf("build is %s, want cancelled", s.State)
	}
	if s := h.stage("staging"); s.State != engine.Idle || s.Job != nil || s.Waiting != nil {
		t.Errorf("staging moved after a cancelled build: %s", h.describe())
	}
	d := h.deployments("build")[0]
	h.await("deployment error status", func() bool {
		d = h.deployments("build")[0]
		return len(d.Statuses) > 0 && d.Statuses[len(d.Statuses)-1].State == "error"
	})
}

func TestRetryRerunsAllStepsAndPromotionContinues(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s      - name: flaky
        run: test ! -f $DIR/fail
  - name: staging
    steps:
%s`, markStep("compile"), markStep("deploy")))
	os.WriteFile(filepath.Join(h.dir, "fail"), nil, 0o644)
	sha := h.commitAndPush()
	failed := h.awaitCheckRun("railyard/build", sha, "failure")
	if len(failed.Actions) != 1 || failed.Actions[0].Identifier != "retry" {
		t.Errorf("failed check run buttons %+v, want Retry", failed.Actions)
	}
	if reply := h.comment("/retry stage=staging"); !strings.Contains(reply, "cannot retry staging: it is idle, not failed or cancelled") {
		t.Errorf("retry of an idle stage: %q", reply)
	}
	os.Remove(filepath.Join(h.dir, "fail"))
	h.comment("/retry stage=build")
	h.awaitStage("staging", engine.Succeeded, sha)
	runs := strings.Count(strings.Join(h.marks(), " "), "build:compile:"+short(sha))
	if runs != 2 {
		t.Errorf("compile ran %d times, want 2 (first try and retry): %v", runs, h.marks())
	}
	if !h.hasMark("build:compile:" + short(sha) + ":retry") {
		t.Errorf("retry did not run with RAILYARD_OPERATION=retry: %v", h.marks())
	}
}

func TestRollbackSkipsInfraBlocksAndUnblock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s      - name: terraform
        infra: true
        run: echo "$RAILYARD_STAGE:terraform:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> $DIR/log
  - name: prod
    steps:
%s`, markStep("compile"), markStep("deploy"), markStep("deploy")))
	old := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, old)
	bad := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, bad)

	reply := h.comment(fmt.Sprintf(`/rollback stage=staging to=%s reason="bad migration"`, short(old)))
	if !strings.Contains(reply, "Rolling back staging to "+short(old)) {
		t.Fatalf("reply to /rollback: %q", reply)
	}
	h.awaitStage("staging", engine.RolledBack, old)
	if !h.hasMark("staging:deploy:" + short(old) + ":rollback") {
		t.Errorf("rollback did not deploy %s: %v", short(old), h.marks())
	}
	if h.hasMark("staging:terraform:" + short(old) + ":rollback") {
		t.Error("infra step ran on rollback without infra=true")
	}
	cr := h.awaitCheckRunTitled("railyard/staging", old, "success", "Rolled back")
	if !strings.Contains(cr.Title, "Rolled back staging to "+short(old)) || !strings.Contains(cr.Summary, "bad migration") || !strings.Contains(cr.Summary, "skipped (infra)") {
		t.Errorf("rollback check run: %q\n%s", cr.Title, cr.Summary)
	}
	// Its check run may reach GitHub before its deployment does.
	if rb := h.awaitDeploymentsOf("staging", "deploy:rollback", 1); rb[0].Ref != old {
		t.Errorf("rollback deployment ref %q, want %.7s", rb[0].Ref, old)
	}
	h.await("rollback deployment success", func() bool {
		ds := h.deployments("staging")
		st := ds[len(ds)-1].Statuses
		return len(st) > 0 && st[len(st)-1].State == "success" && st[len(st)-1].Description == "rollback by @"+user+": bad migration"
	})
	if !h.stage("staging").Blocked || !h.stage("prod").Blocked {
		t.Fatalf("rollback should block staging and prod: %s", h.describe())
	}

	next := h.commitAndPush()
	h.awaitStage("build", engine.Succeeded, next)
	h.await("next revision held before blocked staging", func() bool {
		w := h.stage("staging").Waiting
		return w != nil && w.SHA == next && strings.Contains(w.Hold, "blocked")
	})
	if h.hasMark("staging:deploy:" + short(next) + ":deploy") {
		t.Fatal("a push went into a blocked stage")
	}
	h.comment("/unblock stage=staging")
	h.awaitStage("staging", engine.Succeeded, next)
	h.await("prod to hold the revision: it is still blocked", func() bool {
		w := h.stage("prod").Waiting
		return w != nil && w.SHA == next
	})
	h.comment("/unblock stage=prod")
	h.awaitStage("prod", engine.Succeeded, next)
}

func TestRollForwardBlocksOnlyTheStage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline3())
	a := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, a)
	h.comment("/stop reason=hold prod")
	b := h.commitAndPush()
	h.comment("/resume")
	h.awaitStage("staging", engine.Succeeded, b)
	h.awaitStage("prod", engine.Succeeded, b)
	h.comment(fmt.Sprintf("/rollback stage=prod to=%s reason=oops", a))
	h.awaitStage("prod", engine.RolledBack, a)
	reply := h.comment(fmt.Sprintf("/rollforward stage=prod to=%s infra=true reason=fixed", b))
	if !strings.Contains(reply, "Rolling forward prod to "+short(b)) {
		t.Fatalf("reply to /rollforward: %q", reply)
	}
	h.awaitStage("prod", engine.RolledForward, b)
	if !h.hasMark("prod:terraform:" + short(b) + ":rollforward") {
		t.Errorf("infra=true should run the infra step: %v", h.marks())
	}
	if !h.stage("prod").Blocked || h.stage("staging").Blocked {
		t.Errorf("roll forward blocks the stage only: %s", h.describe())
	}
}

func TestPatchHoldsPushesUntilRelease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline3())
	a := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, a)
	fix := h.commit()
	reply := h.comment(fmt.Sprintf("/patch stage=prod to=%s reason=hotfix", fix))
	if !strings.Contains(reply, "Patch mode") {
		t.Fatalf("reply to /patch: %q", reply)
	}
	h.awaitStage("prod", engine.Succeeded, fix)
	if !h.hasMark("prod:deploy:" + short(fix) + ":patch") {
		t.Errorf("patch did not deploy: %v", h.marks())
	}
	held := h.commitAndPush()
	h.await("push to be held in patch mode", func() bool {
		w := h.stage("build").Waiting
		return w != nil && w.SHA == held && strings.Contains(w.Hold, "patch mode")
	})
	if reply := h.comment("/patch stage=staging to=" + a + " reason=again"); !strings.Contains(reply, "already in patch mode") {
		t.Errorf("second /patch: %q", reply)
	}
	h.comment("/release")
	h.awaitStage("prod", engine.Succeeded, held)
}

func TestRedeployCacheSkipUnpacksAfresh(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s      - name: touch
        run: test ! -f stale && touch stale || echo reused >> $DIR/log
`, markStep("compile")))
	sha := h.commitAndPush()
	h.awaitStage("build", engine.Succeeded, sha)
	h.comment("/redeploy stage=build")
	h.await("redeploy to finish", func() bool {
		s := h.stage("build")
		return s.State == engine.Succeeded && s.Job.Operation == engine.OpRedeploy
	})
	if !h.hasMark("reused") {
		t.Fatalf("cache=use should reuse the unpacked revision: %v", h.marks())
	}
	tarballs := h.gh.Count("repos/download-tarball-archive")
	h.comment("/redeploy stage=build cache=skip")
	h.await("second redeploy", func() bool {
		return h.gh.Count("repos/download-tarball-archive") > tarballs && h.stage("build").State == engine.Succeeded
	})
	if n := strings.Count(strings.Join(h.marks(), " "), "reused"); n != 1 {
		t.Errorf("cache=skip reused the old unpacked revision (%d reuses)", n)
	}
}

func TestRestartAndShutdownNeedACurrentRevision(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s    restart:
      - name: restart
        run: echo restart >> $DIR/log
    shutdown:
      - name: shutdown
        run: echo shutdown >> $DIR/log
`, markStep("compile")))
	h.commit()
	for cmd, want := range map[string]string{
		"/restart stage=build":               "cannot restart build: it has no current revision",
		"/shutdown stage=build reason=maint": "cannot shutdown build: it has no current revision",
		"/redeploy stage=build cache=skip":   "cannot redeploy build: it has no current revision",
	} {
		if reply := h.comment(cmd); !strings.Contains(reply, want) {
			t.Errorf("%s: reply %q, want %q", cmd, reply, want)
		}
	}
	sha := h.commitAndPush()
	h.awaitStage("build", engine.Succeeded, sha)
	h.comment("/restart stage=build")
	h.await("restart to run", func() bool { return h.hasMark("restart") && h.stage("build").State == engine.Succeeded })
	h.comment("/shutdown stage=build reason=maintenance")
	h.await("shutdown to run", func() bool { return h.hasMark("shutdown") })
	if strings.Count(strings.Join(h.marks(), " "), "build:compile") != 1 {
		t.Errorf("restart/shutdown ran deploy steps: %v", h.marks())
	}
}

func TestDescriptionsFitGitHubLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline3())
	a := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, a)
	long := strings.Repeat("very long reason ", 20)
	h.comment(fmt.Sprintf(`/rollback stage=prod to=%s reason="%s"`, a, strings.TrimSpace(long)))
	h.awaitStage("prod", engine.RolledBack, a)
	h.await("statuses", func() bool {
		ds := h.deployments("prod")
		return lastState(ds[len(ds)-1]) == "success"
	})
	for _, d := range h.repo.Deployments() {
		for _, st := range d.Statuses {
			if n := utf8.RuneCountInString(st.Description); n > 140 {
				t.Errorf("deployment status description has %d characters: %q", n, st.Description)
			}
		}
	}
}
