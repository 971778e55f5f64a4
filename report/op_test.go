package report

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v62/github"
)

func TestCut(t *testing.T) {
	var log strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&log, "step %04d: ✓ compiled package número %d\n", i, i)
	}
	log.WriteString("FAILED: the last line")
	tests := []struct {
		name      string
		got       string
		max       int
		wantStart string
		wantEnd   string
	}{
		{"short text unchanged", cutStart("ok\n", maxOutput), 3, "ok\n", "ok\n"},
		{"long text keeps the tail", cutStart(log.String(), maxOutput), maxOutput, "… (earlier output cut", "FAILED: the last line"},
		{"long summary keeps the head", cutEnd(log.String(), maxOutput), maxOutput, "step 0000: ✓", "(cut to fit GitHub's limit)"},
		{"description", cutRunes(strings.Repeat("é", 200), maxDescription), maxDescription, "éé", "é…"},
		{"description at the limit", cutRunes(strings.Repeat("é", 140), maxDescription), maxDescription, "éé", "éé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !utf8.ValidString(tt.got) {
				t.Fatal("cut inside a character")
			}
			if n := utf8.RuneCountInString(tt.got); n > tt.max {
				t.Errorf("%d characters, want at most %d", n, tt.max)
			}
			if !strings.HasPrefix(tt.got, tt.wantStart) || !strings.HasSuffix(tt.got, tt.wantEnd) {
				t.Errorf("got %.40q…%q, want %q…%q", tt.got, tt.got[max(0, len(tt.got)-40):], tt.wantStart, tt.wantEnd)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	buttons := []Button{{Label: "Cancel", Description: "Cancel the job", Identifier: "cancel"}}
	tests := []struct {
		name    string
		updates []CheckRun
		want    CheckRun
	}{
		{
			name: "later fields win, unset ones are kept",
			updates: []CheckRun{
				{Status: "in_progress", Title: "Deploying", Text: "line 1", StartedAt: t0, Buttons: buttons},
				{Text: "line 2"},
				{Status: "completed", Conclusion: "success", Title: "Deployed", CompletedAt: t0.Add(time.Minute)},
			},
			want: CheckRun{Status: "completed", Conclusion: "success", Title: "Deployed", Text: "line 2",
				StartedAt: t0, CompletedAt: t0.Add(time.Minute), Buttons: buttons},
		},
		{
			name:    "an empty action list clears the buttons",
			updates: []CheckRun{{Buttons: buttons}, {Buttons: []Button{}}},
			want:    CheckRun{Buttons: []Button{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.updates[0]
			for _, u := range tt.updates[1:] {
				got.merge(u)
			}
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestSanitizeRedactsEveryField(t *testing.T) {
	r := New(nil, nil, Options{Secrets: []string{"", "hunter2", "hunter2-long"}})
	payload := map[string]any{"reason": "key hunter2-long", "nested": []any{map[string]any{"token": "hunter2"}}, "n": 1}
	ops := []*op{
		{Kind: kindCheckRun, CheckRun: &CheckRun{Name: "x hunter2", Title: "hunter2", Summary: "s hunter2", Text: "t hunter2",
			DetailsURL: "https://x/?t=hunter2", ExternalID: "hunter2", Buttons: []Button{{Label: "hunter2", Description: "hunter2", Identifier: "hunter2"}}}},
		{Kind: kindDeployment, Deployment: &Deployment{Ref: "hunter2", Environment: "hunter2", Task: "hunter2", Description: "hunter2", Payload: payload}},
		{Kind: kindStatus, Status: &DeploymentStatus{State: "success", Description: "by hunter2", Environment: "hunter2"}},
		{Kind: kindComment, Body: "hunter2 hunter2-long"},
		{Kind: kindReaction, Content: "hunter2"},
	}
	for _, o := range ops {
		if err := r.sanitize(o); err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprintf("%+v %+v %+v %+v %s %s", o.CheckRun, o.Deployment, o.Status, o.Deployment, o.Body, o.Content)
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "***") {
			t.Errorf("%s: not redacted: %s", o.Kind, s)
		}
	}
	if payload["reason"] != "key hunter2-long" {
		t.Error("the caller's payload was changed")
	}
}

func TestRateLimited(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	resp := func(status int, header ...string) *http.Response {
		h := http.Header{}
		for i := 0; i < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: status, Header: h, Request: &http.Request{Method: "POST", URL: &url.URL{}}}
	}
	reset := now.Add(time.Hour)
	tests := []struct {
		name string
		err  error
		want time.Time // zero: not a rate limit
	}{
		{"429 Retry-After", &github.ErrorResponse{Response: resp(429, "Retry-After", "120")}, now.Add(2 * time.Minute)},
		{"403 rate limit reset", &github.RateLimitError{Response: resp(403, "X-RateLimit-Remaining", "0",
			"X-RateLimit-Reset", fmt.Sprint(reset.Unix()))}, reset},
		{"go-github's own refusal", &github.RateLimitError{Rate: github.Rate{Reset: github.Timestamp{Time: reset}}, Response: resp(403)}, reset},
		{"secondary limit without time", &github.AbuseRateLimitError{Response: resp(403)}, now.Add(time.Minute)},
		{"secondary limit Retry-After", fmt.Errorf("wrapped: %w", &github.AbuseRateLimitError{Response: resp(403, "Retry-After", "30")}), now.Add(30 * time.Second)},
		{"429 without headers", &github.ErrorResponse{Response: resp(429)}, now.Add(time.Minute)},
		{"reset in the past", &github.ErrorResponse{Response: resp(403, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", fmt.Sprint(now.Add(-time.Hour).Unix()))}, now.Add(time.Second)},
		{"403 no permission", &github.ErrorResponse{Response: resp(403)}, time.Time{}},
		{"422", &github.ErrorResponse{Response: resp(422, "Retry-After", "5")}, time.Time{}},
		{"502", &github.ErrorResponse{Response: resp(502)}, time.Time{}},
		{"network", errors.New("connection refused"), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, ok := rateLimited(tt.err, now)
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("got %v %v, want %v", got, ok, tt.want)
			}
		})
	}
}
