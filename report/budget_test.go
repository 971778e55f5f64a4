package report

import (
	"fmt"
	"testing"
	"time"
)

// TestStatusIsSerialPerInstallationAcrossProcesses: two processes (two
// Reporters on one Redis, four status senders each) send the status of
// two installations. GitHub never answers two requests of one
// installation at once, while the two installations do go in parallel,
// and every check run ends completed.
func TestStatusIsSerialPerInstallationAcrossProcesses(t *testing.T) {
	const other, runs = 2, 8
	eachBackend(t, func(t *testing.T, e *env) {
		// Answers take a while, as GitHub's do, so that concurrent
		// requests overlap on the fake.
		e.gh.SetLatency(5 * time.Millisecond)
		repos := e.repos(5)
		for _, r := range repos[3:] {
			r.fake.SetInstallation(other)
		}
		for i := range repos[3:] {
			repos[3+i].InstallationID = other
		}
		// A process that finds the installation's turn taken tries again
		// a little later, by the clock: a real one here.
		a, b := e.reporter(Options{PointsPerMinute: -1}), e.reporter(Options{PointsPerMinute: -1})
		a.opts.Now, b.opts.Now = time.Now, time.Now
		ctx := t.Context()
		for i := range runs * len(repos) {
			repo, key := repos[i%len(repos)], fmt.Sprint("job-", i)
			must(t, a.CheckRun(ctx, repo.Repo, key, CheckRun{Name: fmt.Sprint("railyard/stage-", i), HeadSHA: repo.sha, Status: "in_progress"}))
			must(t, a.CheckRun(ctx, repo.Repo, key, CheckRun{Status: "completed", Conclusion: "success"}))
		}
		run(t, a)
		run(t, b)
		awaitEmpty(t, a)

		completed := 0
		for _, repo := range repos {
			for _, c := range repo.fake.CheckRuns() {
				if c.Status == "completed" {
					completed++
				}
			}
		}
		if completed != runs*len(repos) {
			t.Errorf("%d check runs completed, want %d", completed, runs*len(repos))
		}
		if a.Stats().Sent == 0 || b.Stats().Sent == 0 {
			t.Errorf("sent %d and %d: both processes should have sent some", a.Stats().Sent, b.Stats().Sent)
		}
		for _, inst := range []int64{e.repo.InstallationID, other} {
			if most, _ := e.gh.MaxInFlight(inst); most != 1 {
				t.Errorf("installation %d: GitHub answered up to %d of its requests at once, want 1", inst, most)
			}
		}
		if _, all := e.gh.MaxInFlight(0); all < 2 {
			t.Errorf("at most %d requests at once: the two installations did not go in parallel", all)
		}
	})
}

// TestSpentRateLimitHolds: an answer that says the rate limit is spent
// (X-RateLimit-Remaining 0) holds the installation's status until the
// reset, in every process and for every repository, so no write runs
// into GitHub's 403, and none is lost.
func TestSpentRateLimitHolds(t *testing.T) {
	const runs = 9
	eachBackend(t, func(t *testing.T, e *env) {
		// GitHub's window is real time: so is Railyard's clock here.
		e.gh.LimitRate(4, time.Second)
		a, b := e.reporter(Options{PointsPerMinute: -1}), e.reporter(Options{PointsPerMinute: -1})
		a.opts.Now, b.opts.Now = time.Now, time.Now
		ctx := t.Context()
		repos := e.repos(2)
		for i := range runs {
			repo := repos[i%len(repos)]
			must(t, a.CheckRun(ctx, repo.Repo, fmt.Sprint("job-", i), CheckRun{Name: fmt.Sprint("railyard/stage-", i), HeadSHA: repo.sha, Status: "completed", Conclusion: "success"}))
		}
		run(t, a)
		run(t, b)
		awaitEmpty(t, a)

		created := 0
		for _, repo := range repos {
			created += len(repo.fake.CheckRuns())
		}
		if created != runs {
			t.Errorf("%d check runs, want %d", created, runs)
		}
		if n := e.gh.RateLimited(); n != 0 {
			t.Errorf("GitHub refused %d writes for the spent rate limit; Railyard should have waited for the reset", n)
		}
		held := a.Stats().Held[Held{"status", reasonExhausted}] + b.Stats().Held[Held{"status", reasonExhausted}]
		if held == 0 {
			t.Error("no write held for the spent rate limit, so the test shows nothing")
		}
	})
}
