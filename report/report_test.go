package report

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/railyard/railyard/internal/githubtest"
	"github.com/redis/go-redis/v9"
)

var cancelButton = []Button{{Label: "Cancel", Description: "Cancel this job", Identifier: "cancel"}}

// checkRun returns the repository's only check run, or a zero one.
func (e *env) checkRun(t *testing.T) githubtest.CheckRun {
	t.Helper()
	runs := e.fake.CheckRuns()
	switch len(runs) {
	case 0:
		return githubtest.CheckRun{}
	case 1:
		return runs[0]
	}
	t.Fatalf("%d check runs, want 1", len(runs))
	return githubtest.CheckRun{}
}

func TestCheckRunIsCreatedThenUpdated(t *testing.T) {
	steps := []struct {
		cr   CheckRun
		seen func(githubtest.CheckRun) bool
	}{
		{CheckRun{Name: "railyard/build", Status: "queued", Title: "Queued", Summary: "Waiting for a worker"},
			func(c githubtest.CheckRun) bool { return c.Status == "queued" }},
		{CheckRun{Status: "in_progress", Title: "Deploying", Summary: "step compile", Buttons: cancelButton},
			func(c githubtest.CheckRun) bool { return len(c.Actions) == 1 }},
		{CheckRun{Status: "completed", Conclusion: "success", Title: "Deployed", Buttons: []Button{}},
			func(c githubtest.CheckRun) bool { return c.Status == "completed" }},
	}
	tests := []struct {
		name        string
		behind      bool // all calls made before the senders run
		wantPatches int
	}{
		{"sent as they come", false, 2},
		// The create shows them all.
		{"sent when behind", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				r := e.reporter(Options{})
				if !tt.behind {
					run(t, r)
				}
				for i, s := range steps {
					if i == 0 {
						s.cr.HeadSHA = e.sha
					}
					must(t, r.CheckRun(t.Context(), e.repo, "job-1", s.cr))
					if !tt.behind {
						await(t, fmt.Sprintf("step %d on GitHub", i), func() bool { return s.seen(e.checkRun(t)) })
					}
				}
				if tt.behind {
					run(t, r)
				}
				await(t, "the completed check run", func() bool { return e.checkRun(t).Conclusion == "success" })
				awaitEmpty(t, r)

				got := e.checkRun(t)
				if got.Name != "railyard/build" || got.HeadSHA != e.sha || got.Title != "Deployed" || got.Summary != "step compile" || len(got.Actions) != 0 {
					t.Errorf("check run = %+v", got)
				}
				if posts, patches := len(e.requests("POST", "/check-runs")), len(e.requests("PATCH", "/check-runs/")); posts != 1 || patches != tt.wantPatches {
					t.Errorf("%d POST and %d PATCH, want 1 and %d", posts, patches, tt.wantPatches)
				}
				if all := e.requests("", "/check-runs"); len(all) == 0 || all[0].Method != "POST" {
					t.Errorf("the first request was not the creation: %+v", all)
				}
				url, err := r.CheckRunURL(t.Context(), e.repo, "job-1")
				if err != nil || url == "" || url != got.HTMLURL {
					t.Errorf("CheckRunURL = %q, %v; want %q", url, err, got.HTMLURL)
				}
			})
		})
	}
}

// patchTexts returns output.text of each check run update sent with an
// output.
func (e *env) patchTexts(t *testing.T) []string {
	var texts []string
	for _, q := range e.requests("PATCH", "/check-runs/") {
		var body struct {
			Output *struct{ Text string } `json:"output"`
		}
		must(t, json.Unmarshal(q.Body, &body))
		if body.Output != nil {
			texts = append(texts, body.Output.Text)
		}
	}
	return texts
}

func TestUpdatesArriveInOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		run(t, r)
		must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Name: "railyard/staging", HeadSHA: e.sha, Status: "in_progress"}))
		const n = 40
		for i := range n {
			must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Summary: "running", Text: fmt.Sprintf("line %02d", i)}))
		}
		must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Status: "completed", Conclusion: "failure"}))
		await(t, "the completed check run", func() bool { return e.checkRun(t).Conclusion == "failure" })

		texts := e.patchTexts(t)
		if !slices.IsSorted(texts) || len(slices.Compact(slices.Clone(texts))) != len(texts) {
			t.Errorf("updates out of order or repeated: %q", texts)
		}
		if got := e.checkRun(t).Text; got != fmt.Sprintf("line %02d", n-1) {
			t.Errorf("text = %q, want the last line", got)
		}
	})
}

func TestCoalescesUpdatesWhenBehind(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Name: "railyard/prod", HeadSHA: e.sha, Status: "queued"}))
		for i := range 50 {
			must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Status: "in_progress", Title: "Deploying", Summary: "running", Text: fmt.Sprintf("line %02d", i)}))
		}
		// The final update leaves the text unset: the last one stays.
		must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Status: "completed", Conclusion: "success", Title: "Deployed", Summary: "done"}))
		run(t, r)
		await(t, "the completed check run", func() bool { return e.checkRun(t).Conclusion == "success" })

		got := e.checkRun(t)
		if got.Title != "Deployed" || got.Summary != "done" || got.Text != "line 49" {
			t.Errorf("check run = %+v", got)
		}
		patches := len(e.requests("PATCH", "/check-runs/"))
		if patches > 3 {
			t.Errorf("%d updates sent for 51 queued, want at most 3", patches)
		}
		awaitEmpty(t, r)
		if s := r.Stats(); s.Coalesced != int64(51-patches) || s.Sent != int64(1+patches) || s.Dropped != 0 {
			t.Errorf("stats = %+v after %d updates sent", s, patches)
		}
	})
}

func TestDeploymentAndStatuses(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		run(t, r)
		ctx := t.Context()
		long := "rollback by @alice: " + strings.Repeat("the migration locked the orders table ", 10)
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Name: "railyard/prod", HeadSHA: e.sha, Status: "queued"}))
		must(t, r.Deployment(ctx, e.repo, "job", Deployment{Ref: e.sha, Environment: "prod", Task: "deploy:rollback",
			Description: "rollback", Production: true, Payload: map[string]any{"operation": "rollback", "actor": "alice"}}))
		// Each status is sent before the next is queued: a later one
		// would make an earlier one not final obsolete.
		for i, state := range []string{"queued", "in_progress", "success"} {
			must(t, r.DeploymentStatus(ctx, e.repo, "job", DeploymentStatus{State: state, Description: long, LogURLCheckRun: "job", Environment: "prod"}))
			await(t, state, func() bool {
				ds := e.fake.Deployments()
				return len(ds) == 1 && len(ds[0].Statuses) == i+1
			})
		}

		d := e.fake.Deployments()[0]
		var payload map[string]string
		must(t, json.Unmarshal(d.Payload, &payload))
		if d.Ref != e.sha || d.Environment != "prod" || d.Task != "deploy:rollback" || !d.Production || payload["actor"] != "alice" {
			t.Errorf("deployment = %+v", d)
		}
		if d.AutoMerge == nil || *d.AutoMerge || d.RequiredContexts == nil || len(d.RequiredContexts) != 0 {
			t.Errorf("auto_merge = %v, required_contexts = %#v; want false and []", d.AutoMerge, d.RequiredContexts)
		}
		url := e.checkRun(t).HTMLURL
		for i, s := range d.Statuses {
			want := []string{"queued", "in_progress", "success"}[i]
			if s.State != want || s.LogURL != url || url == "" || s.AutoInactive == nil || !*s.AutoInactive {
				t.Errorf("status %d = %+v, want %s with log_url %s and auto_inactive", i, s, want, url)
			}
			if n := utf8.RuneCountInString(s.Description); n > 140 || !strings.HasPrefix(s.Description, "rollback by @alice: the") {
				t.Errorf("description has %d characters: %q", n, s.Description)
			}
		}
	})
}

func TestCommentsAndReactions(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		// "refused" is never created: GitHub refuses it.
		e.gh.FailNext("POST", "/repos/"+e.repo.FullName()+"/check-runs", 1, http.StatusUnprocessableEntity, nil)
		must(t, r.CheckRun(ctx, e.repo, "refused", CheckRun{Name: "railyard/staging", HeadSHA: e.sha}))
		must(t, r.CheckRun(ctx, e.repo, "created", CheckRun{Name: "railyard/prod", HeadSHA: e.sha, Status: "queued"}))
		must(t, r.Comment(ctx, e.repo, 7, "Queued prod: {{checkrun:created}}\nStaging: {{checkrun:refused}}"))
		run(t, r)
		// The comment may wait, a few seconds at most, for the check run it
		// links to be created.
		await(t, "the comment", func() bool { e.clock.Advance(100 * time.Millisecond); return len(e.fake.Comments(7)) == 1 })

		c := e.fake.Comments(7)[0]
		if want := "Queued prod: " + e.checkRun(t).HTMLURL + "\nStaging: railyard/staging"; shown(c.Body) != want || c.Body == want {
			t.Errorf("comment = %q, want %q and a hidden marker", c.Body, want)
		}
		for _, content := range []string{"eyes", "rocket"} {
			must(t, r.Reaction(ctx, e.repo, c.ID, content))
		}
		await(t, "two reactions", func() bool { return len(e.fake.Reactions(c.ID)) == 2 })
		if got := e.fake.Reactions(c.ID); !slices.Equal(got, []string{"eyes", "rocket"}) {
			t.Errorf("reactions = %q", got)
		}
	})
}

// comments returns the bodies of the comments on issue 1, as people read
// them.
func (e *env) comments() []string {
	var bodies []string
	for _, c := range e.fake.Comments(1) {
		bodies = append(bodies, shown(c.Body))
	}
	return bodies
}

var marker = regexp.MustCompile(`\n\n<!-- railyard:[A-Z2-7]+ -->$`)

// shown is a comment's body without its hidden marker.
func shown(body string) string { return marker.ReplaceAllString(body, "") }

func numbered(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "comment "+strconv.Itoa(i))
	}
	return out
}

func TestRetriesServerErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		e.gh.FailNext("POST", "/repos/"+e.repo.FullName()+"/issues/1/comments", 3, http.StatusBadGateway, nil)
		want := numbered(3)
		for _, body := range want {
			must(t, r.Comment(t.Context(), e.repo, 1, body))
		}
		run(t, r)
		// Backoff is 1s, 2s, 4s on the test's clock.
		await(t, "the comments", func() bool {
			e.clock.Advance(time.Second)
			return len(e.comments()) == len(want)
		})
		if got := e.comments(); !slices.Equal(got, want) {
			t.Errorf("comments = %q, want %q", got, want)
		}
		if n := len(e.requests("POST", "/issues/")); n != 6 {
			t.Errorf("%d requests, want 3 failed + 3", n)
		}
		awaitEmpty(t, r)
		if s := r.Stats(); s.Retries != 3 || s.Sent != 3 {
			t.Errorf("stats = %+v", s)
		}
	})
}

func TestWaitsOutRateLimits(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header func(now time.Time) http.Header
		wait   time.Duration
	}{
		{"403 with reset", http.StatusForbidden, func(now time.Time) http.Header {
			return http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {fmt.Sprint(now.Add(time.Hour).Unix())}}
		}, time.Hour},
		{"429 with Retry-After", http.StatusTooManyRequests, func(time.Time) http.Header {
			return http.Header{"Retry-After": {"90"}}
		}, 90 * time.Second},
		{"403 with Retry-After", http.StatusForbidden, func(time.Time) http.Header {
			return http.Header{"Retry-After": {"30"}}
		}, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				r := e.reporter(Options{Senders: 1})
				start := e.clock.Now()
				e.gh.FailNext("POST", "/repos/"+e.repo.FullName()+"/issues/", 1, tt.status, tt.header(start))
				want := numbered(2)
				for _, body := range want {
					must(t, r.Comment(t.Context(), e.repo, 1, body))
				}
				run(t, r)
				until := start.Add(tt.wait)
				await(t, "the outbox to wait for the limit", func() bool { return e.readyAt(t, r, conversation).Equal(until) })

				e.clock.Set(until.Add(-time.Second))
				looked(t, r)
				if n := len(e.requests("POST", "/issues/")); n != 1 || len(e.comments()) != 0 {
					t.Fatalf("%d requests and %d comments before the limit ends, want 1 and 0", n, len(e.comments()))
				}
				e.clock.Set(until)
				await(t, "the comments", func() bool { return len(e.comments()) == len(want) })
				if got := e.comments(); !slices.Equal(got, want) {
					t.Errorf("comments = %q, want %q", got, want)
				}
			})
		})
	}
}

func TestDropsWhatGitHubRefuses(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		e.gh.FailNext("POST", "/repos/"+e.repo.FullName()+"/check-runs", 1, http.StatusUnprocessableEntity, nil)
		must(t, r.CheckRun(ctx, e.repo, "refused", CheckRun{Name: "railyard/build", HeadSHA: e.sha}))
		must(t, r.CheckRun(ctx, e.repo, "refused", CheckRun{Status: "in_progress"}))
		must(t, r.Deployment(ctx, e.repo, "job", Deployment{Ref: e.sha, Environment: "build"}))
		must(t, r.DeploymentStatus(ctx, e.repo, "never-created", DeploymentStatus{State: "success"}))
		must(t, r.Comment(ctx, e.repo, 1, "still sent"))
		run(t, r)
		awaitEmpty(t, r)
		if got := e.comments(); len(got) != 1 {
			t.Errorf("comments = %q, want the one", got)
		}

		if runs := e.fake.CheckRuns(); len(runs) != 0 {
			t.Errorf("check runs = %+v", runs)
		}
		if n := len(e.requests("PATCH", "/check-runs")); n != 0 {
			t.Errorf("%d updates of a check run never created", n)
		}
		if ds := e.fake.Deployments(); len(ds) != 1 {
			t.Errorf("%d deployments, want 1", len(ds))
		}
		if s := r.Stats(); s.Dropped != 3 {
			t.Errorf("stats = %+v, want 3 dropped", s)
		}
	})
}

func TestTwoProcessesShareOneRedis(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		a, b := e.reporter(Options{}), e.reporter(Options{})
		run(t, a)
		run(t, b)
		want := numbered(60)
		for i, body := range want {
			must(t, []*Reporter{a, b}[i%2].Comment(t.Context(), e.repo, 1, body))
		}
		await(t, "the comments", func() bool { return len(e.comments()) >= len(want) })
		if got := e.comments(); !slices.Equal(got, want) {
			t.Errorf("comments = %q, want %q", got, want)
		}
		awaitEmpty(t, a)
		if sa, sb := a.Stats(), b.Stats(); sa.Sent+sb.Sent != int64(len(want)) {
			t.Errorf("sent %d + %d, want %d", sa.Sent, sb.Sent, len(want))
		}
	})
}

func TestStoppingMidRequestLosesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		first := e.reporter(Options{})
		stop := run(t, first)
		release := e.gh.Hold("POST", "/repos/"+e.repo.FullName()+"/issues/1/comments")
		defer release()
		want := numbered(2)
		must(t, first.Comment(t.Context(), e.repo, 1, want[0]))
		await(t, "the first request", func() bool { return len(e.requests("POST", "/issues/")) == 1 })
		// GitHub hangs: calls still return at once.
		must(t, first.Comment(t.Context(), e.repo, 1, want[1]))
		stop()
		release()

		run(t, e.reporter(Options{}))
		await(t, "the last comment", func() bool { return slices.Contains(e.comments(), want[1]) })
		// GitHub may have taken the request the first process gave up on:
		// that one may come twice, nothing may be lost.
		if got := e.comments(); !slices.Equal(got, want) && !slices.Equal(got, []string{want[0], want[0], want[1]}) {
			t.Errorf("comments = %q, want %q", got, want)
		}
	})
}

func TestTakesOverFromADeadProcess(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{Senders: 1})
		must(t, r.Comment(t.Context(), e.repo, 1, "after the crash"))
		// A process took the outbox and died: its lease is left to run
		// out, and the outbox stays out of sight as long.
		k := keysFor(e.repo, conversation)
		must(t, e.rdb.Set(t.Context(), k.lease, "dead", leaseTTL).Err())
		hidden := e.clock.Now().Add(leaseTTL)
		must(t, e.rdb.ZAdd(t.Context(), r.keys.readyTalk, redis.Z{Score: ms(hidden), Member: k.member}).Err())
		run(t, r)
		looked(t, r)
		if n := len(e.comments()); n != 0 {
			t.Fatalf("%d comments sent while the dead process held the outbox", n)
		}
		must(t, e.rdb.Del(t.Context(), k.lease).Err()) // as Redis does when it runs out
		e.clock.Set(hidden)
		await(t, "the comment", func() bool { return len(e.comments()) == 1 })
	})
}

// TestPacesToSecondaryLimits: each budget's window slides. Five writes
// just before a fixed window's boundary fill it; past the boundary the
// sixth still waits until the first of them is a whole window old, where
// a fixed window would have let five more through.
func TestPacesToSecondaryLimits(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		class  class // comments or check runs
		window time.Duration
	}{
		{"comments per minute", Options{PerMinute: 5}, conversation, time.Minute},
		{"comments per hour", Options{PerHour: 5}, conversation, time.Hour},
		// A write is 5 points.
		{"check runs' points per minute", Options{PointsPerMinute: 25}, status, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				boundary := e.clock.Now().Truncate(tt.window).Add(tt.window)
				first := boundary.Add(-10 * time.Second)
				e.clock.Set(first)
				opts := tt.opts
				opts.Senders, opts.TalkSenders = 1, 1
				r := e.reporter(opts)
				sent := func() int { return len(e.requests("POST", "/check-runs")) }
				for i := range 6 {
					if tt.class == conversation {
						must(t, r.Comment(t.Context(), e.repo, 1, fmt.Sprint("comment ", i)))
						sent = func() int { return len(e.requests("POST", "/issues/")) }
					} else {
						must(t, r.CheckRun(t.Context(), e.repo, fmt.Sprint("job", i), CheckRun{Name: fmt.Sprint("railyard/stage", i), HeadSHA: e.sha}))
					}
				}
				run(t, r)
				// Once five went, the sender's lease is gone only when its
				// session is over (the frozen clock makes nothing due again),
				// and the outbox's due time is what it left. While it sends,
				// the outbox is hidden for leaseTTL: on this clock a minute,
				// which for the minute windows is the window's end too.
				next := first.Add(tt.window)
				await(t, "five writes and the sender's session to end", func() bool {
					return sent() >= 5 && e.rdb.Exists(t.Context(), keysFor(e.repo, tt.class).lease).Val() == 0
				})
				if n := sent(); n != 5 {
					t.Fatalf("%d writes within the window, want 5", n)
				}
				if got := e.readyAt(t, r, tt.class); !got.Equal(next) {
					t.Fatalf("outbox due at %v, want %v", got, next)
				}

				// Past the fixed boundary, with the outbox due (as another
				// sender may find it): still full.
				e.clock.Set(boundary.Add(5 * time.Second))
				must(t, e.rdb.ZAdd(t.Context(), r.keys.readySet(tt.class), redis.Z{Score: ms(e.clock.Now()), Member: keysFor(e.repo, tt.class).member}).Err())
				await(t, "the outbox to wait for the window again", func() bool { return e.readyAt(t, r, tt.class).Equal(next) })
				if n := sent(); n != 5 {
					t.Fatalf("%d writes in a window's length across its boundary, want 5", n)
				}

				e.clock.Set(next)
				await(t, "the sixth write", func() bool { return sent() == 6 })
			})
		})
	}
}

// TestBudgetsAreSeparate: neither class spends the other's budget, and a
// limit of -1 is none.
func TestBudgetsAreSeparate(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{PerMinute: 1, PointsPerMinute: -1})
		for i := range 30 {
			must(t, r.CheckRun(t.Context(), e.repo, fmt.Sprint("job", i), CheckRun{Name: fmt.Sprint("railyard/stage", i), HeadSHA: e.sha}))
		}
		must(t, r.Comment(t.Context(), e.repo, 1, "one"))
		must(t, r.Comment(t.Context(), e.repo, 1, "two"))
		run(t, r)
		await(t, "30 check runs and a comment", func() bool { return len(e.fake.CheckRuns()) == 30 && len(e.comments()) == 1 })
		looked(t, r)
		if got := e.comments(); !slices.Equal(got, []string{"one"}) {
			t.Errorf("comments in the first minute = %q, want only the first", got)
		}
	})
}

func TestSecretsNeverReachGitHub(t *testing.T) {
	const secret = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{Secrets: []string{secret}})
		ctx := t.Context()
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Name: "railyard/prod", HeadSHA: e.sha, Title: "token " + secret,
			Summary: "env: TOKEN=" + secret, Text: "curl -H 'Authorization: " + secret + "'", Status: "queued"}))
		must(t, r.Deployment(ctx, e.repo, "job", Deployment{Ref: e.sha, Environment: "prod", Payload: map[string]any{"reason": "leaked " + secret}}))
		must(t, r.DeploymentStatus(ctx, e.repo, "job", DeploymentStatus{State: "failure", Description: secret}))
		must(t, r.Comment(ctx, e.repo, 1, "oops "+secret))
		run(t, r)
		awaitEmpty(t, r)

		for _, q := range e.gh.Requests() {
			if strings.Contains(string(q.Body), secret) || strings.Contains(q.Path, secret) {
				t.Errorf("%s %s sent the secret: %s", q.Method, q.Path, q.Body)
			}
		}
		if got := e.checkRun(t).Text; got != "curl -H 'Authorization: ***'" {
			t.Errorf("text = %q", got)
		}
	})
}

func TestCutsFieldsToGitHubLimits(t *testing.T) {
	var log strings.Builder
	for i := 0; log.Len() < 100_000; i++ {
		fmt.Fprintf(&log, "%05d compiling package ünïcödé\n", i)
	}
	log.WriteString("error: exit status 2")
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Name: "railyard/build", HeadSHA: e.sha, Status: "completed",
			Conclusion: "failure", Title: "Failed", Summary: "# Steps\n" + log.String(), Text: log.String()}))
		run(t, r)
		await(t, "the check run", func() bool { return e.checkRun(t).Conclusion == "failure" })

		got := e.checkRun(t)
		if n := utf8.RuneCountInString(got.Text); n > 65535 || !strings.HasSuffix(got.Text, "\nerror: exit status 2") {
			t.Errorf("text: %d characters, ends %q", n, got.Text[max(0, len(got.Text)-40):])
		}
		if n := utf8.RuneCountInString(got.Summary); n > 65535 || !strings.HasPrefix(got.Summary, "# Steps\n00000 compiling") {
			t.Errorf("summary: %d characters, starts %.40q", n, got.Summary)
		}
	})
}

func TestPendingCountsQueuedOperations(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		must(t, r.Comment(ctx, e.repo, 1, "one"))
		must(t, r.Comment(ctx, e.repo, 1, "two"))
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Name: "railyard/build", HeadSHA: e.sha}))
		if n, err := r.Pending(ctx); n != 3 || err != nil {
			t.Errorf("Pending before sending = %d, %v; want 3", n, err)
		}
		run(t, r)
		await(t, "an empty outbox", func() bool {
			n, err := r.Pending(ctx)
			return n == 0 && err == nil
		})
		if len(e.comments()) != 2 || len(e.fake.CheckRuns()) != 1 {
			t.Errorf("comments %q, check runs %+v", e.comments(), e.fake.CheckRuns())
		}
	})
}
