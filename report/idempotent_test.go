package report

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/railyard/railyard/internal/githubtest"
)

// awaitRetried waits for cond while moving the test's clock a second at a
// time, past the senders' backoff.
func (e *env) awaitRetried(t *testing.T, what string, cond func() bool) {
	t.Helper()
	e.awaitTicking(t, time.Second, what, cond)
}

// awaitTicking waits for cond while moving the test's clock by step at a
// time.
func (e *env) awaitTicking(t *testing.T, step time.Duration, what string, cond func() bool) {
	t.Helper()
	await(t, what, func() bool {
		e.clock.Advance(step)
		return cond()
	})
}

func statuses(d githubtest.Deployment) []string {
	var out []string
	for _, s := range d.Statuses {
		out = append(out, s.State)
	}
	return out
}

func TestLostAnswerMakesOneObject(t *testing.T) {
	tests := []struct {
		name string
		lose string // method and path under the repository whose first answer is lost
		// queue queues the operations; after queues more once the request
		// whose answer is lost was made, before it is tried again; done
		// says when they all reached GitHub; check checks what GitHub
		// shows.
		queue func(t *testing.T, e *env, r *Reporter)
		after func(t *testing.T, e *env, r *Reporter)
		done  func(e *env) bool
		check func(t *testing.T, e *env)
	}{
		{
			// The create merges the updates queued with it, and the one
			// queued after the lost answer: the check run found shows it.
			name: "check run", lose: "/check-runs",
			queue: func(t *testing.T, e *env, r *Reporter) {
				must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Name: "railyard/prod", HeadSHA: e.sha, Status: "queued", ExternalID: "prod:job"}))
				must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Status: "in_progress", Title: "Deploying"}))
			},
			after: func(t *testing.T, e *env, r *Reporter) {
				must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Status: "completed", Conclusion: "success", Title: "Deployed"}))
			},
			done: func(e *env) bool {
				runs := e.fake.CheckRuns()
				return len(runs) > 0 && runs[len(runs)-1].Conclusion == "success"
			},
			check: func(t *testing.T, e *env) {
				if got := e.checkRun(t); got.Title != "Deployed" || got.ExternalID != "prod:job" || got.Updates != 1 {
					t.Errorf("check run = %+v, want the one created, updated once", got)
				}
				if n := len(e.requests("POST", "/check-runs")); n != 1 {
					t.Errorf("%d creations, want the one whose answer was lost", n)
				}
			},
		},
		{
			// The queued status is obsolete before it is sent.
			name: "deployment", lose: "/deployments",
			queue: func(t *testing.T, e *env, r *Reporter) {
				must(t, r.Deployment(t.Context(), e.repo, "job", Deployment{Ref: e.sha, Environment: "prod", Payload: map[string]any{"operation": "deploy"}}))
				must(t, r.DeploymentStatus(t.Context(), e.repo, "job", DeploymentStatus{State: "queued"}))
				must(t, r.DeploymentStatus(t.Context(), e.repo, "job", DeploymentStatus{State: "success"}))
			},
			done: func(e *env) bool {
				ds := e.fake.Deployments()
				return len(ds) > 0 && len(ds[len(ds)-1].Statuses) == 1
			},
			check: func(t *testing.T, e *env) {
				ds := e.fake.Deployments()
				if len(ds) != 1 || !slices.Equal(statuses(ds[0]), []string{"success"}) {
					t.Fatalf("%d deployments, want 1 with the final status: %+v", len(ds), ds)
				}
				if p := string(ds[0].Payload); p != `{"operation":"deploy","railyard_key":"job"}` {
					t.Errorf("payload = %s", p)
				}
			},
		},
		{
			name: "deployment status", lose: "/deployments/",
			queue: func(t *testing.T, e *env, r *Reporter) {
				must(t, r.Deployment(t.Context(), e.repo, "job", Deployment{Ref: e.sha, Environment: "prod"}))
				for _, s := range []string{"in_progress", "success"} {
					must(t, r.DeploymentStatus(t.Context(), e.repo, "job", DeploymentStatus{State: s, Description: "deploy by @alice"}))
				}
			},
			done: func(e *env) bool {
				ds := e.fake.Deployments()
				return len(ds) == 1 && slices.Contains(statuses(ds[0]), "success")
			},
			check: func(t *testing.T, e *env) {
				// in_progress was obsolete before it was sent.
				if got := statuses(e.fake.Deployments()[0]); !slices.Equal(got, []string{"success"}) {
					t.Errorf("statuses = %v, want each once", got)
				}
			},
		},
		{
			name: "comment", lose: "/issues/1/comments",
			queue: func(t *testing.T, e *env, r *Reporter) {
				must(t, r.Comment(t.Context(), e.repo, 1, "comment 0"))
				must(t, r.Comment(t.Context(), e.repo, 1, "comment 1"))
			},
			done: func(e *env) bool { return slices.Contains(e.comments(), "comment 1") },
			check: func(t *testing.T, e *env) {
				if got := e.comments(); !slices.Equal(got, numbered(2)) {
					t.Errorf("comments = %q, want each once", got)
				}
			},
		},
	}
	for _, tt := range tests {
		for _, how := range []struct {
			name string
			loss githubtest.Loss
		}{{"502", githubtest.Answer502}, {"reset", githubtest.DropConnection}} {
			t.Run(tt.name+"/"+how.name, func(t *testing.T) {
				eachBackend(t, func(t *testing.T, e *env) {
					r := e.reporter(Options{})
					path := "/repos/" + e.repo.FullName() + tt.lose
					e.gh.LoseAnswers("POST", path, 1, how.loss)
					tt.queue(t, e, r)
					run(t, r)
					if tt.after != nil {
						await(t, "the request whose answer is lost", func() bool { return len(e.requests("POST", tt.lose)) > 0 })
						tt.after(t, e, r)
					}
					e.awaitRetried(t, "every operation on GitHub", func() bool {
						n, err := r.Pending(t.Context())
						return tt.done(e) && err == nil && n == 0
					})
					tt.check(t, e)
					if s := r.Stats(); s.Adopted != 1 || s.Dropped != 0 {
						t.Errorf("stats = %+v, want 1 adopted and none dropped", s)
					}
				})
			})
		}
	}
}

func TestTransientRefusalsDoNotDropACheckRun(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusNotFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				r := e.reporter(Options{})
				e.gh.FailNext("POST", "/repos/"+e.repo.FullName()+"/check-runs", 2, status, nil)
				must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Name: "railyard/build", HeadSHA: e.sha, Status: "queued"}))
				must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Status: "completed", Conclusion: "success"}))
				run(t, r)
				e.awaitRetried(t, "the completed check run", func() bool { return e.checkRun(t).Conclusion == "success" })
				if n := len(e.requests("POST", "/check-runs")); n != 3 {
					t.Errorf("%d creations, want 2 refused + 1", n)
				}
				awaitEmpty(t, r)
				if s := r.Stats(); s.Dropped != 0 || s.Retries != 2 {
					t.Errorf("stats = %+v, want 2 retries and none dropped", s)
				}
			})
		})
	}
}

func TestRefusalsThatLastAreDropped(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(e *env)
		wantPosts int
	}{
		{"401 after the last retry", func(e *env) {
			e.gh.FailNext("POST", "/repos/"+e.repo.FullName()+"/check-runs", 100, http.StatusUnauthorized, nil)
		}, maxRefusals + 1},
		{"404 on a repository the installation lost", func(e *env) {
			// The creation and the look at the repository both find nothing.
			e.gh.FailNext("", "/repos/"+e.repo.FullName(), 2, http.StatusNotFound, nil)
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				r := e.reporter(Options{})
				tt.fail(e)
				must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Name: "railyard/build", HeadSHA: e.sha}))
				must(t, r.CheckRun(t.Context(), e.repo, "job", CheckRun{Status: "completed", Conclusion: "failure"}))
				run(t, r)
				e.awaitRetried(t, "the operations to be dropped", func() bool { return r.Stats().Dropped == 2 })
				if n := len(e.requests("POST", "/check-runs")); n != tt.wantPosts || len(e.fake.CheckRuns()) != 0 {
					t.Errorf("%d creations and %d check runs, want %d and none", n, len(e.fake.CheckRuns()), tt.wantPosts)
				}
			})
		})
	}
}

func TestObjectEntriesExpire(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		k := keysFor(e.repo, status)
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Name: "railyard/build", HeadSHA: e.sha}))
		must(t, r.Deployment(ctx, e.repo, "job", Deployment{Ref: e.sha, Environment: "build"}))
		run(t, r)
		await(t, "the check run and deployment", func() bool { return len(e.fake.CheckRuns()) == 1 && len(e.fake.Deployments()) == 1 })
		awaitEmpty(t, r)
		for _, f := range []string{checkRunField("job"), deploymentField("job")} {
			ttl, err := e.rdb.TTL(ctx, k.object(f)).Result()
			if err != nil || ttl <= 0 || ttl > idTTL {
				t.Errorf("%s expires in %v (%v), want within %v", f, ttl, err, idTTL)
			}
		}
		if n, err := e.rdb.Exists(ctx, k.tried, k.attempts).Result(); err != nil || n != 0 {
			t.Errorf("%d attempt records left after sending (%v)", n, err)
		}
	})
}

func TestEntriesOfEarlierVersionsStillServe(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		// A check run created by a version that kept every entry in one hash.
		cr, _, err := e.gh.InstallationClient(t, e.repo.InstallationID).Checks.CreateCheckRun(ctx, e.repo.Owner, e.repo.Name,
			github.CreateCheckRunOptions{Name: "railyard/build", HeadSHA: e.sha})
		must(t, err)
		k := keysFor(e.repo, status)
		must(t, e.rdb.HSet(ctx, k.legacyIDs, checkRunField("job"), `{"id":`+strconv.FormatInt(cr.GetID(), 10)+`,"html_url":"`+cr.GetHTMLURL()+`"}`).Err())

		r := e.reporter(Options{})
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Status: "completed", Conclusion: "success"}))
		run(t, r)
		await(t, "the update", func() bool { return e.checkRun(t).Conclusion == "success" })
		awaitEmpty(t, r)
		if ttl, err := e.rdb.TTL(ctx, k.legacyIDs).Result(); err != nil || ttl <= 0 || ttl > idTTL {
			t.Errorf("the earlier versions' hash expires in %v (%v), want within %v", ttl, err, idTTL)
		}
	})
}

// TestCheckRunOutputsExpireOneByOne: the output kept of a check run in
// progress is a key of its own that expires (an abandoned check run's
// goes within outputTTL) and goes once the check run completes.
func TestCheckRunOutputsExpireOneByOne(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		k := keysFor(e.repo, status)
		key := k.output(checkRunField("job"))
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Name: "railyard/build", HeadSHA: e.sha, Status: "in_progress", Title: "Building", Summary: "step 1"}))
		run(t, r)
		await(t, "the check run", func() bool { return e.checkRun(t).Title == "Building" })
		awaitEmpty(t, r)
		if ttl, err := e.rdb.TTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > outputTTL {
			t.Errorf("the output kept expires in %v (%v), want within %v", ttl, err, outputTTL)
		}
		if n, _ := e.rdb.Exists(ctx, k.legacyOutput).Result(); n != 0 {
			t.Error("the output went to the hash of earlier versions")
		}

		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Status: "completed", Conclusion: "success"}))
		await(t, "the completed check run", func() bool { return e.checkRun(t).Conclusion == "success" })
		awaitEmpty(t, r)
		if n, _ := e.rdb.Exists(ctx, key).Result(); n != 0 {
			t.Error("the output of a completed check run is still kept")
		}
	})
}

// TestOutputsOfEarlierVersionsStillServe: a check run whose output an
// earlier version kept in its hash keeps its title and summary when only
// its text is updated.
func TestOutputsOfEarlierVersionsStillServe(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		cr, _, err := e.gh.InstallationClient(t, e.repo.InstallationID).Checks.CreateCheckRun(ctx, e.repo.Owner, e.repo.Name,
			github.CreateCheckRunOptions{Name: "railyard/build", HeadSHA: e.sha, Output: &github.CheckRunOutput{Title: github.String("Building"), Summary: github.String("step 1")}})
		must(t, err)
		k := keysFor(e.repo, status)
		field := checkRunField("job")
		must(t, e.rdb.HSet(ctx, k.legacyIDs, field, `{"id":`+strconv.FormatInt(cr.GetID(), 10)+`}`).Err())
		must(t, e.rdb.HSet(ctx, k.legacyOutput, field, `{"title":"Building","summary":"step 1"}`).Err())

		r := e.reporter(Options{})
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Status: "in_progress", Text: "log"}))
		run(t, r)
		await(t, "the update", func() bool { return e.checkRun(t).Text == "log" })
		awaitEmpty(t, r)
		if got := e.checkRun(t); got.Title != "Building" || got.Summary != "step 1" {
			t.Errorf("title %q, summary %q after a text update, want the earlier version's Building, step 1", got.Title, got.Summary)
		}
		if n, _ := e.rdb.HExists(ctx, k.legacyOutput, field).Result(); n {
			t.Error("the earlier versions' output is still in their hash after it moved to its own key")
		}
	})
}
