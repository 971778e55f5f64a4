package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/queue"
)

func (w *world) reqBy(actor, reason string) Request {
	r := w.req()
	r.Actor, r.Reason = actor, reason
	return r
}

// jobOf is the job id behind a result's check run.
func jobOf(t *testing.T, res Result) string {
	t.Helper()
	id, ok := strings.CutPrefix(res.CheckRunKey, "job:")
	if !ok {
		t.Fatalf("result %+v names no job", res)
	}
	return id
}

// awaitSteps waits until n steps have left their mark.
func (w *world) awaitSteps(n int) {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(w.ranSteps()) < n {
		if time.Now().After(deadline) {
			w.t.Fatalf("%d steps did not start", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *world) expectSteps(want ...string) {
	w.t.Helper()
	if got := w.ranSteps(); !slices.Equal(got, want) {
		w.t.Errorf("steps ran\n  %v\nwant\n  %v", got, want)
	}
}

// TestStopLetsRunningStagesFinishAndHoldsTheRest stops the pipeline while
// build runs: build finishes, its promotion and a new push are held, and
// /resume starts both, newest first in pipeline order.
func TestStopLetsRunningStagesFinishAndHoldsTheRest(t *testing.T) {
	w := newWorld(t)
	if _, err := w.e.Deploy(w.ctx, w.req(), shaC, 1); err != nil {
		t.Fatal(err)
	}
	running := w.claimAll()
	if len(running) != 1 || running[0].ref.Stage != "build" {
		t.Fatalf("queued %+v, want build", running)
	}
	if _, err := w.e.Stop(w.ctx, w.reqBy("bob", "incident")); err != nil {
		t.Fatal(err)
	}
	if err := w.e.RunJob(w.ctx, running[0].lease.Job); err != nil {
		t.Fatal(err)
	}
	const held = "held: the pipeline is stopped by @bob: incident"
	p := w.pipeline()
	if s := p.Stage("build"); s.State != Succeeded || s.Current != shaC {
		t.Errorf("build is %s at %.7s, want succeeded at ccccccc", s.State, s.Current)
	}
	staging := p.Stage("staging")
	if staging.State != Idle || staging.Waiting == nil || staging.Waiting.SHA != shaC || staging.Waiting.Hold != held {
		t.Fatalf("staging is %s waiting %+v; want idle with ccccccc %q", staging.State, staging.Waiting, held)
	}
	if cr, _ := w.rep.checkRun(staging.Waiting.ID); cr.Status != "queued" || !strings.Contains(cr.Summary, held) {
		t.Errorf("the held promotion's check run is %s:\n%s\nwant queued saying %q", cr.Status, cr.Summary, held)
	}
	if _, err := w.e.Deploy(w.ctx, w.req(), shaD, 2); err != nil {
		t.Fatal(err)
	}
	if jobs := w.claimAll(); len(jobs) != 0 {
		t.Fatalf("a stopped pipeline queued %d jobs", len(jobs))
	}

	res, err := w.e.Resume(w.ctx, w.req())
	if err != nil {
		t.Fatal(err)
	}
	if want := "Resumed the pipeline. Started build at ddddddd, staging at ccccccc."; res.Message != want {
		t.Errorf("reply %q, want %q", res.Message, want)
	}
	w.runQueued()
	w.expectSteps(
		"build:compile:ccccccc:deploy",
		"build:compile:ddddddd:deploy",
		"staging:deploy:ccccccc:deploy",
		"prod:terraform:ccccccc:deploy", "prod:deploy:ccccccc:deploy",
		"staging:deploy:ddddddd:deploy",
		"prod:terraform:ddddddd:deploy", "prod:deploy:ddddddd:deploy",
	)
	for _, s := range w.pipeline().Stages {
		if s.State != Succeeded || s.Current != shaD || s.Waiting != nil {
			t.Errorf("%s ends %s at %.7s waiting %+v; want succeeded at ddddddd", s.Name, s.State, s.Current, s.Waiting)
		}
	}
}

// TestPatchHoldsDeploymentsUntilRelease deploys a patch to one stage; a push
// meanwhile is held, the patch is not promoted, and /release starts the
// held push from the first stage.
func TestPatchHoldsDeploymentsUntilRelease(t *testing.T) {
	w := newWorld(t)
	w.seed(settled())
	if _, err := w.e.Patch(w.ctx, w.reqBy("bob", "hotfix"), "staging", shaC); err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.Deploy(w.ctx, w.req(), shaD, 3); err != nil {
		t.Fatal(err)
	}
	w.runQueued()
	w.expectSteps("staging:deploy:ccccccc:patch")
	p := w.pipeline()
	if s := p.Stage("staging"); s.State != Succeeded || s.Current != shaC {
		t.Errorf("staging is %s at %.7s, want the patch ccccccc", s.State, s.Current)
	}
	if s := p.Stage("prod"); s.Current != shaA || s.Waiting != nil {
		t.Errorf("the patch went on to prod: %+v", s)
	}
	if w := p.Stage("build").Waiting; w == nil || w.SHA != shaD || !strings.HasPrefix(w.Hold, "held: patch mode (staging at ccccccc by @bob)") {
		t.Errorf("the push during patch mode waits with %+v", w)
	}
	if _, err := w.e.Patch(w.ctx, w.req(), "prod", shaC); !IsRefusal(err) {
		t.Errorf("a second patch: %v, want a refusal", err)
	}

	res, err := w.e.Release(w.ctx, w.req())
	if err != nil {
		t.Fatal(err)
	}
	if want := "Left patch mode. Started build at ddddddd."; res.Message != want {
		t.Errorf("reply %q, want %q", res.Message, want)
	}
	w.runQueued()
	w.expectSteps(
		"staging:deploy:ccccccc:patch",
		"build:compile:ddddddd:deploy",
		"staging:deploy:ddddddd:deploy",
		"prod:terraform:ddddddd:deploy", "prod:deploy:ddddddd:deploy",
	)
	if p := w.pipeline(); p.Patched != nil || p.Stage("prod").Current != shaD {
		t.Errorf("after release: patch %+v, prod at %.7s", p.Patched, p.Stage("prod").Current)
	}
}

// TestNewerWaitingRevisionSupersedesOlder holds two pushes: only the newest
// waits, the older one's check run ends skipped without a deployment, and a
// late redelivery of the older push changes nothing.
func TestNewerWaitingRevisionSupersedesOlder(t *testing.T) {
	w := newWorld(t)
	p := settled()
	stopped(p)
	w.seed(p)
	older, err := w.e.Deploy(w.ctx, w.req(), shaC, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.Deploy(w.ctx, w.req(), shaD, 4); err != nil {
		t.Fatal(err)
	}
	if waiting := w.pipeline().Stage("build").Waiting; waiting == nil || waiting.SHA != shaD {
		t.Fatalf("build waits with %+v, want ddddddd", waiting)
	}
	olderJob := jobOf(t, older)
	cr, _ := w.rep.checkRun(olderJob)
	if got := w.rep.checkRunStates(olderJob); !slices.Equal(got, []string{"queued", "skipped"}) {
		t.Errorf("the superseded revision's check run went %v, want queued then skipped", got)
	}
	if cr.Title != "Superseded by ddddddd" {
		t.Errorf("superseded check run title %q", cr.Title)
	}
	if _, ok := w.rep.deployment(olderJob); ok {
		t.Error("a revision that never started got a deployment")
	}

	before := w.raw()
	late, err := w.e.Deploy(w.ctx, w.req(), shaC, 3)
	if err != nil {
		t.Fatal(err)
	}
	if late.Message != "Ignored ccccccc: a newer push arrived first." || w.raw() != before {
		t.Errorf("a late older push: %q, state changed: %v", late.Message, w.raw() != before)
	}

	if _, err := w.e.Resume(w.ctx, w.req()); err != nil {
		t.Fatal(err)
	}
	w.runQueued()
	if got := w.ranSteps(); slices.Contains(got, "build:compile:ccccccc:deploy") || !slices.Contains(got, "build:compile:ddddddd:deploy") {
		t.Errorf("steps ran %v; want ddddddd built and ccccccc never", got)
	}
}

// TestRunJobTakesOverAfterItsProcessDied finds a job in_progress with the
// stage lock still held by its dead run, as a killed process leaves it: the
// takeover waits for that lock to expire (the dead run may be a process cut
// off from Redis, still stopping its step), then runs the job again from
// its first step and ends; the lock is freed.
func TestRunJobTakesOverAfterItsProcessDied(t *testing.T) {
	w := newWorld(t)
	w.seed(prodRunning("dead"))
	if err := w.rdb.Set(w.ctx, lockKey(testRepo, "prod"), "1:dead-run", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(jobRef{Repo: testRepo, Stage: "prod", Job: "dead"})
	job := queue.Job{Kind: JobKind, Repo: testRepo, Data: data, Deliveries: 2}

	// miniredis's clock stands still: the dead run's lock lives on.
	waiting, cancel := context.WithTimeout(w.ctx, 20*w.e.opts.Poll)
	defer cancel()
	if err := w.e.RunJob(waiting, job); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunJob while the dead run's lock lives = %v, want it to wait", err)
	}
	w.expectSteps()
	if got := w.rep.calls(); got != 0 {
		t.Errorf("%d reports while waiting for the lock, want none", got)
	}

	w.m.FastForward(time.Minute)
	if err := w.e.RunJob(w.ctx, job); err != nil {
		t.Fatal(err)
	}
	w.expectSteps("prod:terraform:bbbbbbb:deploy", "prod:deploy:bbbbbbb:deploy")
	if s := w.pipeline().Stage("prod"); s.State != Succeeded || s.Current != shaB {
		t.Errorf("prod ends %s at %.7s, want succeeded at bbbbbbb", s.State, s.Current)
	}
	if got := w.rep.checkRunStates("dead"); !slices.Equal(got, []string{"in_progress", "success"}) {
		t.Errorf("check run went %v, want in_progress then success", got)
	}
	if cr := w.rep.checks()[0].v; !strings.Contains(cr.Summary, "another one took it over") {
		t.Errorf("the running check run does not say the job was taken over:\n%s", cr.Summary)
	}
	if got := w.rep.deploymentStates("dead"); !slices.Equal(got, []string{"in_progress", "success"}) {
		t.Errorf("deployment statuses %v, want in_progress then success", got)
	}
	if n := w.rdb.Exists(w.ctx, lockKey(testRepo, "prod")).Val(); n != 0 {
		t.Error("the stage lock outlived the job")
	}
}

// TestRunThatLostItsLockStopsAndWritesNothing takes a running job's stage
// lock away, as a takeover does once a process cut off from Redis let it
// expire: the run stops its step, and neither its end nor anything else
// it would write reaches the state or GitHub.
func TestRunThatLostItsLockStopsAndWritesNothing(t *testing.T) {
	w := newWorldWith(t, `
stages:
  - name: build
    steps:
      - name: compile
        run: echo "$RAILYARD_STAGE:compile:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS; sleep 30
`)
	_, job := w.deployC(1)
	done := make(chan error, 1)
	go func() { done <- w.e.RunJob(w.ctx, job) }()
	w.awaitSteps(1)
	running := w.raw()
	reported := w.rep.calls()

	// The lock passes to another run of the stage.
	other := w.takeLock("build")
	w.awaitLost(done, func() string { return "its step still runs" })
	if w.raw() != running {
		t.Error("the run that lost the lock changed the stage's state")
	}
	if got := w.rep.calls(); got != reported {
		t.Errorf("the run that lost the lock reported %d more times to GitHub", got-reported)
	}
	if err := other.Check(w.ctx, w.rdb); err != nil {
		t.Errorf("the run that lost the lock freed its successor's: %v", err)
	}
}

// TestLateEndOfALostRunIsRefused lets a run whose lock passed to another
// try to record its end, as a process paused past its lock would: the
// store refuses it and the stage's state stays the new holder's.
func TestLateEndOfALostRunIsRefused(t *testing.T) {
	w := newWorld(t)
	p := prodRunning("j")
	prod := p.Stage("prod")
	w.seed(p)
	ref := jobRef{Repo: testRepo, Stage: "prod", Job: "j"}
	old, err := w.e.lock(w.ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	w.m.Del(lockKey(testRepo, "prod"))
	cur, err := w.e.lock(w.ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Token <= old.Token {
		t.Errorf("the second run's token %d is not above the first's %d", cur.Token, old.Token)
	}
	before := w.raw()
	_, err = w.e.finish(w.ctx, w.ctx, ref, old, prod.Job, runResult{ok: true, file: w.file})
	if !errors.Is(err, lease.ErrLost) {
		t.Errorf("the late end = %v, want lease.ErrLost", err)
	}
	if w.raw() != before || w.rep.calls() != 0 {
		t.Error("the late end changed the state or reported to GitHub")
	}
	if _, err := w.e.finish(w.ctx, w.ctx, ref, cur, prod.Job, runResult{ok: true, file: w.file}); err != nil {
		t.Fatalf("the holder's end = %v", err)
	}
	if s := w.pipeline().Stage("prod"); s.State != Succeeded {
		t.Errorf("prod ends %s after the holder's end, want succeeded", s.State)
	}
}

// prodRunning is settled with prod running job id, a deploy of B started
// a minute ago.
func prodRunning(id string) *Pipeline {
	p := settled()
	prod := p.Stage("prod")
	prod.State = InProgress
	prod.Job = &Job{ID: id, Stage: "prod", SHA: shaB, Operation: OpDeploy, Actor: "alice", ConfigSHA: shaB,
		Previous: shaA, Started: time.Now().Add(-time.Minute).UTC()}
	return p
}

// TestStaleJobRunsNothing delivers a job its stage has moved past, as a
// redelivery after a rollback would: nothing runs and nothing changes.
func TestStaleJobRunsNothing(t *testing.T) {
	w := newWorld(t)
	w.seed(settled())
	before := w.raw()
	data, _ := json.Marshal(jobRef{Repo: testRepo, Stage: "prod", Job: "replaced"})
	if err := w.e.RunJob(w.ctx, queue.Job{Kind: JobKind, Repo: testRepo, Data: data}); err != nil {
		t.Fatal(err)
	}
	w.expectSteps()
	if w.raw() != before || w.rep.calls() != 0 {
		t.Error("a stale job changed the state or reported to GitHub")
	}
}

// TestSupersededJobOfADeadProcessEnds rolls back a stage whose job was
// running in a process that died: nobody is left to notice the rollback
// replaced it, yet its check run and deployment must not stay in_progress.
func TestSupersededJobOfADeadProcessEnds(t *testing.T) {
	w := newWorld(t)
	w.seed(prodRunning("dead"))
	if err := w.rdb.Set(w.ctx, lockKey(testRepo, "prod"), "1:dead-run", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.Rollback(w.ctx, w.req(), Move{Stage: "prod", SHA: shaA}); err != nil {
		t.Fatal(err)
	}
	// The dead process's delivery comes back once its lease runs out.
	data, _ := json.Marshal(jobRef{Repo: testRepo, Stage: "prod", Job: "dead"})
	if err := w.e.RunJob(w.ctx, queue.Job{Kind: JobKind, Repo: testRepo, Data: data, Deliveries: 2}); err != nil {
		t.Fatal(err)
	}
	if cr, ok := w.rep.checkRun("dead"); !ok || cr.Status != "completed" || cr.Conclusion != "cancelled" {
		t.Errorf("the replaced job's check run ends %s/%s, want completed/cancelled", cr.Status, cr.Conclusion)
	}
	if got := w.rep.deploymentStates("dead"); len(got) == 0 || got[len(got)-1] != "error" {
		t.Errorf("the replaced job's deployment statuses %v, want them to end in error", got)
	}
}

// TestFailedStageRollsItselfBack fails staging's deploy of C: with
// auto_rollback it goes back to its last good revision as railyard, is
// blocked, and C goes no further.
func TestFailedStageRollsItselfBack(t *testing.T) {
	w := newWorldWith(t, `
stages:
  - name: build
    steps:
      - name: compile
        run: echo "$RAILYARD_STAGE:compile:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
  - name: staging
    auto_rollback: true
    steps:
      - name: deploy
        run: echo "$RAILYARD_STAGE:deploy:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS; test "$RAILYARD_SHA" != `+shaC+`
  - name: prod
    steps:
      - name: deploy
        run: echo "$RAILYARD_STAGE:deploy:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
`)
	p := settled()
	p.Stage("prod").Job.SHA, p.Stage("prod").Current = shaB, shaB
	w.seed(p)
	if _, err := w.e.Deploy(w.ctx, w.req(), shaC, 3); err != nil {
		t.Fatal(err)
	}
	w.runQueued()
	w.expectSteps("build:compile:ccccccc:deploy", "staging:deploy:ccccccc:deploy", "staging:deploy:bbbbbbb:auto-rollback")

	staging := w.pipeline().Stage("staging")
	if staging.State != RolledBack || staging.Current != shaB || !staging.Blocked || staging.Job.Actor != "railyard" || staging.Job.Operation != OpAutoRollback {
		t.Errorf("staging ends %s at %.7s blocked=%v by %s (%s); want rolled_back at bbbbbbb, blocked, by railyard",
			staging.State, staging.Current, staging.Blocked, staging.Job.Actor, staging.Job.Operation)
	}
	if prod := w.pipeline().Stage("prod"); prod.Current != shaB || prod.Job.SHA != shaB || prod.Waiting != nil {
		t.Errorf("the failed revision reached prod: %+v", prod)
	}
	audit, _ := w.e.Audit(w.ctx, testRepo, 10)
	if len(audit) == 0 || audit[0].Operation != OpAutoRollback || audit[0].Actor != "railyard" || audit[0].From != shaC || audit[0].To != shaB {
		t.Errorf("newest audit entry %+v, want railyard's auto-rollback from ccccccc to bbbbbbb", audit)
	}
	// The failed deploy's check run says what happened next.
	for _, c := range w.rep.checks() {
		if c.v.Name == "railyard/staging" && c.v.HeadSHA == shaC && c.v.Conclusion == "failure" {
			if !strings.Contains(c.v.Summary, "Auto-rollback of staging to bbbbbbb queued.") {
				t.Errorf("failed check run does not announce the auto-rollback:\n%s", c.v.Summary)
			}
			return
		}
	}
	t.Error("no failed railyard/staging check run for ccccccc")
}

// TestRollbackOfARunningJobEndsItOnce rolls back while a live worker runs
// the stage: the worker stops the step and adds it to the check run, and
// the deployment gets one terminal status, not one from each side.
func TestRollbackOfARunningJobEndsItOnce(t *testing.T) {
	w := newWorldWith(t, `
stages:
  - name: build
    steps:
      - name: compile
        run: echo "$RAILYARD_STAGE:compile:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS; test "$RAILYARD_OPERATION" != deploy || sleep 30
`)
	res, job := w.deployC(1)
	done := make(chan error, 1)
	go func() { done <- w.e.RunJob(w.ctx, job) }()
	w.awaitSteps(1)
	if _, err := w.e.Rollback(w.ctx, w.req(), Move{Stage: "build", SHA: shaA}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced job kept running")
	}
	w.runQueued()

	old := jobOf(t, res)
	if got := w.rep.deploymentStates(old); !slices.Equal(got, []string{"queued", "in_progress", "error"}) {
		t.Errorf("the replaced job's deployment statuses %v, want queued, in_progress, error", got)
	}
	cr, _ := w.rep.checkRun(old)
	if cr.Conclusion != "cancelled" || !strings.Contains(cr.Summary, "| compile | cancelled |") {
		t.Errorf("the replaced job's check run ends %s:\n%s\nwant cancelled with its step", cr.Conclusion, cr.Summary)
	}
	if s := w.pipeline().Stage("build"); s.State != RolledBack || s.Current != shaA {
		t.Errorf("build ends %s at %.7s, want rolled_back at aaaaaaa", s.State, s.Current)
	}
}
