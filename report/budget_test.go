package report

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/internal/logtest"
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
		// Both processes wanted the installations' turns: each sent, or
		// found a turn the other held and moved on. (Under load each may
		// keep one installation's turn throughout and never meet the other
		// on it; the one-at-a-time count above still holds then.)
		busy := Held{"status", reasonBusy}
		sa, sb := a.Stats(), b.Stats()
		if sa.Sent+sa.Held[busy] == 0 || sb.Sent+sb.Held[busy] == 0 {
			t.Errorf("sent %d and %d, put off for the other's turn %d and %d: the processes never met, so the test shows nothing",
				sa.Sent, sb.Sent, sa.Held[busy], sb.Held[busy])
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

// warnings returns the warn lines logged so far.
func warnings(t *testing.T, logs *logtest.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range logs.Lines(t) {
		if m["level"] == "warn" {
			out = append(out, m)
		}
	}
	return out
}

// runLogged runs r like run, logging to the returned buffer.
func runLogged(t *testing.T, r *Reporter) *logtest.Buffer {
	logs := &logtest.Buffer{}
	ctx, cancel := context.WithCancel(zerolog.New(logs).WithContext(context.Background()))
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return logs
}

// TestLongDelaysAreLoggedAndShown: when the budget holds writes past a
// minute, one warning says so, with the installation, the class and the
// reason, however many outboxes wait; Delays says the same, for the
// status page, until writes go out promptly again.
func TestLongDelaysAreLoggedAndShown(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		hold   bool   // GitHub answers the first write 403 with Retry-After 180
		why    string // Delay.Why
		reason string // the log's reason
		wait   time.Duration
	}{
		{"GitHub's Retry-After", Options{PointsPerMinute: -1}, true, reasonRetry, "GitHub Retry-After until %s", 3 * time.Minute},
		// 5 points a write: two fit in a minute.
		{"points budget", Options{PointsPerMinute: 10}, false, reasonPoints, "points budget", time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				if tt.hold {
					e.gh.FailNext("POST", "/repos/", 1, http.StatusForbidden, http.Header{"Retry-After": {"180"}})
				}
				r := e.reporter(tt.opts)
				ctx := t.Context()
				queued := e.clock.Now()
				repos := e.repos(2)
				for i, repo := range repos {
					must(t, r.CheckRun(ctx, repo.Repo, fmt.Sprint("job-", i), CheckRun{Name: fmt.Sprint("railyard/stage-", i), HeadSHA: repo.sha}))
				}
				logs := runLogged(t, r)
				until := queued.Add(tt.wait)
				want := Delay{Class: "status", Since: queued.Truncate(time.Millisecond), Until: until, Why: tt.why}
				await(t, "the delay", func() bool {
					ds, err := r.Delays(ctx, e.repo.InstallationID)
					return err == nil && len(ds) == 1 && ds[0] == want
				})
				// Every outbox has been put off at least once by now.
				await(t, "the outboxes to wait", func() bool {
					for _, repo := range repos {
						score, _ := e.rdb.ZScore(t.Context(), r.keys.readySet(status), keysFor(repo.Repo, status).member).Result()
						if len(repo.fake.CheckRuns()) == 0 && int64(score) != until.UnixMilli() {
							return false
						}
					}
					return true
				})
				await(t, "the warning", func() bool { return len(warnings(t, logs)) > 0 })
				warns := warnings(t, logs)
				if len(warns) != 1 {
					t.Fatalf("%d warnings, want 1: %v", len(warns), warns)
				}
				reason := tt.reason
				if strings.Contains(reason, "%s") {
					reason = fmt.Sprintf(reason, until.UTC().Format("15:04:05 UTC"))
				}
				for k, v := range map[string]any{"github_installation_id": float64(e.repo.InstallationID), "railyard_class": "status", "reason": reason} {
					if warns[0][k] != v {
						t.Errorf("warning's %s = %v, want %v: %v", k, warns[0][k], v, warns[0])
					}
				}

				// The writes go late, and the delay lasts until one goes
				// promptly.
				e.clock.Set(until)
				await(t, "the delayed writes", func() bool {
					n := 0
					for _, repo := range repos {
						n += len(repo.fake.CheckRuns())
					}
					return n == len(repos)
				})
				if ds, err := r.Delays(ctx, e.repo.InstallationID); err != nil || len(ds) != 1 {
					t.Errorf("delays after late writes = %v, %v; want the delay still", ds, err)
				}
				e.clock.Advance(time.Minute) // a fresh budget
				must(t, r.CheckRun(ctx, e.repo, "prompt", CheckRun{Name: "railyard/prompt", HeadSHA: e.sha}))
				await(t, "the delay to end", func() bool {
					ds, err := r.Delays(ctx, e.repo.InstallationID)
					return err == nil && len(ds) == 0
				})
				if n := len(warnings(t, logs)); n != 1 {
					t.Errorf("%d warnings in all, want the 1", n)
				}
			})
		})
	}
}
