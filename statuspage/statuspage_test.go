package statuspage

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/htmltest"
)

// expand fills $r0…$r3 and $web into an expected document.
var expand = strings.NewReplacer("$r0", r0, "$r1", r1, "$r2", r2, "$r3", r3, "$web", web).Replace

func TestJSON(t *testing.T) {
	tests := []struct {
		name  string
		src   *fakeSource
		want  string                                 // whole document, when given
		check func(t *testing.T, doc map[string]any) // further checks
	}{
		{
			name: "idle pipeline",
			src:  idle(),
			want: `{"repository": "octo/app", "branch": "main", "stopped": null, "patch": null,
				"stages": [
					{"name": "build", "state": "idle", "blocked": false, "blocked_by": "", "current": "", "waiting": null, "check_run_url": ""},
					{"name": "prod", "state": "idle", "blocked": false, "blocked_by": "", "current": "", "waiting": null, "check_run_url": ""}],
				"audit": [], "github_delays": []}`,
		},
		{
			name: "running stage with a waiting revision",
			src:  running(),
			want: `{"repository": "octo/app", "branch": "main", "stopped": null, "patch": null,
				"stages": [
					{"name": "build", "state": "succeeded", "blocked": false, "blocked_by": "", "current": "$r2", "waiting": null,
					 "check_run_url": "$webocto/app/runs/11"},
					{"name": "staging", "state": "in_progress", "blocked": false, "blocked_by": "", "current": "$r0",
					 "waiting": {"sha": "$r2", "reason": "waiting for staging to finish 1111111", "operation": "promote"},
					 "check_run_url": "$webocto/app/runs/12"},
					{"name": "prod", "state": "idle", "blocked": false, "blocked_by": "", "current": "$r0", "waiting": null, "check_run_url": ""}],
				"audit": [
					{"at": "2026-11-21T10:02:00Z", "actor": "carol", "operation": "push", "stage": "build", "from": "$r1", "to": "$r2", "reason": ""},
					{"at": "2026-11-21T10:01:00Z", "actor": "carol", "operation": "push", "stage": "build", "from": "$r0", "to": "$r1", "reason": ""}], "github_delays": []}`,
		},
		{
			name: "stopped, patch mode and a blocked stage",
			src:  halted(),
			want: `{"repository": "octo/app", "branch": "main",
				"stopped": {"actor": "alice", "reason": "<script>alert(\"x\")</script> db on fire", "at": "2026-11-21T10:00:00Z"},
				"patch": {"stage": "prod", "sha": "$r3", "actor": "bob", "reason": "hotfix for login", "at": "2026-11-21T10:05:00Z"},
				"stages": [
					{"name": "build", "state": "succeeded", "blocked": false, "blocked_by": "", "current": "$r2", "waiting": null, "check_run_url": ""},
					{"name": "staging", "state": "rolled_back", "blocked": true, "blocked_by": "rollback by @carol", "current": "$r1",
					 "waiting": {"sha": "$r2", "reason": "held: patch mode (prod at 3333333 by @bob)", "operation": "promote"},
					 "check_run_url": ""},
					{"name": "prod", "state": "in_progress", "blocked": false, "blocked_by": "", "current": "$r1", "waiting": null,
					 "check_run_url": "$webocto/app/runs/30"}],
				"audit": [
					{"at": "2026-11-21T10:05:00Z", "actor": "bob", "operation": "patch", "stage": "prod", "from": "$r1", "to": "$r3", "reason": "hotfix for login"},
					{"at": "2026-11-21T10:00:00Z", "actor": "alice", "operation": "stop", "stage": "", "from": "", "to": "", "reason": "<script>alert(\"x\")</script> db on fire"},
					{"at": "2026-11-21T09:50:00Z", "actor": "carol", "operation": "rollback", "stage": "staging", "from": "$r2", "to": "$r1", "reason": "bad migration"}], "github_delays": []}`,
		},
		{
			name: "audit of 60 entries shows the newest 50",
			src:  busy(),
			check: func(t *testing.T, doc map[string]any) {
				audit := doc["audit"].([]any)
				if len(audit) != 50 {
					t.Fatalf("audit has %d entries, want 50", len(audit))
				}
				for i, a := range audit {
					// Newest first: push 59 at 10:59 down to push 10 at 10:10.
					n := 59 - i
					want := map[string]any{"at": t0.Add(time.Duration(n) * time.Minute).Format(time.RFC3339), "actor": "dave",
						"operation": "push", "stage": "build", "from": "", "to": r1, "reason": fmt.Sprintf("push %d", n)}
					if !reflect.DeepEqual(a, want) {
						t.Fatalf("audit[%d] = %v, want %v", i, a, want)
					}
				}
			},
		},
		{
			name: "GitHub asked to wait",
			src:  throttled(),
			check: func(t *testing.T, doc map[string]any) {
				want := []any{map[string]any{"class": "status", "reason": "retry_after", "since": "2026-11-21T10:02:00Z", "until": "2026-11-21T10:05:00Z",
					"message": "GitHub status writes (check runs, deployments) delayed since 10:02 UTC: GitHub asked to wait until 10:05 UTC (secondary rate limit)"}}
				if !reflect.DeepEqual(doc["github_delays"], want) {
					t.Errorf("github_delays = %v, want %v", doc["github_delays"], want)
				}
			},
		},
		{
			name: "check run link lookup fails",
			src:  func() *fakeSource { f := running(); f.linkErr = errors.New("store hiccup"); return f }(),
			check: func(t *testing.T, doc map[string]any) {
				for _, s := range doc["stages"].([]any) {
					if u := s.(map[string]any)["check_run_url"]; u != "" {
						t.Errorf("check_run_url = %q after a failed lookup, want empty", u)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, New(tt.src, Options{WebURL: web}), http.MethodGet, "/api/status/octo/app", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
			}
			for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"} {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("decode %s: %v", rec.Body, err)
			}
			checkShape(t, doc)
			if tt.want != "" {
				var want map[string]any
				if err := json.Unmarshal([]byte(expand(tt.want)), &want); err != nil {
					t.Fatalf("bad expectation: %v", err)
				}
				if !reflect.DeepEqual(doc, want) {
					got, _ := json.MarshalIndent(doc, "", "  ")
					exp, _ := json.MarshalIndent(want, "", "  ")
					t.Errorf("document:\n%s\nwant:\n%s", got, exp)
				}
			}
			if tt.check != nil {
				tt.check(t, doc)
			}
		})
	}
}

// checkShape holds a status document to docs/reference.md#status-pages: the
// keys of every object, which may be null, and RFC 3339 times.
func checkShape(t *testing.T, doc map[string]any) {
	t.Helper()
	keys := func(where string, v any, want ...string) map[string]any {
		t.Helper()
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s is %T, want an object", where, v)
			return nil
		}
		if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s keys = %v, want %v", where, got, want)
		}
		if at, ok := m["at"]; ok {
			if s, _ := at.(string); s == "" || func() bool { _, err := time.Parse(time.RFC3339, s); return err != nil }() {
				t.Errorf("%s.at = %v, want an RFC 3339 time", where, at)
			}
		}
		return m
	}
	keys("document", doc, "repository", "branch", "stopped", "patch", "stages", "audit", "github_delays")
	delays, ok := doc["github_delays"].([]any)
	if !ok {
		t.Errorf("github_delays is %T, want an array", doc["github_delays"])
	}
	for i, d := range delays {
		m := keys(fmt.Sprintf("github_delays[%d]", i), d, "class", "reason", "since", "until", "message")
		for _, k := range []string{"since", "until"} {
			if s, _ := m[k].(string); func() bool { _, err := time.Parse(time.RFC3339, s); return err != nil }() {
				t.Errorf("github_delays[%d].%s = %v, want an RFC 3339 time", i, k, m[k])
			}
		}
	}
	if doc["stopped"] != nil {
		keys("stopped", doc["stopped"], "actor", "reason", "at")
	}
	if doc["patch"] != nil {
		keys("patch", doc["patch"], "stage", "sha", "actor", "reason", "at")
	}
	stages, ok := doc["stages"].([]any)
	if !ok {
		t.Errorf("stages is %T, want an array", doc["stages"])
	}
	for i, s := range stages {
		m := keys(fmt.Sprintf("stages[%d]", i), s, "name", "state", "blocked", "blocked_by", "current", "waiting", "check_run_url")
		if m != nil && m["waiting"] != nil {
			keys(fmt.Sprintf("stages[%d].waiting", i), m["waiting"], "sha", "reason", "operation")
		}
	}
	audit, ok := doc["audit"].([]any)
	if !ok || len(audit) > 50 {
		t.Errorf("audit = %T of %d entries, want an array of at most 50", doc["audit"], len(audit))
	}
	for i, a := range audit {
		keys(fmt.Sprintf("audit[%d]", i), a, "at", "actor", "operation", "stage", "from", "to", "reason")
	}
}

func TestHTML(t *testing.T) {
	commit := func(sha string) []string { return []string{web + "octo/app/commit/" + sha} }
	var busyAudit [][]string
	for n := 59; n >= 10; n-- {
		busyAudit = append(busyAudit, []string{t0.Add(time.Duration(n) * time.Minute).Format("2006-01-02 15:04:05 UTC"),
			"@dave", "push", "build", "", "1111111", fmt.Sprintf("push %d", n)})
	}
	tests := []struct {
		name    string
		src     *fakeSource
		warning string
		banners []string
		stages  [][]string
		audit   [][]string
		links   map[string][]string // link text → targets, for those that must be there
	}{
		{
			name: "idle pipeline",
			src:  idle(),
			stages: [][]string{
				{"build", "idle", "no", "none", "none", "none"},
				{"prod", "idle", "no", "none", "none", "none"},
			},
			audit: [][]string{{"Nothing recorded yet."}},
		},
		{
			name: "running stage with a waiting revision",
			src:  running(),
			stages: [][]string{
				{"build", "succeeded", "no", "2222222", "none", "check run"},
				{"staging", "in progress", "no", "0000000", "2222222 promote: waiting for staging to finish 1111111", "check run"},
				{"prod", "idle", "no", "0000000", "none", "none"},
			},
			audit: [][]string{
				{"2026-11-21 10:02:00 UTC", "@carol", "push", "build", "1111111", "2222222", ""},
				{"2026-11-21 10:01:00 UTC", "@carol", "push", "build", "0000000", "1111111", ""},
			},
			links: map[string][]string{
				"check run": {web + "octo/app/runs/11", web + "octo/app/runs/12"},
				"0000000":   slices.Repeat(commit(r0), 3), // staging, prod, audit
			},
		},
		{
			name: "stopped, patch mode and a blocked stage",
			src:  halted(),
			banners: []string{
				`Pipeline stopped by @alice at 2026-11-21 10:00:00 UTC: <script>alert("x")</script> db on fire`,
				"Patch mode: prod at 3333333 by @bob at 2026-11-21 10:05:00 UTC: hotfix for login",
			},
			stages: [][]string{
				{"build", "succeeded", "no", "2222222", "none", "none"},
				{"staging", "rolled back", "blocked (rollback by @carol)", "1111111", "2222222 promote: held: patch mode (prod at 3333333 by @bob)", "none"},
				{"prod", "in progress", "no", "1111111", "none", "check run"},
			},
			audit: [][]string{
				{"2026-11-21 10:05:00 UTC", "@bob", "patch", "prod", "1111111", "3333333", "hotfix for login"},
				{"2026-11-21 10:00:00 UTC", "@alice", "stop", "", "", "", `<script>alert("x")</script> db on fire`},
				{"2026-11-21 09:50:00 UTC", "@carol", "rollback", "staging", "2222222", "1111111", "bad migration"},
			},
			links: map[string][]string{
				"3333333":   slices.Repeat(commit(r3), 2),
				"check run": {web + "octo/app/runs/30"},
			},
		},
		{
			name:    "warning from the bot",
			src:     idle(),
			warning: "Step isolation is off.",
			banners: []string{"Warning: Step isolation is off."},
			stages: [][]string{
				{"build", "idle", "no", "none", "none", "none"},
				{"prod", "idle", "no", "none", "none", "none"},
			},
			audit: [][]string{{"Nothing recorded yet."}},
		},
		{
			name:    "GitHub asked to wait",
			src:     throttled(),
			banners: []string{"GitHub status writes (check runs, deployments) delayed since 10:02 UTC: GitHub asked to wait until 10:05 UTC (secondary rate limit)"},
			stages: [][]string{
				{"build", "idle", "no", "none", "none", "none"},
				{"prod", "idle", "no", "none", "none", "none"},
			},
			audit: [][]string{{"Nothing recorded yet."}},
		},
		{
			name:   "audit of 60 entries shows the newest 50",
			src:    busy(),
			stages: [][]string{{"build", "idle", "no", "none", "none", "none"}, {"prod", "idle", "no", "none", "none", "none"}},
			audit:  busyAudit,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, New(tt.src, Options{WebURL: web, Warning: tt.warning}), http.MethodGet, "/status/octo/app", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
			}
			for k, v := range map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"} {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			body := rec.Body.String()
			// The page has no script of its own, so any is an injection.
			if strings.Contains(strings.ToLower(body), "<script") {
				t.Errorf("page holds a script element:\n%s", body)
			}
			doc := htmltest.Parse(t, body)
			if got := banners(doc); !slices.Equal(got, tt.banners) {
				t.Errorf("banners = %q, want %q", got, tt.banners)
			}
			if got := rows(doc, "stages"); !reflect.DeepEqual(got, tt.stages) {
				t.Errorf("stages table = %q, want %q", got, tt.stages)
			}
			if got := rows(doc, "audit"); !reflect.DeepEqual(got, tt.audit) {
				t.Errorf("audit table = %q, want %q", got, tt.audit)
			}
			got := links(doc)
			for label, want := range tt.links {
				if !slices.Equal(got[label], want) {
					t.Errorf("links %q go to %q, want %q", label, got[label], want)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, method, path string
		src                *fakeSource
		code               int
		json               bool   // the answer is a JSON error document
		mention            string // the answer says this
		hide               string // and never this
	}{
		{name: "repository never seen", path: "/api/status/octo/nope", src: &fakeSource{}, code: http.StatusNotFound, json: true, mention: "octo/nope"},
		{name: "repository never seen, HTML", path: "/status/octo/nope", src: &fakeSource{}, code: http.StatusNotFound, mention: "octo/nope"},
		{name: "owner with a space", path: "/api/status/bad%20owner/app", src: idle(), code: http.StatusBadRequest, json: true, hide: "bad owner"},
		{name: "repository with markup", path: "/status/octo/%3Cb%3Eapp", src: idle(), code: http.StatusBadRequest, hide: "<b>"},
		{name: "repository ..", path: "/api/status/octo/%2E%2E", src: idle(), code: http.StatusBadRequest, json: true},
		{name: "store unreachable", path: "/api/status/octo/app", src: &fakeSource{err: errors.New("dial redis://:hunter2@db:6379: refused")},
			code: http.StatusInternalServerError, json: true, mention: "unavailable", hide: "hunter2"},
		{name: "store unreachable, HTML", path: "/status/octo/app", src: &fakeSource{err: errors.New("dial redis://:hunter2@db:6379: refused")},
			code: http.StatusInternalServerError, mention: "unavailable", hide: "hunter2"},
		{name: "writes are not served", method: http.MethodPost, path: "/api/status/octo/app", src: idle(), code: http.StatusMethodNotAllowed},
		{name: "not a status path", path: "/status/octo", src: idle(), code: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, New(tt.src, Options{WebURL: web}), cmp.Or(tt.method, http.MethodGet), tt.path, nil)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.code, rec.Body)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			body := rec.Body.String()
			if tt.json {
				var doc map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["error"] == "" || len(doc) != 1 {
					t.Errorf("body %s is not {\"error\": …} (%v)", body, err)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
			}
			if !strings.Contains(body, tt.mention) {
				t.Errorf("body %q does not mention %q", body, tt.mention)
			}
			if tt.hide != "" && strings.Contains(body, tt.hide) {
				t.Errorf("body %q reveals %q", body, tt.hide)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	creds := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	both := Options{WebURL: web, User: "ops", Password: "s3cret"}
	tests := []struct {
		name    string
		opts    Options
		path    string
		prepare func(*http.Request)
		code    int
	}{
		{name: "no credentials", opts: both, path: "/status/octo/app", code: http.StatusUnauthorized},
		{name: "wrong password", opts: both, path: "/status/octo/app", prepare: creds("ops", "s3cre"), code: http.StatusUnauthorized},
		{name: "wrong user", opts: both, path: "/api/status/octo/app", prepare: creds("op", "s3cret"), code: http.StatusUnauthorized},
		{name: "not basic", opts: both, path: "/api/status/octo/app",
			prepare: func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, code: http.StatusUnauthorized},
		{name: "unknown repository is not revealed", opts: both, path: "/api/status/octo/nope", code: http.StatusUnauthorized},
		{name: "right credentials, HTML", opts: both, path: "/status/octo/app", prepare: creds("ops", "s3cret"), code: http.StatusOK},
		{name: "right credentials, JSON", opts: both, path: "/api/status/octo/app", prepare: creds("ops", "s3cret"), code: http.StatusOK},
		{name: "half configured stays closed", opts: Options{User: "ops"}, path: "/status/octo/app", code: http.StatusUnauthorized},
		{name: "no auth configured", opts: Options{}, path: "/status/octo/app", code: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, New(halted(), tt.opts), http.MethodGet, tt.path, tt.prepare)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.code, rec.Body)
			}
			challenge := rec.Header().Get("WWW-Authenticate")
			if tt.code == http.StatusUnauthorized {
				if !strings.HasPrefix(challenge, "Basic ") {
					t.Errorf("WWW-Authenticate = %q, want a Basic challenge", challenge)
				}
				if strings.Contains(rec.Body.String(), "alice") {
					t.Errorf("unauthorised answer shows state: %s", rec.Body)
				}
			} else if !strings.Contains(rec.Body.String(), "alice") {
				t.Errorf("authorised answer does not show the state: %s", rec.Body)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
		})
	}
}
