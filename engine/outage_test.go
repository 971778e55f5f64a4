package engine

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/internal/logtest"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/runner"
)

// pausedPipeline is one stage whose step marks its start, then waits for
// MARKS.go to exist before it ends.
const pausedPipeline = `
stages:
  - name: build
    steps:
      - name: compile
        run: echo "$RAILYARD_STAGE:compile:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS; while [ ! -f MARKS.go ]; do sleep 0.01; done
`

const msgEndNotRecorded = "Could not record how the stage job ended"

// stepEndsDuringOutage queues build's job for C and runs it; once the step
// has started, Redis stops, then the step ends. It returns RunJob's answer
// and the run's logs once RunJob has tried to record the end at least once.
func stepEndsDuringOutage(t *testing.T, w *world) (<-chan error, *logtest.Buffer, string) {
	t.Helper()
	res, job := w.deployC(1)
	logs := &logtest.Buffer{}
	ctx := zerolog.New(logs).WithContext(w.ctx)
	done := make(chan error, 1)
	go func() { done <- w.e.RunJob(ctx, job) }()
	w.awaitSteps(1)

	w.m.Close()
	if err := os.WriteFile(w.marks+".go", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), msgEndNotRecorded) {
		select {
		case err := <-done:
			t.Fatalf("RunJob returned %v before it tried to record the end during the outage", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("RunJob never tried to record the end during the outage")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return done, logs, jobOf(t, res)
}

// deployC seeds the settled pipeline cut to its first n stages, deploys
// C, and takes build's job off the queue.
func (w *world) deployC(n int) (Result, queue.Job) {
	w.t.Helper()
	p := settled()
	p.Stages = p.Stages[:n]
	w.seed(p)
	res, err := w.e.Deploy(w.ctx, w.req(), shaC, 3)
	if err != nil {
		w.t.Fatal(err)
	}
	jobs := w.claimAll()
	if len(jobs) != 1 {
		w.t.Fatalf("%d jobs queued, want build's", len(jobs))
	}
	return res, jobs[0].lease.Job
}

func restartRedis(t *testing.T, w *world) {
	t.Helper()
	if err := w.m.Restart(); err != nil {
		t.Fatal(err)
	}
}

func awaitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("RunJob did not return")
		return nil
	}
}

// TestStepEndingInAnOutageIsRecordedNotRunAgain stops Redis while build's
// step runs and starts it again once the step has ended: the run, which
// still holds its stage lock, records the end when Redis is back, so the
// job is done (the queue acks it) and the step ran once.
func TestStepEndingInAnOutageIsRecordedNotRunAgain(t *testing.T) {
	w := newWorldWith(t, pausedPipeline)
	done, _, id := stepEndsDuringOutage(t, w)
	restartRedis(t, w)
	if err := awaitRun(t, done); err != nil {
		t.Fatalf("RunJob = %v, want nil: the end was known and the stage lock still the run's", err)
	}
	w.expectSteps("build:compile:ccccccc:deploy")
	if s := w.pipeline().Stage("build"); s.State != Succeeded || s.Current != shaC {
		t.Errorf("build is %s at %.7s, want succeeded at ccccccc", s.State, s.Current)
	}
	if got := w.rep.checkRunStates(id); !slices.Equal(got, []string{"queued", "in_progress", "success"}) {
		t.Errorf("check run went %v, want queued, in_progress, success", got)
	}
	if got := w.rep.deploymentStates(id); !slices.Equal(got, []string{"queued", "in_progress", "success"}) {
		t.Errorf("deployment statuses %v, want queued, in_progress, success", got)
	}
}

// TestEndRecordedOnceWhenItsAnswerIsLost commits a job's end twice, as a
// run does whose first try committed but whose answer never came back:
// the second changes nothing and tells GitHub nothing.
func TestEndRecordedOnceWhenItsAnswerIsLost(t *testing.T) {
	w := newWorld(t)
	p := prodRunning("j")
	w.seed(p)
	ref := jobRef{Repo: testRepo, Stage: "prod", Job: "j"}
	held, err := w.e.lock(w.ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	res := runResult{failed: "deploy", file: w.file}
	if c, err := w.e.finish(w.ctx, w.ctx, ref, held, p.Stage("prod").Job, res); err != nil || c != "failure" {
		t.Fatalf("finish = %q, %v; want failure, nil", c, err)
	}
	before := w.raw()
	if _, err := w.e.finish(w.ctx, w.ctx, ref, held, p.Stage("prod").Job, res); err != nil {
		t.Fatalf("finish again = %v, want nil: the end is in", err)
	}
	if w.raw() != before {
		t.Error("recording the end again changed the state")
	}
	if got := w.rep.checkRunStates("j"); !slices.Equal(got, []string{"failure"}) {
		t.Errorf("j's check run went %v, want one failure", got)
	}
}

// TestEndNotRecordedOnceTheStageLockIsLost keeps Redis down past the time
// a run may go without renewing its stage lock: the run stops trying to
// record the end and returns the lost lock, so that the queue runs the job
// again; nothing of this run's end is recorded.
func TestEndNotRecordedOnceTheStageLockIsLost(t *testing.T) {
	w := newWorldWith(t, pausedPipeline)
	// The run gives up 1.8 s after its last renewal.
	w.e = New(w.rdb, w.q, w.rep, w.src, runner.NewWorkspace(t.TempDir()),
		Options{Poll: 10 * time.Millisecond, Grace: 100 * time.Millisecond, LockMargin: 100 * time.Millisecond, LockTTL: 2 * time.Second})
	done, _, id := stepEndsDuringOutage(t, w)
	err := awaitRun(t, done)
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("RunJob = %v, want the stage lock lost", err)
	}
	restartRedis(t, w)
	if s := w.pipeline().Stage("build"); s.State != InProgress {
		t.Errorf("build is %s, want in_progress: its job runs again", s.State)
	}
	if got := w.rep.checkRunStates(id); !slices.Equal(got, []string{"queued", "in_progress"}) {
		t.Errorf("check run went %v, want queued, in_progress", got)
	}
}
