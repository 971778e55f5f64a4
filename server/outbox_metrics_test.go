package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/report"
	"github.com/redis/go-redis/v9"
)

func TestOutboxMetricsByClass(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	queued := time.Now().Add(-90 * time.Second)
	r := report.New(rdb, nil, report.Options{Now: func() time.Time { return queued }})
	repo := report.Repo{InstallationID: 1, Owner: "octo", Name: "app"}
	if err := r.Reaction(t.Context(), repo, 7, "eyes"); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP railyard_github_outbox_depth Writes to GitHub not sent yet, by class: conversation (comments, reactions) or status (check runs, deployments).
# TYPE railyard_github_outbox_depth gauge
railyard_github_outbox_depth{class="conversation"} 1
railyard_github_outbox_depth{class="status"} 0
`
	if err := testutil.CollectAndCompare(outboxCollector{r}, strings.NewReader(want), "railyard_github_outbox_depth"); err != nil {
		t.Error(err)
	}
	// The reaction has waited since it was queued; nothing of status waits.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(outboxCollector{r})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "railyard_github_outbox_oldest_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			ages[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if ages["conversation"] < 90 || ages["conversation"] > 120 || ages["status"] != 0 {
		t.Errorf("oldest ages = %v, want about 90 s for conversation and 0 for status", ages)
	}
}

// TestBudgetMetrics: GitHub's secondary limit refuses a check run once;
// the metrics show the answer, the write held for it, and the points of
// both attempts.
func TestBudgetMetrics(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	gh := githubtest.New(t)
	fake := gh.AddRepo("octo/app", "main")
	sha := fake.Commit("main", map[string]githubtest.File{"README.md": {Content: "hello"}})
	gh.FailNext("POST", "/repos/", 1, http.StatusForbidden, http.Header{"Retry-After": {"1"}})
	r := report.New(rdb, gh.ClientCreator(), report.Options{Poll: 5 * time.Millisecond})
	repo := report.Repo{InstallationID: githubtest.DefaultInstallationID, Owner: "octo", Name: "app"}
	if err := r.CheckRun(t.Context(), repo, "job", report.CheckRun{Name: "railyard/build", HeadSHA: sha}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for len(fake.CheckRuns()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the check run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := `
# HELP railyard_github_points_total Points of GitHub's per-minute budget (RAILYARD_GITHUB_POINTS_PER_MINUTE) this process spent on status writes, 5 a write.
# TYPE railyard_github_points_total counter
railyard_github_points_total 10
# HELP railyard_github_secondary_limited_total Answers by which GitHub's secondary rate limit asked this process to wait (403 or 429 with Retry-After), by class.
# TYPE railyard_github_secondary_limited_total counter
railyard_github_secondary_limited_total{class="conversation"} 0
railyard_github_secondary_limited_total{class="status"} 1
# HELP railyard_github_writes_held_total Times this process put a write to GitHub off, by class and reason: points_budget, content_limit, retry_after, rate_limit_exhausted, installation_busy.
# TYPE railyard_github_writes_held_total counter
railyard_github_writes_held_total{class="status",reason="retry_after"} 1
`
	if err := testutil.CollectAndCompare(outboxCollector{r}, strings.NewReader(want),
		"railyard_github_points_total", "railyard_github_secondary_limited_total", "railyard_github_writes_held_total"); err != nil {
		t.Error(err)
	}
}
