package statuspage

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/awaittest"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
)

// TestFromEngine reads state the real engine wrote, through the Source the
// server wires up.
func TestFromEngine(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	rep := report.New(rdb, nil, report.Options{Now: func() time.Time { return now }})
	eng := engine.New(rdb, queue.New(rdb, queue.Options{}), rep, nil, nil, engine.Options{Now: func() time.Time { return now }})

	req := engine.Request{
		Repo:  report.Repo{InstallationID: 7, Owner: "octo", Name: "app"},
		File:  &config.Pipeline{Branch: "main", Stages: []config.Stage{{Name: "build"}, {Name: "prod"}}},
		Actor: "alice",
	}
	if _, err := eng.Deploy(t.Context(), req, r1, 0); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	req.Reason = "incident"
	if _, err := eng.Stop(t.Context(), req); err != nil {
		t.Fatalf("stop: %v", err)
	}

	h := New(FromEngine(eng, rep), Options{})
	// GitHub names are case-insensitive; so is the store.
	rec := serve(t, h, http.MethodGet, "/api/status/Octo/App", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
	}
	var got status
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got.Repository != "octo/app" || got.Branch != "main" || got.Patch != nil {
		t.Errorf("repository %q, branch %q, patch %v; want octo/app, main, none", got.Repository, got.Branch, got.Patch)
	}
	if s := got.Stopped; s == nil || s.Actor != "alice" || s.Reason != "incident" || !s.At.Equal(now) {
		t.Errorf("stopped = %+v, want alice: incident at %v", s, now)
	}
	// The build job is queued, and its check run not yet on GitHub.
	wantStages := []stage{{Name: "build", State: "queued"}, {Name: "prod", State: "idle"}}
	if !slices.Equal(got.Stages, wantStages) {
		t.Errorf("stages = %+v, want %+v", got.Stages, wantStages)
	}
	var ops []string
	for _, a := range got.Audit {
		ops = append(ops, a.Operation)
	}
	if len(ops) != 2 || ops[0] != "stop" || ops[1] != "push" {
		t.Errorf("audit operations = %q, want [stop push]", ops)
	}

	if rec := serve(t, h, http.MethodGet, "/api/status/octo/other", nil); rec.Code != http.StatusNotFound {
		t.Errorf("a repository the engine never saw: status %d, want 404", rec.Code)
	}
}

// TestFromEngineShowsGitHubDelays: when GitHub asks the installation's
// check runs to wait three minutes, the page of its repository says so,
// read through the Source the server wires up.
func TestFromEngineShowsGitHubDelays(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	gh := githubtest.New(t)
	gh.AddRepo("octo/app", "main").SetInstallation(7)
	gh.FailNext("POST", "/repos/", 1, http.StatusForbidden, http.Header{"Retry-After": {"180"}})
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	rep := report.New(rdb, gh.ClientCreator(), report.Options{Now: func() time.Time { return now }, Poll: time.Millisecond})
	eng := engine.New(rdb, queue.New(rdb, queue.Options{}), rep, nil, nil, engine.Options{Now: func() time.Time { return now }})
	req := engine.Request{
		Repo:  report.Repo{InstallationID: 7, Owner: "octo", Name: "app"},
		File:  &config.Pipeline{Branch: "main", Stages: []config.Stage{{Name: "build"}}},
		Actor: "alice",
	}
	if _, err := eng.Deploy(t.Context(), req, r1, 0); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- rep.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	h := New(FromEngine(eng, rep), Options{})
	want := "GitHub status writes (check runs, deployments) delayed since 10:00 UTC: GitHub asked to wait until 10:03 UTC (secondary rate limit)"
	var got status
	awaittest.Until(t, 10*time.Second, "a delay on the status page", func() bool {
		rec := serve(t, h, http.MethodGet, "/api/status/octo/app", nil)
		got = status{}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("decode %s: %v", rec.Body, err)
		}
		return len(got.GitHubDelays) == 1
	})
	if d := got.GitHubDelays[0]; d.Message != want || d.Reason != "retry_after" || d.Class != "status" {
		t.Errorf("github_delays = %+v, want %q", got.GitHubDelays, want)
	}
}
