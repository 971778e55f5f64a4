package githubmetrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRoute: every request Railyard sends to GitHub, as go-github writes
// it, maps to its template; nothing else becomes a label.
func TestRoute(t *testing.T) {
	cases := []struct {
		method, path, want string
	}{
		{"POST", "/app/installations/42/access_tokens", "POST /app/installations/{installation_id}/access_tokens"},
		{"GET", "/repos/octo/app", "GET /repos/{owner}/{repo}"},
		{"GET", "/repos/octo/app/contents/.github/railyard.yml?ref=abc", "GET /repos/{owner}/{repo}/contents/{path}"},
		{"GET", "/repos/octo/app/commits/main?per_page=1", "GET /repos/{owner}/{repo}/commits/{ref}"},
		{"GET", "/repos/octo/app/commits/feature/x", "GET /repos/{owner}/{repo}/commits/{ref}"},
		{"GET", "/repos/octo/app/tarball/0123456789abcdef0123456789abcdef01234567", "GET /repos/{owner}/{repo}/tarball/{ref}"},
		{"GET", "/repos/octo/app/pulls/7", "GET /repos/{owner}/{repo}/pulls/{pull_number}"},
		{"GET", "/repos/octo/app/pulls/7/reviews?per_page=100", "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews"},
		{"GET", "/repos/octo/app/commits/abc123/check-runs", "GET /repos/{owner}/{repo}/commits/{ref}/check-runs"},
		{"GET", "/repos/octo/app/commits/abc123/status", "GET /repos/{owner}/{repo}/commits/{ref}/status"},
		{"GET", "/repos/octo/app/compare/abc123...main", "GET /repos/{owner}/{repo}/compare/{basehead}"},
		{"GET", "/repos/octo/app/branches/release/v2", "GET /repos/{owner}/{repo}/branches/{branch}"},
		{"GET", "/repos/octo/app/rules/branches/main", "GET /repos/{owner}/{repo}/rules/branches/{branch}"},
		{"GET", "/repos/octo/app/collaborators/some-user/permission", "GET /repos/{owner}/{repo}/collaborators/{username}/permission"},
		{"POST", "/repos/octo/app/check-runs", "POST /repos/{owner}/{repo}/check-runs"},
		{"PATCH", "/repos/octo/app/check-runs/1234", "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}"},
		{"POST", "/repos/octo/app/deployments", "POST /repos/{owner}/{repo}/deployments"},
		{"GET", "/repos/octo/app/deployments?sha=abc&environment=prod", "GET /repos/{owner}/{repo}/deployments"},
		{"GET", "/repos/octo/app/deployments/55/statuses", "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses"},
		{"GET", "/repos/octo/app/issues/1/comments?per_page=100", "GET /repos/{owner}/{repo}/issues/{issue_number}/comments"},
		{"POST", "/repos/octo/app/deployments/55/statuses", "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses"},
		{"POST", "/repos/octo/app/issues/1/comments", "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"},
		{"POST", "/repos/octo/app/issues/comments/99/reactions", "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"},
		{"POST", "/repos/octo/app/actions/workflows/deploy.yml/dispatches", "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"},
		{"GET", "/repos/octo/app/actions/workflows/deploy.yml/runs?branch=main&event=workflow_dispatch", "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"},
		{"GET", "/repos/octo/app/actions/runs/77", "GET /repos/{owner}/{repo}/actions/runs/{run_id}"},
		{"POST", "/repos/octo/app/actions/runs/77/cancel", "POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel"},
		{"GET", "/repos/o%2Fdd/app", "GET /repos/{owner}/{repo}"},

		// Not Railyard's calls, or not as written: never their path.
		{"DELETE", "/repos/octo/app", Other},
		{"GET", "/repos/octo/app/branches/main/protection", "GET /repos/{owner}/{repo}/branches/{branch}"}, // a branch may hold slashes
		{"GET", "/repos/octo/app/check-runs/1234/annotations", Other},
		{"POST", "/repos/octo/app/branches/main/rename", Other},
		{"GET", "/repos/octo/../app", Other},
		{"GET", "/repos/octo//app", "GET /repos/{owner}/{repo}"}, // as its clean form
		{"GET", "/", Other},
	}
	rt, err := NewRouter("https://api.github.com/")
	if err != nil {
		t.Fatal(err)
	}
	ghes, err := NewRouter("https://ghe.example.com/api/v3/")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := rt.Route(httptest.NewRequest(c.method, "https://api.github.com"+c.path, nil)); got != c.want {
			t.Errorf("%s %s: route %q, want %q", c.method, c.path, got, c.want)
		}
		if got := ghes.Route(httptest.NewRequest(c.method, "https://ghe.example.com/api/v3"+c.path, nil)); got != c.want {
			t.Errorf("GitHub Enterprise Server: %s /api/v3%s: route %q, want %q", c.method, c.path, got, c.want)
		}
	}
	// On GitHub Enterprise Server the API lives under /api/v3 only.
	if got := ghes.Route(httptest.NewRequest("GET", "https://ghe.example.com/repos/octo/app", nil)); got != Other {
		t.Errorf("GitHub Enterprise Server without /api/v3: route %q, want %q", got, Other)
	}
}

// TestTransport: requests are counted and timed by route and status; the
// rate-limit gauge shows the lowest count left in any open window.
func TestTransport(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	type answer struct {
		code      int
		remaining int
		reset     time.Time
		resource  string
	}
	answers := map[string]answer{
		"/repos/a/one":         {200, 4000, now.Add(30 * time.Minute), "core"},
		"/repos/b/two":         {200, 120, now.Add(10 * time.Minute), "core"}, // another installation, nearly out
		"/repos/b/two/pulls/1": {404, 119, now.Add(10 * time.Minute), "core"},
		"/repos/c/old":         {200, 3, now.Add(-time.Minute), "core"}, // a window that has ended
		"/repos/d/made-up":     {200, 7, now.Add(time.Hour), "made-up-resource"},
	}
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.Header().Set("X-RateLimit-Remaining", fmt.Sprint(a.remaining))
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(a.reset.Unix()))
		w.Header().Set("X-RateLimit-Resource", a.resource)
		w.WriteHeader(a.code)
	}))
	defer gh.Close()

	m, err := New(gh.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	m.limits.now = func() time.Time { return now }
	client := &http.Client{Transport: m.Transport(http.DefaultTransport)}
	for _, path := range []string{"/repos/a/one", "/repos/b/two", "/repos/b/two", "/repos/b/two/pulls/1", "/repos/c/old", "/repos/d/made-up"} {
		resp, err := client.Get(gh.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A request that gets no answer is counted as such, and notes no limit.
	if _, err := (&http.Client{Transport: m.Transport(failing{})}).Get(gh.URL + "/repos/a/one"); err == nil {
		t.Fatal("a failing transport answered")
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	want := `
# HELP railyard_github_requests_total Requests to GitHub's REST API by route and HTTP status ("none": no answer).
# TYPE railyard_github_requests_total counter
railyard_github_requests_total{code="200",route="GET /repos/{owner}/{repo}"} 5
railyard_github_requests_total{code="none",route="GET /repos/{owner}/{repo}"} 1
railyard_github_requests_total{code="404",route="GET /repos/{owner}/{repo}/pulls/{pull_number}"} 1
# HELP railyard_github_rate_limit_remaining The fewest requests left to any installation (or the App) in its current rate-limit window, by GitHub's rate-limit resource.
# TYPE railyard_github_rate_limit_remaining gauge
railyard_github_rate_limit_remaining{resource="core"} 119
railyard_github_rate_limit_remaining{resource="other"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "railyard_github_requests_total", "railyard_github_rate_limit_remaining"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("%d duration series, want 2 (one per route)", n)
	}

	// When the windows end, the gauge has nothing to say.
	m.limits.now = func() time.Time { return now.Add(2 * time.Hour) }
	if n := testutil.CollectAndCount(m, "railyard_github_rate_limit_remaining"); n != 0 {
		t.Errorf("%d rate-limit series after every window ended, want 0", n)
	}
}

type failing struct{}

func (failing) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("connection refused")
}
