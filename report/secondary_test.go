package report

import (
	"fmt"
	"testing"
	"time"
)

// TestBacksOffGitHubsSecondaryLimit: with Railyard's own points budget
// off, GitHub's secondary limit refuses writes; every refusal holds the
// whole installation until GitHub's Retry-After, so each of GitHub's
// windows is overrun at most once, and nothing is lost: every check run
// ends completed.
func TestBacksOffGitHubsSecondaryLimit(t *testing.T) {
	// Each run's writes, queued together, merge into one: 12 writes, more
	// than 3 a second even under the race detector.
	const runs = 12
	eachBackend(t, func(t *testing.T, e *env) {
		// GitHub's window is real time: so is Railyard's clock here.
		e.gh.LimitSecondary(15, time.Second) // 3 writes a second
		r := e.reporter(Options{PointsPerMinute: -1})
		r.opts.Now = time.Now
		ctx := t.Context()
		repos := e.repos(3)
		for i := range runs {
			repo, key := repos[i%len(repos)], fmt.Sprint("job-", i)
			must(t, r.CheckRun(ctx, repo.Repo, key, CheckRun{Name: fmt.Sprint("railyard/stage-", i), HeadSHA: repo.sha, Status: "queued"}))
			must(t, r.CheckRun(ctx, repo.Repo, key, CheckRun{Status: "in_progress"}))
			must(t, r.CheckRun(ctx, repo.Repo, key, CheckRun{Status: "completed", Conclusion: "success"}))
		}
		start := time.Now()
		run(t, r)
		awaitEmpty(t, r)
		windows := int(time.Since(start)/time.Second) + 1

		if n := e.gh.SecondaryLimited(); n == 0 {
			t.Fatal("GitHub's secondary limit was never reached; the test shows nothing")
		}
		completed := 0
		for _, repo := range repos {
			for _, c := range repo.fake.CheckRuns() {
				if c.Status == "completed" && c.Conclusion == "success" {
					completed++
				}
			}
		}
		if completed != runs {
			t.Errorf("%d check runs completed, want %d", completed, runs)
		}
		if refused := e.gh.SecondaryLimited(); refused > windows {
			t.Errorf("%d writes refused in %d windows of a second: more than one a window, so Railyard did not wait", refused, windows)
		}
		if s := r.Stats(); s.Limited != int64(e.gh.SecondaryLimited()) || s.Dropped != 0 {
			t.Errorf("stats = %+v, want %d limited and none dropped", s, e.gh.SecondaryLimited())
		}
	})
}
