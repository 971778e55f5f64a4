package server_test

import (
	"crypto/rand"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubmetrics"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/webhooktest"
)

// scrape reads GET /metrics as Prometheus would and returns every sample
// by its series, written `name{label="value",…}` with labels sorted;
// histograms and summaries as their _count, _sum and _bucket series.
func (h *harness) scrape() map[string]float64 {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		h.t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		h.t.Fatalf("GET /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Histogram != nil:
				out[series(name+"_count", labels)] = float64(m.Histogram.GetSampleCount())
				out[series(name+"_sum", labels)] = m.Histogram.GetSampleSum()
				for _, b := range m.Histogram.Bucket {
					out[series(name+"_bucket", labels, "le", fmt.Sprint(b.GetUpperBound()))] = float64(b.GetCumulativeCount())
				}
			case m.Summary != nil:
				out[series(name+"_count", labels)] = float64(m.Summary.GetSampleCount())
				out[series(name+"_sum", labels)] = m.Summary.GetSampleSum()
				for _, q := range m.Summary.Quantile {
					out[series(name, labels, "quantile", fmt.Sprint(q.GetQuantile()))] = q.GetValue()
				}
			default:
				out[series(name, labels)] = sampleValue(m)
			}
		}
	}
	return out
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return m.Untyped.GetValue()
}

// series writes a series as a query names it: series("x", nil, "a", "1")
// is `x{a="1"}`.
func series(name string, labels map[string]string, more ...string) string {
	all := maps.Clone(labels)
	if all == nil {
		all = map[string]string{}
	}
	for i := 0; i+1 < len(more); i += 2 {
		all[more[i]] = more[i+1]
	}
	if len(all) == 0 {
		return name
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(all)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, all[k]))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// metric is a series with its labels given in pairs.
func metric(name string, labels ...string) string { return series(name, nil, labels...) }

// TestMetrics: after a push that deploys through two stages and a comment
// of commands, /metrics shows what an operator asks about: webhooks by
// event, stage jobs by stage, operation and result, commands by name and
// result, both queues, GitHub requests by route and status, the rate limit
// left, and the Go runtime, process and build.
func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s      - name: fails-on-demand
        run: test ! -f $DIR/fail
`, markStep("compile"), markStep("deploy")))
	sha := h.commitAndPush()
	h.awaitStage("staging", engine.Succeeded, sha)
	h.comment("/status\n/frobnicate now\n/rollback stage=build\n/retry stage=nowhere")

	// One failed job, then its retry by command.
	if err := os.WriteFile(filepath.Join(h.dir, "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sha2 := h.commitAndPush()
	h.awaitStage("staging", engine.Failed, sha2)
	if err := os.Remove(filepath.Join(h.dir, "fail")); err != nil {
		t.Fatal(err)
	}
	h.comment("/retry stage=staging")
	h.awaitStage("staging", engine.Succeeded, sha2)

	// Reports reach GitHub after the jobs end, and a request is counted
	// once its answer is in: wait for the last of them.
	var m map[string]float64
	h.await("every job counted and every report sent", func() bool {
		m = h.scrape()
		return m[metric("railyard_stage_jobs_total", "stage", "staging", "operation", "retry", "result", "success")] == 1 &&
			m[metric("railyard_jobs_total", "kind", "comment", "outcome", "done")] == 2 &&
			// Each gauge is read on its own, so a write queued between
			// the reads shows in some and not others: wait for all at 0.
			m[metric("railyard_github_outbox_pending")] == 0 &&
			m[metric("railyard_github_outbox_depth", "class", "conversation")] == 0 &&
			m[metric("railyard_github_outbox_depth", "class", "status")] == 0 &&
			maps.Equal(requestsByRoute(m), h.requestsByRoute())
	})
	for series, want := range map[string]float64{
		metric("railyard_webhooks_total", "event", "push", "outcome", "202"):          2,
		metric("railyard_webhooks_total", "event", "issue_comment", "outcome", "202"): 2,
		metric("railyard_webhook_intake_seconds_count", "event", "push"):              2,

		metric("railyard_stage_jobs_total", "stage", "build", "operation", "deploy", "result", "success"):   2,
		metric("railyard_stage_jobs_total", "stage", "staging", "operation", "deploy", "result", "success"): 1,
		metric("railyard_stage_jobs_total", "stage", "staging", "operation", "deploy", "result", "failure"): 1,
		metric("railyard_stage_jobs_total", "stage", "staging", "operation", "retry", "result", "success"):  1,
		metric("railyard_stage_job_duration_seconds_count", "stage", "build", "operation", "deploy"):        2,
		metric("railyard_stage_job_duration_seconds_count", "stage", "staging", "operation", "deploy"):      2,

		metric("railyard_commands_total", "command", "status", "result", "accepted"):  1,
		metric("railyard_commands_total", "command", "unknown", "result", "invalid"):  1,
		metric("railyard_commands_total", "command", "rollback", "result", "invalid"): 1,
		metric("railyard_commands_total", "command", "retry", "result", "refused"):    1,
		metric("railyard_commands_total", "command", "retry", "result", "accepted"):   1,

		metric("railyard_jobs_total", "kind", "push", "outcome", "done"):     2,
		metric("railyard_queue_ready", "queue", "people"):                    0,
		metric("railyard_queue_dead", "queue", "people"):                     0,
		metric("railyard_queue_ready", "queue", "intake"):                    0,
		metric("railyard_queue_ready", "queue", "stage"):                     0,
		metric("railyard_queue_dead", "queue", "intake"):                     0,
		metric("railyard_queue_dead", "queue", "stage"):                      0,
		metric("railyard_github_outbox_pending"):                             0,
		metric("railyard_github_outbox_depth", "class", "conversation"):      0,
		metric("railyard_github_outbox_depth", "class", "status"):            0,
		metric("railyard_github_outbox_oldest_seconds", "class", "status"):   0,
		metric("railyard_github_rate_limited_total"):                         0,
		metric("railyard_github_secondary_limited_total", "class", "status"): 0,

		metric("railyard_github_rate_limit_remaining", "resource", "core"): float64(h.gh.RateLimitRemaining(githubtest.DefaultInstallationID)),
	} {
		got, ok := m[series]
		if !ok {
			t.Errorf("no series %s", series)
		} else if got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "railyard_queue_leased", "railyard_queue_delayed"} {
		if !hasSeries(m, name) {
			t.Errorf("no series named %s", name)
		}
	}
	if !hasSeries(m, "go_build_info{") {
		t.Error("no go_build_info")
	}

	// GitHub's requests were counted under the route the fake GitHub
	// matched each one to (awaited above), and under no other.
	byRoute := h.requestsByRoute()
	for _, route := range []string{"POST /repos/{owner}/{repo}/check-runs", "GET /repos/{owner}/{repo}/contents/{path}", "POST /app/installations/{installation_id}/access_tokens"} {
		if byRoute[route] == 0 {
			t.Errorf("the fake GitHub had no %s", route)
		}
	}
	if n := m[metric("railyard_github_request_duration_seconds_count", "route", "POST /repos/{owner}/{repo}/check-runs")]; n != byRoute["POST /repos/{owner}/{repo}/check-runs"] {
		t.Errorf("%v check run creations timed, want %v", n, byRoute["POST /repos/{owner}/{repo}/check-runs"])
	}
}

// requestsByRoute counts the requests the fake GitHub received by the
// route of the operation it matched.
func (h *harness) requestsByRoute() map[string]float64 {
	out := map[string]float64{}
	for _, r := range h.gh.Requests() {
		if r.Route != "" {
			out[r.Route]++
		}
	}
	return out
}

// requestsByRoute sums railyard_github_requests_total by route.
func requestsByRoute(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for series, v := range m {
		if rest, ok := strings.CutPrefix(series, `railyard_github_requests_total{code="`); ok {
			_, route, _ := strings.Cut(rest, `route="`)
			out[strings.TrimSuffix(route, `"}`)] += v
		}
	}
	return out
}

// TestUnverifiedWebhooksMakeNoSeries: whatever event a delivery without a
// good signature names, and whatever unknown event a signed one names, no
// new series appears; they are counted as "unverified" and "other".
func TestUnverifiedWebhooksMakeNoSeries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	body := webhooktest.Payload(t, "ping/payload.json")
	send := func(event string, signed, badSignature bool) int {
		req := webhooktest.Request(t, secret, event, "delivery-"+rand.Text(), body)
		switch {
		case badSignature:
			req.Header.Set("X-Hub-Signature-256", webhooktest.Sign([]byte("not the secret"), body))
		case !signed:
			req.Header.Del("X-Hub-Signature-256")
			req.Header.Del("X-Hub-Signature")
		}
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	// One of each first, so that the series they make exist.
	if code := send("push", false, false); code != http.StatusUnauthorized {
		t.Fatalf("unsigned delivery answered %d, want 401", code)
	}
	if code := send("made-up-event", true, false); code != http.StatusAccepted {
		t.Fatalf("signed delivery of an unknown event answered %d, want 202", code)
	}
	before := h.scrape()

	var names []string
	for i := range 50 {
		name := "event-" + rand.Text()
		names = append(names, name)
		if code := send(name, false, i%2 == 0); code != http.StatusUnauthorized {
			t.Fatalf("delivery %d (%s) answered %d, want 401", i, name, code)
		}
	}
	for range 10 {
		name := "signed-" + rand.Text()
		names = append(names, name)
		if code := send(name, true, false); code != http.StatusAccepted {
			t.Fatalf("signed %s answered %d, want 202", name, code)
		}
	}

	after := h.scrape()
	if len(after) != len(before) {
		t.Errorf("%d series after 60 deliveries of made-up events, %d before; new: %v", len(after), len(before), added(before, after))
	}
	if n := after[metric("railyard_webhooks_total", "event", "unverified", "outcome", "401")]; n != 51 {
		t.Errorf("%v unverified deliveries counted, want 51", n)
	}
	if n := after[metric("railyard_webhooks_total", "event", "other", "outcome", "202")]; n != 11 {
		t.Errorf("%v signed deliveries of other events counted, want 11", n)
	}
	for series := range after {
		for _, name := range names {
			if strings.Contains(series, name) {
				t.Errorf("a client's event name became a label: %s", series)
			}
		}
	}
}

func added(before, after map[string]float64) []string {
	var out []string
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func hasSeries(m map[string]float64, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// checkRoutes asserts that every request the fake GitHub matched to an
// operation has that operation's route in Railyard's metrics: run after
// each end-to-end test, it checks the route of every call Railyard makes.
func checkRoutes(t *testing.T, gh *githubtest.Server) {
	router, err := githubmetrics.NewRouter(gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range gh.Requests() {
		if r.Route == "" || seen[r.Method+" "+r.Path] {
			continue
		}
		seen[r.Method+" "+r.Path] = true
		if got := router.Route(httptest.NewRequest(r.Method, gh.URL+strings.TrimPrefix(r.Path, "/"), nil)); got != r.Route {
			t.Errorf("metrics route of %s %s is %q, want %q", r.Method, r.Path, got, r.Route)
		}
	}
}
