package transient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"
	"github.com/redis/go-redis/v9"
)

func ghError(code int, header http.Header) error {
	return &github.ErrorResponse{Response: &http.Response{StatusCode: code, Header: header}, Message: http.StatusText(code)}
}

func TestIs(t *testing.T) {
	limited := http.Header{"X-Ratelimit-Remaining": {"0"}}
	for _, c := range []struct {
		name      string
		err       error
		transient bool
		describe  string
	}{
		{"no error", nil, false, ""},
		{"502 from GitHub", ghError(502, nil), true, "502"},
		{"503 wrapped", fmt.Errorf("get .github/railyard.yml at abc: %w", ghError(503, nil)), true, "503"},
		{"401 after a token rotation", ghError(401, nil), true, "401"},
		{"429", ghError(429, nil), true, "rate limited"},
		{"403 rate limit by headers", ghError(403, limited), true, "rate limited"},
		{"403 secondary limit", ghError(403, http.Header{"Retry-After": {"60"}}), true, "rate limited"},
		{"go-github's rate limit error", &github.RateLimitError{Message: "API rate limit exceeded"}, true, "rate limited"},
		{"go-github's secondary limit error", &github.AbuseRateLimitError{Message: "secondary rate limit"}, true, "rate limited"},
		{"403 refusal", ghError(403, nil), false, ""},
		{"404 of the revision", ghError(404, nil), false, ""},
		{"422", ghError(422, nil), false, ""},
		{"installation token 502", &url.Error{Op: "Get", URL: "x", Err: &ghinstallation.HTTPError{Message: "received non 2xx response status", Response: &http.Response{StatusCode: 502}}}, true, "502"},
		{"installation token 404", &ghinstallation.HTTPError{Message: "received non 2xx response status", Response: &http.Response{StatusCode: 404}}, false, ""},
		{"download 502", fmt.Errorf("download archive: %w", &StatusError{Code: 502}), true, "502"},
		{"download 404", fmt.Errorf("download archive: %w", &StatusError{Code: 404}), false, ""},
		{"download 403 refusal", &StatusError{Code: 403, Header: http.Header{}}, false, ""},
		{"connection reset", &url.Error{Op: "Get", URL: "x", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}, true, "connection failed"},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true, "connection failed"},
		{"timeout", &url.Error{Op: "Get", URL: "x", Err: context.DeadlineExceeded}, true, "timed out"},
		{"body cut short", fmt.Errorf("unpack: %w", io.ErrUnexpectedEOF), true, "connection failed"},
		{"redis pool timeout", redis.ErrPoolTimeout, true, "connection failed"},
		{"cancelled", fmt.Errorf("download: %w", context.Canceled), false, ""},
		{"hostile archive", errors.New(`unpack: "../etc/passwd" leads outside the work directory`), false, ""},
		{"a plain error", errors.New("broken pipeline file: 2 problems"), false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Is(c.err); got != c.transient {
				t.Errorf("Is(%v) = %v, want %v", c.err, got, c.transient)
			}
			if c.transient {
				if got := Describe(c.err); got != c.describe {
					t.Errorf("Describe(%v) = %q, want %q", c.err, got, c.describe)
				}
			}
		})
	}
}
