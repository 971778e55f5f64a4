package actions_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-github/v62/github"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/report"
)

const workflow = "deploy.yml"

type fixture struct {
	gh   *githubtest.Server
	repo *githubtest.Repo
	rdb  *redis.Client
	run  *actions.Runner
	ref  report.Repo
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	gh := githubtest.New(t)
	repo := gh.AddRepo("octo/app", "main")
	repo.Commit("main", map[string]githubtest.File{".github/workflows/" + workflow: {Content: "on: workflow_dispatch\n"}})
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	return &fixture{
		gh: gh, repo: repo, rdb: rdb,
		run: actions.New(gh.ClientCreator(), rdb, actions.Options{Poll: 5 * time.Millisecond, Fallback: 20 * time.Millisecond, Find: 2 * time.Second, Lost: 300 * time.Millisecond}),
		ref: report.Repo{Owner: "octo", Name: "app", InstallationID: githubtest.DefaultInstallationID},
	}
}

func (f *fixture) step(key string) actions.Step {
	return actions.Step{Repo: f.ref, Key: key, Workflow: workflow, Inputs: map[string]string{"stage": "prod"}}
}

// complete finishes every run as soon as it is dispatched, until ctx ends.
func (f *fixture) complete(ctx context.Context, conclusion string) {
	done := map[int64]bool{}
	for ctx.Err() == nil {
		for _, r := range f.repo.WorkflowRuns() {
			if !done[r.ID] {
				done[r.ID] = true
				f.repo.CompleteRun(r.ID, conclusion)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRunOnTheDefaultBranchWhenNoRefIsGiven(t *testing.T) {
	f := newFixture(t)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go f.complete(ctx, "success")

	res := f.run.Run(t.Context(), f.step("job1:deploy"))
	if !res.OK() || res.RunID == 0 || res.URL == "" {
		t.Fatalf("result %+v, want a successful run with its URL", res)
	}
	runs := f.repo.WorkflowRuns()
	if len(runs) != 1 || runs[0].HeadBranch != "main" || runs[0].Inputs["stage"] != "prod" {
		t.Errorf("runs %+v, want one on main with input stage=prod", runs)
	}
}

// Two steps dispatching the same workflow at once, on a GitHub that does
// not name the runs it starts, each follow a run of their own.
func TestConcurrentStepsClaimDistinctRuns(t *testing.T) {
	f := newFixture(t)
	f.repo.DispatchWithoutRunDetails()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go f.complete(ctx, "success")

	var wg sync.WaitGroup
	results := make([]actions.Result, 2)
	for i, key := range []string{"a:deploy", "b:deploy"} {
		wg.Go(func() { results[i] = f.run.Run(t.Context(), f.step(key)) })
	}
	wg.Wait()
	if !results[0].OK() || !results[1].OK() || results[0].RunID == results[1].RunID {
		t.Errorf("results %+v and %+v, want two successful distinct runs", results[0], results[1])
	}
}

// A process that takes a job over cancels the run the dead one started
// before it dispatches afresh.
func TestRetakenStepCancelsTheEarlierRun(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan actions.Result)
	go func() { first <- f.run.Run(ctx, f.step("job1:deploy")) }()
	// The step records its run once GitHub answered the dispatch, which is
	// after the fake shows the run: wait for the record itself.
	key := "railyard:{octo/app}:actions:step:job1:deploy"
	var id string
	for id == "" {
		select {
		case res := <-first:
			t.Fatalf("the step ended without recording its run: %+v", res)
		case <-time.After(2 * time.Millisecond):
		}
		id, _ = f.rdb.Get(t.Context(), key).Result()
	}
	// Simulate the process dying: the step's record of its run stays,
	// because a dead process cleans nothing up.
	cancel()
	<-first
	f.rdb.Set(t.Context(), key, id, time.Hour)
	before := f.gh.Count("actions/cancel-workflow-run")

	ctx2, stop := context.WithCancel(t.Context())
	defer stop()
	go func() {
		for ctx2.Err() == nil {
			if runs := f.repo.WorkflowRuns(); len(runs) == 2 {
				f.repo.CompleteRun(runs[1].ID, "success")
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	res := f.run.Run(t.Context(), f.step("job1:deploy"))
	if !res.OK() {
		t.Fatalf("retaken step: %+v", res)
	}
	if f.gh.Count("actions/cancel-workflow-run") != before+1 {
		t.Error("the earlier attempt's run was not cancelled")
	}
	if err := f.rdb.Get(t.Context(), key).Err(); err != redis.Nil {
		t.Errorf("the step's run record outlived the step: %v", err)
	}
}

func TestRecordKeepsOnlyDispatchedRuns(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	push := &github.WorkflowRun{ID: github.Int64(7), Event: github.String("push"), Status: github.String("completed")}
	recorded, err := actions.Record(t.Context(), rdb, "octo/app", ".github/workflows/ci.yml", push)
	if err != nil || recorded {
		t.Fatalf("Record of a push run = %v, %v; want false, nil", recorded, err)
	}
	if n, _ := rdb.DBSize(t.Context()).Result(); n != 0 {
		t.Errorf("a push run left %d keys; runs Railyard did not start are none of its business", n)
	}
}

func TestDispatchRefusedSaysWhy(t *testing.T) {
	f := newFixture(t)
	st := f.step("job1:deploy")
	st.Workflow = "missing.yml"
	res := f.run.Run(t.Context(), st)
	if res.OK() || res.Err == nil || res.RunID != 0 {
		t.Fatalf("result %+v, want an error and no run", res)
	}
	if got, want := res.Err.Error(), "dispatch missing.yml on main: GitHub answered 404: Not Found"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

// A dispatch GitHub performed but whose answer was lost starts one run,
// which the step follows rather than dispatching again; a 5xx GitHub
// answered without starting anything is dispatched again once no run
// appeared.
func TestDispatchAfterALostAnswer(t *testing.T) {
	const dispatches = "/repos/octo/app/actions/workflows/"
	for _, tt := range []struct {
		name           string
		fail           func(gh *githubtest.Server)
		wantDispatches int
	}{
		{"502 after the run started", func(gh *githubtest.Server) { gh.LoseAnswers("POST", dispatches, 1, githubtest.Answer502) }, 1},
		{"reset after the run started", func(gh *githubtest.Server) { gh.LoseAnswers("POST", dispatches, 1, githubtest.DropConnection) }, 1},
		{"502 with no run", func(gh *githubtest.Server) { gh.FailNext("POST", dispatches, 1, http.StatusBadGateway, nil) }, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.fail(f.gh)
			ctx, stop := context.WithCancel(t.Context())
			defer stop()
			go f.complete(ctx, "success")

			res := f.run.Run(t.Context(), f.step("job1:deploy"))
			runs := f.repo.WorkflowRuns()
			if !res.OK() || len(runs) != 1 || res.RunID != runs[0].ID {
				t.Fatalf("result %+v and %d runs, want the one run followed", res, len(runs))
			}
			if n := f.gh.Count("actions/create-workflow-dispatch"); n != tt.wantDispatches {
				t.Errorf("%d dispatches, want %d", n, tt.wantDispatches)
			}
		})
	}
}

// stageLock takes a stage lock on the fixture's Redis, as the engine does
// for a run.
func (f *fixture) stageLock(t *testing.T) *lease.Lease {
	t.Helper()
	l, err := lease.Take(t.Context(), f.rdb, "railyard:{octo/app}:lock:prod", lease.Options{TTL: time.Minute, Renew: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// takeOver hands the stage lock l to another run, as its expiry and a
// takeover would.
func (f *fixture) takeOver(t *testing.T, l *lease.Lease) {
	t.Helper()
	f.rdb.Del(t.Context(), l.Key())
	f.stageLock(t)
}

// A run whose stage lock was taken over dispatches nothing.
func TestRunThatLostItsStageLockDispatchesNothing(t *testing.T) {
	f := newFixture(t)
	st := f.step("job1:deploy")
	st.Lock = f.stageLock(t)
	f.takeOver(t, st.Lock)

	res := f.run.Run(t.Context(), st)
	if !errors.Is(res.Err, lease.ErrLost) {
		t.Errorf("result %+v, want the error lease.ErrLost", res)
	}
	if n := f.gh.Count("actions/create-workflow-dispatch"); n != 0 {
		t.Errorf("GitHub received %d dispatches, want 0", n)
	}
}

// A run whose stage lock passes to another while its dispatch is on the
// way records no claim of the run it started, which the new holder could
// not know of, and cancels it.
func TestRunThatLostItsStageLockMidDispatchClaimsNothing(t *testing.T) {
	f := newFixture(t)
	st := f.step("job1:deploy")
	st.Lock = f.stageLock(t)
	release := f.gh.Hold("POST", "/repos/octo/app/actions/workflows/")
	done := make(chan actions.Result)
	go func() { done <- f.run.Run(t.Context(), st) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.gh.Count("actions/create-workflow-dispatch") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dispatch never reached GitHub")
		}
		time.Sleep(time.Millisecond)
	}
	f.takeOver(t, st.Lock)
	release()

	res := <-done
	if !errors.Is(res.Err, lease.ErrLost) || res.RunID == 0 {
		t.Fatalf("result %+v, want the run it started and the error lease.ErrLost", res)
	}
	keys, err := f.rdb.Keys(t.Context(), "railyard:{octo/app}:actions:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("the run that lost its lock wrote %v", keys)
	}
	if n := f.gh.Count("actions/cancel-workflow-run"); n != 1 {
		t.Errorf("GitHub received %d cancels of the orphaned run, want 1", n)
	}
}
