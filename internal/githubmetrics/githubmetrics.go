// Package githubmetrics counts and times Railyard's requests to GitHub's
// REST API and follows the rate limit GitHub reports on its answers. Every
// label it makes is bounded: a route is an API path template such as
// "POST /repos/{owner}/{repo}/check-runs", never a path with names or ids
// in it. It measures; it never retries, waits or changes a request.
package githubmetrics

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Other is the route of a request that is none of routes.
const Other = "other"

// routes are the REST operations Railyard calls, with the paths GitHub's
// API description gives them. A last parameter written {name...} spans
// several segments (a file path, a branch with a slash in it).
// This is the one list: the fake GitHub (internal/githubtest) serves these,
// so a route added here needs a handler there, and its description
// regenerated.
var routes = []string{
	"POST /app/installations/{installation_id}/access_tokens",
	"GET /repos/{owner}/{repo}",
	"GET /repos/{owner}/{repo}/contents/{path...}",
	"GET /repos/{owner}/{repo}/commits/{ref...}",
	"GET /repos/{owner}/{repo}/tarball/{ref...}",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews",
	"GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
	"GET /repos/{owner}/{repo}/commits/{ref}/status",
	"GET /repos/{owner}/{repo}/compare/{basehead...}",
	"GET /repos/{owner}/{repo}/branches/{branch...}",
	"GET /repos/{owner}/{repo}/rules/branches/{branch...}",
	"GET /repos/{owner}/{repo}/collaborators/{username}/permission",
	"POST /repos/{owner}/{repo}/check-runs",
	"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"GET /repos/{owner}/{repo}/deployments",
	"GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"POST /repos/{owner}/{repo}/deployments",
	"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
	"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
	"GET /repos/{owner}/{repo}/actions/runs/{run_id}",
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
}

// Patterns returns the routes Railyard calls as http.ServeMux patterns,
// "METHOD /path", {name...} marking a parameter that spans segments. It is
// the one list of them: the fake GitHub serves these.
func Patterns() []string { return slices.Clone(routes) }

// Template returns pattern's route as GitHub's API description writes it,
// without the "..." marks: the label a request to it gets.
func Template(pattern string) string { return strings.ReplaceAll(pattern, "...}", "}") }

// Router maps a request to its route. It is safe for concurrent use.
type Router struct {
	mux    *http.ServeMux
	labels map[string]string // mux pattern → route
}

// NewRouter returns the router for the API at apiURL, whose path (as
// GitHub Enterprise Server's /api/v3/) prefixes every route.
func NewRouter(apiURL string) (*Router, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("GitHub API URL: %w", err)
	}
	prefix := strings.TrimSuffix(u.Path, "/")
	rt := &Router{mux: http.NewServeMux(), labels: make(map[string]string, len(routes))}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		pattern := method + " " + prefix + path
		rt.mux.Handle(pattern, http.NotFoundHandler())
		rt.labels[pattern] = Template(r)
	}
	return rt, nil
}

// Route returns r's route, "METHOD /path/{template}", or Other.
func (rt *Router) Route(r *http.Request) string {
	// For a path it would redirect (one with "//", say) the mux answers
	// the pattern of the clean path, or the clean path itself when no
	// pattern matches it: only patterns become labels.
	_, pattern := rt.mux.Handler(r)
	if label, ok := rt.labels[pattern]; ok {
		return label
	}
	return Other
}

// Metrics are the GitHub request metrics, a prometheus.Collector.
type Metrics struct {
	router   *Router
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	limits   *rateLimits
}

// New returns the metrics of requests to the API at apiURL.
func New(apiURL string) (*Metrics, error) {
	router, err := NewRouter(apiURL)
	if err != nil {
		return nil, err
	}
	return &Metrics{
		router: router,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "railyard_github_requests_total",
			Help: "Requests to GitHub's REST API by route and HTTP status (\"none\": no answer).",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "railyard_github_request_duration_seconds",
			Help:    "Time until GitHub's REST API answered, by route.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		limits: &rateLimits{windows: map[window]int64{}, now: time.Now},
	}, nil
}

// NoAnswer is the code of a request that got no answer: a refused
// connection, a timeout, a cancelled request.
const NoAnswer = "none"

// Transport instruments next: each request is counted and timed under its
// route, and each answer's rate-limit headers are noted. A request that
// gets no answer is counted under code NoAnswer and not timed.
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	routeOf := func(ctx context.Context) string {
		route, _ := ctx.Value(routeKey{}).(string)
		return route
	}
	byRoute := promhttp.WithLabelFromCtx("route", routeOf)
	noted := roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if err != nil {
			// promhttp counts answers only.
			m.requests.WithLabelValues(routeOf(r.Context()), NoAnswer).Inc()
			return resp, err
		}
		m.limits.note(resp.Header)
		return resp, err
	})
	timed := promhttp.InstrumentRoundTripperCounter(m.requests,
		promhttp.InstrumentRoundTripperDuration(m.duration, noted, byRoute), byRoute)
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		return timed.RoundTrip(r.WithContext(context.WithValue(r.Context(), routeKey{}, m.router.Route(r))))
	})
}

type routeKey struct{}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Describe is prometheus.Collector's.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
	ch <- remainingDesc
}

// Collect is prometheus.Collector's.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
	for resource, remaining := range m.limits.lowest() {
		ch <- prometheus.MustNewConstMetric(remainingDesc, prometheus.GaugeValue, float64(remaining), resource)
	}
}

var remainingDesc = prometheus.NewDesc("railyard_github_rate_limit_remaining",
	"The fewest requests left to any installation (or the App) in its current rate-limit window, by GitHub's rate-limit resource.",
	[]string{"resource"}, nil)

// resources are GitHub's rate-limit resources (X-RateLimit-Resource);
// anything else is counted as "other".
var resources = map[string]bool{
	"core": true, "search": true, "code_search": true, "graphql": true,
	"integration_manifest": true, "source_import": true, "code_scanning_upload": true,
	"code_scanning_autofix": true, "actions_runner_registration": true, "scim": true,
	"dependency_snapshots": true, "dependency_sbom": true, "audit_log": true,
	"audit_log_streaming": true,
}

// rateLimits keeps the lowest remaining count GitHub reported in each
// rate-limit window still open. Each installation has its own window,
// which ends at its X-RateLimit-Reset, so a window stands for an
// installation without an installation label: those would be one series
// per organisation that installs the App. Two installations whose windows
// end in the same second share an entry, which keeps the lower count.
type rateLimits struct {
	mu      sync.Mutex
	windows map[window]int64
	now     func() time.Time
}

type window struct {
	resource string
	reset    int64 // Unix seconds
}

func (l *rateLimits) note(h http.Header) {
	remaining, err := strconv.ParseInt(h.Get("X-RateLimit-Remaining"), 10, 64)
	if err != nil {
		return
	}
	reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return
	}
	w := window{resource: h.Get("X-RateLimit-Resource"), reset: reset}
	if !resources[w.resource] {
		w.resource = "other"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.windows[w]; ok {
		l.windows[w] = min(old, remaining)
		return
	}
	l.prune()
	l.windows[w] = remaining
}

// lowest returns the lowest remaining count of each resource over the
// windows still open.
func (l *rateLimits) lowest() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune()
	out := map[string]int64{}
	for w, n := range l.windows {
		if old, ok := out[w.resource]; !ok || n < old {
			out[w.resource] = n
		}
	}
	return out
}

// prune forgets the windows that have ended; l.mu is held.
func (l *rateLimits) prune() {
	now := l.now().Unix()
	for w := range l.windows {
		if w.reset <= now {
			delete(l.windows, w)
		}
	}
}
