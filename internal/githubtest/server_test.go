package githubtest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/railyard/railyard/internal/awaittest"
)

func TestRequestsGitHubWouldRejectAreReported(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantReport               []string
	}{
		{"invented endpoint", "POST", "/repos/octo/app/not-an-endpoint", `{}`, 404,
			[]string{"POST /repos/octo/app/not-an-endpoint", "no such operation"}},
		{"GitHub endpoint the fake does not serve", "GET", "/repos/octo/app/pulls", ``, 404,
			[]string{"GET /repos/octo/app/pulls", "does not serve"}},
		{"endpoint whose schema is kept but which the fake does not serve", "GET", "/repos/octo/app/branches/main/protection/required_status_checks", ``, 404,
			[]string{"GET /repos/octo/app/branches/main/protection/required_status_checks", "does not serve"}},
		{"wrong method", "DELETE", "/repos/octo/app/check-runs", ``, 404,
			[]string{"DELETE /repos/octo/app/check-runs"}},
		{"check run without name", "POST", "/repos/octo/app/check-runs", `{"head_sha":"` + strings.Repeat("a", 40) + `"}`, 422,
			[]string{"POST /repos/octo/app/check-runs", "checks/create", `"name"`}},
		{"deployment status with a bogus state", "POST", "/repos/octo/app/deployments/1/statuses", `{"state":"bogus"}`, 422,
			[]string{"repos/create-deployment-status", "/state", "allowed values"}},
		{"check run action label too long", "POST", "/repos/octo/app/check-runs",
			`{"name":"n","head_sha":"x","actions":[{"label":"` + strings.Repeat("x", 21) + `","description":"d","identifier":"i"}]}`, 422,
			[]string{"/actions/0/label"}},
		{"query parameter of the wrong type", "GET", "/repos/octo/app/deployments?per_page=many", ``, 422,
			[]string{"per_page"}},
		{"workflow runs filtered by a malformed date", "GET", "/repos/octo/app/actions/runs?created=yesterday", ``, 422,
			[]string{"created"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			s := New(rec)
			s.AddRepo("octo/app", "main")
			req, err := http.NewRequestWithContext(t.Context(), tt.method, strings.TrimSuffix(s.URL, "/")+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			reports := rec.reported()
			if len(reports) != 1 {
				t.Fatalf("reported %d problems, want 1: %q", len(reports), reports)
			}
			for _, want := range tt.wantReport {
				if !strings.Contains(reports[0], want) {
					t.Errorf("report %q does not mention %q", reports[0], want)
				}
			}
			if got := s.Requests(); len(got) != 1 || got[0].Path != strings.Split(tt.path, "?")[0] || string(got[0].Body) != tt.body {
				t.Errorf("recorded %+v, want the one request", got)
			}
		})
	}
}

func TestValidRequestsAreNotReported(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := New(rec)
	r := s.AddRepo("octo/app", "main")
	sha := r.Commit("main", map[string]File{"a": {Content: "a"}})
	gh := s.InstallationClient(t, DefaultInstallationID)
	ctx := t.Context()
	if _, _, err := gh.Checks.CreateCheckRun(ctx, "octo", "app", github.CreateCheckRunOptions{Name: "railyard/build", HeadSHA: sha}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Actions.ListRepositoryWorkflowRuns(ctx, "octo", "app", &github.ListWorkflowRunsOptions{Created: ">=2026-01-02T03:04:05Z", HeadSHA: sha}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Actions.ListRepositoryWorkflowRuns(ctx, "octo", "app", &github.ListWorkflowRunsOptions{Created: "2026-01-01..2026-02-01"}); err != nil {
		t.Fatal(err)
	}
	if got := rec.reported(); len(got) != 0 {
		t.Errorf("valid requests reported: %q", got)
	}
}

func TestRequestsAreRecorded(t *testing.T) {
	st := newSetup(t)
	before := time.Now()
	ctx := t.Context()
	if _, _, err := st.gh.Issues.CreateComment(ctx, "octo", "app", 3, &github.IssueComment{Body: github.String("hi")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.gh.Repositories.ListDeployments(ctx, "octo", "app", &github.DeploymentsListOptions{Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	var got []Request
	for _, r := range st.s.Requests() {
		if !r.At.Before(before) {
			got = append(got, r)
		}
	}
	if len(got) != 3 {
		t.Fatalf("recorded %d requests since the start, want 3: %+v", len(got), got)
	}
	if got[0].OperationID != "apps/create-installation-access-token" || got[0].Path != "/app/installations/1/access_tokens" {
		t.Errorf("first request = %+v, want the installation token", got[0])
	}
	if got[1].Method != "POST" || got[1].Path != "/repos/octo/app/issues/3/comments" || got[1].OperationID != "issues/create-comment" || !strings.Contains(string(got[1].Body), `"hi"`) {
		t.Errorf("second request = %+v", got[1])
	}
	if got[2].OperationID != "repos/list-deployments" || got[2].Query.Get("environment") != "prod" || got[2].At.Before(got[1].At) {
		t.Errorf("third request = %+v", got[2])
	}
	if n := st.s.Count("issues/create-comment"); n != 1 {
		t.Errorf("Count(issues/create-comment) = %d, want 1", n)
	}
	if n := st.s.Count("apps/create-installation-access-token"); n != 1 {
		t.Errorf("Count(apps/create-installation-access-token) = %d, want 1 (the token is cached)", n)
	}
}

func TestFailNext(t *testing.T) {
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	tests := []struct {
		name   string
		status int
		header http.Header
		check  func(t *testing.T, err error)
	}{
		{"bad gateway", 502, nil, func(t *testing.T, err error) {
			if statusOf(err) != 502 || messageOf(err) != "Server Error" {
				t.Errorf("error = %v, want a 502 Server Error", err)
			}
		}},
		// Header keys as callers tend to write them, not canonicalized.
		{"primary rate limit", 403, http.Header{"X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}},
			func(t *testing.T, err error) {
				var rl *github.RateLimitError
				if !errors.As(err, &rl) || !rl.Rate.Reset.Time.Equal(reset) {
					t.Errorf("error = %#v, want a RateLimitError resetting at %v", err, reset)
				}
			}},
		{"secondary rate limit", 403, http.Header{"Retry-After": {"30"}}, func(t *testing.T, err error) {
			var ab *github.AbuseRateLimitError
			if !errors.As(err, &ab) || ab.RetryAfter == nil || *ab.RetryAfter != 30*time.Second {
				t.Errorf("error = %#v, want an AbuseRateLimitError retrying after 30s", err)
			}
		}},
		{"too many requests", 429, http.Header{"Retry-After": {"5"}}, func(t *testing.T, err error) {
			var er *github.ErrorResponse
			if !errors.As(err, &er) || er.Response.StatusCode != 429 || er.Response.Header.Get("Retry-After") != "5" {
				t.Errorf("error = %v, want 429 with Retry-After 5", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newSetup(t)
			ctx := t.Context()
			st.s.FailNext("POST", "/repos/octo/app/check-runs", 2, tt.status, tt.header)
			st.s.FailNext("GET", "/repos/other/", 1, 500, nil) // never matches
			create := func(gh *github.Client) error {
				_, _, err := gh.Checks.CreateCheckRun(ctx, "octo", "app", github.CreateCheckRunOptions{Name: "railyard/build", HeadSHA: st.second})
				return err
			}
			for range 2 {
				// A fresh client each time: go-github refuses locally while it
				// remembers a primary rate limit.
				tt.check(t, create(st.s.InstallationClient(t, DefaultInstallationID)))
			}
			if err := create(st.s.InstallationClient(t, DefaultInstallationID)); err != nil {
				t.Errorf("third request failed: %v", err)
			}
			if n := st.s.Count("checks/create"); n != 3 {
				t.Errorf("Count(checks/create) = %d, want 3: failed requests are recorded", n)
			}
			if got := st.repo.CheckRuns(); len(got) != 1 {
				t.Errorf("%d check runs, want 1: failed requests change nothing", len(got))
			}
		})
	}
}

func TestFailNextAnyMethod(t *testing.T) {
	st := newSetup(t)
	st.s.FailNext("", "/repos/octo/app", 1, 503, nil)
	if _, _, err := st.gh.Repositories.Get(t.Context(), "octo", "app"); statusOf(err) != 503 {
		t.Errorf("first request: error = %v, want 503", err)
	}
	if _, _, err := st.gh.Repositories.Get(t.Context(), "octo", "app"); err != nil {
		t.Errorf("second request: %v", err)
	}
}

func TestHold(t *testing.T) {
	st := newSetup(t)
	release := st.s.Hold("POST", "/repos/octo/app/issues/")
	done := make(chan error, 1)
	go func() {
		_, _, err := st.gh.Issues.CreateComment(t.Context(), "octo", "app", 1, &github.IssueComment{Body: github.String("held")})
		done <- err
	}()
	awaittest.Until(t, 5*time.Second, "the comment request to arrive", func() bool { return st.s.Count("issues/create-comment") == 1 })

	// Other requests pass while one is held.
	if _, _, err := st.gh.Repositories.Get(t.Context(), "octo", "app"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("held request finished before release: %v", err)
	default:
	}
	if got := st.repo.Comments(1); len(got) != 0 {
		t.Errorf("comments before release = %+v, want none", got)
	}
	release()
	release() // idempotent
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := st.repo.Comments(1); len(got) != 1 || got[0].Body != "held" {
		t.Errorf("comments after release = %+v", got)
	}
}

func TestHoldEndsWithTheTest(t *testing.T) {
	done := make(chan error, 1)
	t.Run("inner", func(t *testing.T) {
		st := newSetup(t)
		st.s.Hold("", "/repos/octo/app/check-runs")
		go func() {
			_, _, err := st.gh.Checks.CreateCheckRun(t.Context(), "octo", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: st.second})
			done <- err
		}()
		awaittest.Until(t, 5*time.Second, "the request to arrive", func() bool { return st.s.Count("checks/create") == 1 })
	})
	select {
	case <-done: // the test's end released it; the context may have been cancelled first
	case <-time.After(5 * time.Second):
		t.Fatal("held request still blocked after its test ended")
	}
}

func TestHoldGivesUpWithTheClient(t *testing.T) {
	st := newSetup(t)
	st.s.Hold("GET", "/repos/octo/app")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := st.gh.Repositories.Get(ctx, "octo", "app"); err == nil {
		t.Fatal("held request succeeded")
	}
}

func TestAuthentication(t *testing.T) {
	st := newSetup(t)
	other := st.s.AddRepo("elsewhere/lib", "main")
	other.SetInstallation(2)
	other.Commit("main", map[string]File{"x": {Content: "x"}})
	ctx := t.Context()
	anonymous := github.NewClient(nil)
	anonymous.BaseURL, _ = url.Parse(st.s.URL)
	tests := []struct {
		name       string
		client     *github.Client
		repo       string
		wantStatus int
	}{
		{"installation token on its repository", st.gh, "octo/app", 0},
		{"installation token on another installation's repository", st.gh, "elsewhere/lib", 404},
		{"second installation on its repository", st.s.InstallationClient(t, 2), "elsewhere/lib", 0},
		{"no credentials", anonymous, "octo/app", 401},
		{"unknown repository", st.gh, "octo/nope", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner, name, _ := strings.Cut(tt.repo, "/")
			_, _, err := tt.client.Repositories.Get(ctx, owner, name)
			if statusOf(err) != tt.wantStatus {
				t.Errorf("error = %v, want status %d", err, tt.wantStatus)
			}
		})
	}
	if _, _, err := st.s.InstallationClient(t, 99).Repositories.Get(ctx, "octo", "app"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown installation: error = %v, want its token request to fail with 404", err)
	}
}
