package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/logtest"
	"github.com/railyard/railyard/server"
)

// TestStatusPageAuth configures the status pages as an operator does, through
// the environment, and checks who the wired server lets in.
func TestStatusPageAuth(t *testing.T) {
	t.Parallel()
	const password = "status-password-for-the-test"
	cases := []struct {
		name       string
		env        map[string]string
		user, pass string // basic auth sent; "" sends none
		wantStatus int
		wantWarn   bool // the start-up warning that the pages are public
	}{
		{name: "on, no credentials sent", env: map[string]string{"RAILYARD_STATUS_PAGE": "on", "RAILYARD_STATUS_USER": "ops", "RAILYARD_STATUS_PASSWORD": password},
			wantStatus: http.StatusUnauthorized},
		{name: "on, wrong password", env: map[string]string{"RAILYARD_STATUS_PAGE": "on", "RAILYARD_STATUS_USER": "ops", "RAILYARD_STATUS_PASSWORD": password},
			user: "ops", pass: password + "x", wantStatus: http.StatusUnauthorized},
		{name: "on, right credentials reach the page", env: map[string]string{"RAILYARD_STATUS_PAGE": "on", "RAILYARD_STATUS_USER": "ops", "RAILYARD_STATUS_PASSWORD": password},
			user: "ops", pass: password, wantStatus: http.StatusNotFound}, // the repository is unknown: past the guard
		{name: "public", env: map[string]string{"RAILYARD_STATUS_PAGE": "public"},
			wantStatus: http.StatusNotFound, wantWarn: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gh := githubtest.New(t)
			vars := map[string]string{
				"GITHUB_V3_API_URL":         gh.URL,
				"GITHUB_APP_INTEGRATION_ID": "1",
				"GITHUB_APP_WEBHOOK_SECRET": secret,
				"GITHUB_APP_PRIVATE_KEY":    string(gh.PrivateKeyPEM()),
				"RAILYARD_WORKDIR":          t.TempDir(),
				// No step runs; the temp dir is closed to the step user.
				"RAILYARD_STEP_ISOLATION": "off",
			}
			for k, v := range c.env {
				vars[k] = v
			}
			env, err := config.LoadEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, "")
			if err != nil {
				t.Fatalf("LoadEnv: %v", err)
			}
			var logs logtest.Buffer
			srv, err := server.New(t.Context(), env, zerolog.New(&logs), server.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()

			for _, path := range []string{"/status/" + repoName, "/api/status/" + repoName} {
				req := httptest.NewRequest("GET", path, nil)
				if c.user != "" {
					req.SetBasicAuth(c.user, c.pass)
				}
				rec := httptest.NewRecorder()
				srv.Handler().ServeHTTP(rec, req)
				if rec.Code != c.wantStatus {
					t.Errorf("GET %s: status %d, want %d", path, rec.Code, c.wantStatus)
				}
				if c.wantStatus == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("GET %s: WWW-Authenticate %q, want a Basic challenge", path, rec.Header().Get("WWW-Authenticate"))
				}
			}
			warned := strings.Contains(logs.String(), "RAILYARD_STATUS_PAGE=public")
			if warned != c.wantWarn {
				t.Errorf("start-up warning about public status pages logged: %t, want %t; logs:\n%s", warned, c.wantWarn, logs.String())
			}
			if strings.Contains(logs.String(), password) {
				t.Error("the logs show the status password")
			}
		})
	}
}
