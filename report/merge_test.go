package report

import (
	"encoding/json"
	"fmt"
	"github.com/railyard/railyard/lease"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/githubtest"
)

// job queues what the engine queues for one stage job, in its order:
// queued, running, finished.
type job struct {
	key, env string
}

func (j job) queued(t *testing.T, e *env, r *Reporter) {
	must(t, r.CheckRun(t.Context(), e.repo, j.key, CheckRun{Name: "railyard/" + j.env, HeadSHA: e.sha, Status: "queued", Title: "Queued"}))
	must(t, r.Deployment(t.Context(), e.repo, j.key, Deployment{Ref: e.sha, Environment: j.env}))
	j.status(t, e, r, "queued")
}

func (j job) running(t *testing.T, e *env, r *Reporter) {
	must(t, r.CheckRun(t.Context(), e.repo, j.key, CheckRun{Name: "railyard/" + j.env, HeadSHA: e.sha, Status: "in_progress", Title: "Deploying", Buttons: cancelButton}))
	j.status(t, e, r, "in_progress")
}

func (j job) finished(t *testing.T, e *env, r *Reporter) {
	must(t, r.CheckRun(t.Context(), e.repo, j.key, CheckRun{Name: "railyard/" + j.env, HeadSHA: e.sha, Status: "completed", Conclusion: "success", Title: "Deployed", Buttons: []Button{}}))
	j.status(t, e, r, "success")
}

func (j job) status(t *testing.T, e *env, r *Reporter, state string) {
	must(t, r.DeploymentStatus(t.Context(), e.repo, j.key, DeploymentStatus{State: state, LogURLCheckRun: j.key, Environment: j.env}))
}

// held queues j as queued, then sends with a hold of 3 s on the test's
// clock, which stands still, until the deployment is created: the held
// writes do not hold it.
func (j job) held(t *testing.T, e *env) *Reporter {
	r := e.reporter(Options{Senders: 1, ProvisionalHold: 3 * time.Second})
	j.queued(t, e, r)
	run(t, r)
	await(t, "the deployment", func() bool { return len(e.fake.Deployments()) == 1 })
	return r
}

// writes returns the writes GitHub received, as "operationId state",
// in order: the check run's or deployment status's state, if any.
func (e *env) writes(t *testing.T) []string {
	var out []string
	for _, q := range e.gh.Requests() {
		if q.Method == "GET" || !strings.HasPrefix(q.Path, "/repos/"+e.repo.FullName()+"/") {
			continue
		}
		var body struct {
			Status, State string
		}
		if len(q.Body) > 0 {
			must(t, json.Unmarshal(q.Body, &body))
		}
		out = append(out, strings.TrimSpace(q.OperationID+" "+body.Status+body.State))
	}
	return out
}

// deployment returns the repository's deployment for environment env.
func (e *env) deployment(t *testing.T, env string) githubtest.Deployment {
	t.Helper()
	for _, d := range e.fake.Deployments() {
		if d.Environment == env {
			return d
		}
	}
	t.Fatalf("no deployment to %s", env)
	return githubtest.Deployment{}
}

// TestJobThatStartsAtOnceCostsFiveWrites: a job that starts within the
// provisional hold never shows queued: its check run is created in
// progress and its queued deployment status is dropped. The deployment is
// created meanwhile: a held write holds only its own object.
func TestJobThatStartsAtOnceCostsFiveWrites(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		j := job{"job", "staging"}
		r := j.held(t, e)
		looked(t, r)
		if n := len(e.fake.CheckRuns()); n != 0 {
			t.Fatalf("%d check runs created queued within the hold", n)
		}
		e.clock.Advance(time.Second) // the job starts within the hold
		j.running(t, e, r)
		// The clock moves a little: a sender that found only held writes
		// looks again a poll later.
		e.awaitTicking(t, time.Millisecond, "the running job", func() bool {
			return e.checkRun(t).Status == "in_progress" && slices.Equal(statuses(e.deployment(t, "staging")), []string{"in_progress"})
		})
		j.finished(t, e, r)
		e.awaitTicking(t, time.Millisecond, "the final status", func() bool {
			return slices.Equal(statuses(e.deployment(t, "staging")), []string{"in_progress", "success"})
		})
		awaitEmpty(t, r)

		want := []string{"repos/create-deployment", "checks/create in_progress", "repos/create-deployment-status in_progress",
			"checks/update completed", "repos/create-deployment-status success"}
		if got := e.writes(t); !slices.Equal(got, want) {
			t.Errorf("writes = %q, want %q", got, want)
		}
		cr := e.checkRun(t)
		if cr.Status != "completed" || cr.Conclusion != "success" || cr.Title != "Deployed" || len(cr.Actions) != 0 {
			t.Errorf("check run = %+v", cr)
		}
		for _, s := range e.deployment(t, "staging").Statuses {
			if s.LogURL != cr.HTMLURL {
				t.Errorf("status %s links %q, want the check run %q", s.State, s.LogURL, cr.HTMLURL)
			}
		}
		if s := r.Stats(); s.Sent != 5 || s.Coalesced != 2 || s.Dropped != 0 {
			t.Errorf("stats = %+v, want 5 sent, 2 coalesced", s)
		}
	})
}

// TestHeldJobShowsQueued: a job that waits longer than the hold (behind a
// lock, a /stop) shows queued on GitHub once the hold is over.
func TestHeldJobShowsQueued(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		j := job{"job", "prod"}
		r := j.held(t, e)
		e.clock.Advance(2999 * time.Millisecond)
		looked(t, r)
		if n, d := len(e.fake.CheckRuns()), e.deployment(t, "prod"); n != 0 || len(d.Statuses) != 0 {
			t.Fatalf("%d check runs and statuses %v before the hold is over", n, statuses(d))
		}
		e.clock.Advance(time.Millisecond)
		await(t, "queued on GitHub", func() bool {
			return e.checkRun(t).Status == "queued" && slices.Equal(statuses(e.deployment(t, "prod")), []string{"queued"})
		})
		j.running(t, e, r)
		j.finished(t, e, r)
		await(t, "the final status", func() bool { return slices.Contains(statuses(e.deployment(t, "prod")), "success") })
		awaitEmpty(t, r)
		if cr := e.checkRun(t); cr.Status != "completed" || cr.Conclusion != "success" || cr.Updates == 0 {
			t.Errorf("check run = %+v, want the queued one completed", cr)
		}
		if got := statuses(e.deployment(t, "prod")); got[0] != "queued" || got[len(got)-1] != "success" {
			t.Errorf("statuses = %v, want queued first and success last", got)
		}
	})
}

// TestBacklogMergesObsoleteWrites: writes queued behind a backlog merge
// or drop when a later write of the same object makes them obsolete, even
// with other objects' writes between them; final ones all arrive, in each
// object's order.
func TestBacklogMergesObsoleteWrites(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		jobs := []job{{"build-1", "build"}, {"staging-1", "staging"}, {"prod-1", "prod"}}
		for _, j := range jobs {
			j.queued(t, e, r)
		}
		for _, j := range jobs {
			j.running(t, e, r)
			for i := range 3 {
				must(t, r.CheckRun(t.Context(), e.repo, j.key, CheckRun{Summary: "running", Text: fmt.Sprint("line ", i)}))
			}
		}
		for _, j := range jobs {
			j.finished(t, e, r)
		}
		// A stopped job's details come after its end: never merged into it.
		must(t, r.CheckRun(t.Context(), e.repo, "prod-1", CheckRun{Status: "completed", Conclusion: "success", Title: "Deployed", Text: "stopped by @alice"}))
		run(t, r)
		awaitEmpty(t, r)

		got := e.writes(t)
		want := []string{
			"checks/create completed", "repos/create-deployment",
			"checks/create completed", "repos/create-deployment",
			"checks/create completed", "repos/create-deployment",
			"repos/create-deployment-status success", "repos/create-deployment-status success",
			"repos/create-deployment-status success", "checks/update completed",
		}
		if !slices.Equal(got, want) {
			t.Errorf("writes = %q\nwant     %q", got, want)
		}
		for _, j := range jobs {
			if got := statuses(e.deployment(t, j.env)); !slices.Equal(got, []string{"success"}) {
				t.Errorf("%s: statuses %v, want the final one", j.env, got)
			}
		}
		for _, c := range e.fake.CheckRuns() {
			want := "line 2" // every write merged
			if c.Name == "railyard/prod" {
				want = "stopped by @alice" // and then the details
			}
			if c.Conclusion != "success" || c.Title != "Deployed" || c.Text != want {
				t.Errorf("check run %+v, want text %q", c, want)
			}
		}
		// Merged: in progress, 3 lines and the end of each check run; dropped:
		// queued and in progress of each deployment.
		if s := r.Stats(); s.Sent != int64(len(want)) || s.Dropped != 0 || s.Coalesced != 3*(1+3+1)+3*2 {
			t.Errorf("stats = %+v", s)
		}
	})
}

// TestMergesOnlyWithinReach: writes of one check run further apart than
// the look-ahead are sent apart, in order.
func TestMergesOnlyWithinReach(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		must(t, r.CheckRun(t.Context(), e.repo, "far", CheckRun{Name: "railyard/far", HeadSHA: e.sha, Status: "queued"}))
		// Between them, writes that cost no request: final statuses of
		// deployments never created, dropped one by one.
		for i := range maxLookahead {
			must(t, r.DeploymentStatus(t.Context(), e.repo, fmt.Sprint("never-", i), DeploymentStatus{State: "success"}))
		}
		must(t, r.CheckRun(t.Context(), e.repo, "far", CheckRun{Status: "completed", Conclusion: "success"}))
		run(t, r)
		awaitEmpty(t, r)
		if got, want := e.writes(t), []string{"checks/create queued", "checks/update completed"}; !slices.Equal(got, want) {
			t.Errorf("writes = %q, want the create then the update", got)
		}
	})
}

// TestPopTakesOnlyWhatWasSent: operations leave the middle of an outbox
// only while the lease is ours and they are still where they were read;
// what was queued meanwhile stays.
func TestPopTakesOnlyWhatWasSent(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		k := keysFor(e.repo, status)
		for i := range 5 {
			must(t, r.CheckRun(ctx, e.repo, fmt.Sprint("job-", i), CheckRun{Name: "railyard/build", HeadSHA: e.sha}))
		}
		w, err := r.look(ctx, k)
		must(t, err)
		keys := func() []string {
			var out []string
			items, err := e.rdb.LRange(ctx, k.outbox, 0, -1).Result()
			must(t, err)
			for _, it := range items {
				o, err := decodeOp(it)
				must(t, err)
				out = append(out, o.Key)
			}
			return out
		}
		pick := func(at ...int) taken {
			var t taken
			for _, i := range at {
				t.add(i, w.ops[i].prefix())
			}
			return t
		}
		held, err := lease.Take(ctx, e.rdb, k.lease, outboxTimings)
		must(t, err)
		ours := &outboxLease{Lease: held, r: r, k: k}
		other, err := lease.Take(ctx, e.rdb, k.lease+":elsewhere", outboxTimings) // a lease whose value the outbox's is not
		must(t, err)
		theirs := &outboxLease{Lease: other, r: r, k: k}
		if err := r.pop(ctx, k, theirs, pick(1, 3), record{}, false); err != errLeaseLost {
			t.Errorf("pop without the lease: %v, want errLeaseLost", err)
		}
		wrong := pick(1)
		wrong.add(3, w.ops[4].prefix())
		if err := r.pop(ctx, k, ours, wrong, record{}, false); err != errLeaseLost {
			t.Errorf("pop of an operation not where it was read: %v, want errLeaseLost", err)
		}
		must(t, r.CheckRun(ctx, e.repo, "job-5", CheckRun{Name: "railyard/build", HeadSHA: e.sha})) // queued meanwhile
		must(t, r.pop(ctx, k, ours, pick(1, 3), record{}, false))
		if got, want := keys(), []string{"job-0", "job-2", "job-4", "job-5"}; !slices.Equal(got, want) {
			t.Errorf("outbox = %q, want %q", got, want)
		}
		must(t, r.pop(ctx, k, ours, pick(0), record{}, false)) // the head, as read before
		if got, want := keys(), []string{"job-2", "job-4", "job-5"}; !slices.Equal(got, want) {
			t.Errorf("outbox = %q, want %q", got, want)
		}
	})
}
