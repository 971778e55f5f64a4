package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/runner"
)

// TestRunThatLostItsLockDispatchesNothing passes a run's stage lock to
// another run while its first step runs, between two renewals, so that
// the run has not noticed yet when its workflow step starts: GitHub
// receives no dispatch, and the run writes nothing.
func TestRunThatLostItsLockDispatchesNothing(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	w := newWorldWith(t, `
stages:
  - name: build
    steps:
      - name: wait
        run: echo "$RAILYARD_STAGE:wait" >> MARKS; while [ ! -f `+gate+` ]; do sleep 0.01; done
      - name: deploy
        workflow: deploy.yml
`)
	gh := githubtest.New(t)
	repo := gh.AddRepo(testRepo, "main")
	repo.Commit("main", map[string]githubtest.File{".github/workflows/deploy.yml": {Content: "on: workflow_dispatch\n"}})
	// Renewals too rare to notice the takeover before the dispatch.
	w.e = New(w.rdb, w.q, w.rep, w.src, runner.NewWorkspace(t.TempDir()), Options{
		Poll: time.Minute, LockTTL: 3 * time.Minute, Grace: time.Second,
		Workflows: actions.New(gh.ClientCreator(), w.rdb, actions.Options{Poll: 5 * time.Millisecond}),
	})
	p := settled()
	p.Stages = p.Stages[:1]
	p.InstallationID = githubtest.DefaultInstallationID
	w.seed(p)
	req := w.req()
	req.Repo.InstallationID = githubtest.DefaultInstallationID
	if _, err := w.e.Deploy(w.ctx, req, shaC, 3); err != nil {
		t.Fatal(err)
	}
	jobs := w.claimAll()
	done := make(chan error, 1)
	go func() { done <- w.e.RunJob(w.ctx, jobs[0].lease.Job) }()
	w.awaitSteps(1)
	running := w.raw()

	other := w.takeLock("build")
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w.awaitLost(done, func() string {
		return fmt.Sprintf("GitHub received %d dispatches", gh.Count("actions/create-workflow-dispatch"))
	})
	if n := gh.Count("actions/create-workflow-dispatch"); n != 0 {
		t.Errorf("GitHub received %d dispatches from a run that lost its lock, want 0", n)
	}
	if w.raw() != running {
		t.Error("the run that lost the lock changed the stage's state")
	}
	if err := other.Check(w.ctx, w.rdb); err != nil {
		t.Errorf("the run that lost the lock freed its successor's: %v", err)
	}
}

// takeLock hands stage's lock to another run, as its expiry and a
// takeover would, and returns that run's lock.
func (w *world) takeLock(stage string) *lease.Lease {
	w.t.Helper()
	w.m.Del(lockKey(testRepo, stage))
	l, err := lease.Take(w.ctx, w.rdb, lockKey(testRepo, stage), w.e.opts.lock())
	if err != nil {
		w.t.Fatal(err)
	}
	return l
}

// awaitLost waits for a RunJob whose lock was taken to end, saying it
// lost the lock; why tells more when it does not end.
func (w *world) awaitLost(done <-chan error, why func() string) {
	w.t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, lease.ErrLost) {
			w.t.Errorf("RunJob = %v, want the lost lock, so that the job is tried again", err)
		}
	case <-time.After(10 * time.Second):
		w.t.Fatalf("the run kept going after losing the lock: %s", why())
	}
}
