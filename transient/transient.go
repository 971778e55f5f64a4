// Package transient decides, in one place, whether a failure of GitHub,
// the network or Redis can pass by itself, so that the work that met it is
// tried again later rather than counted as failed. It decides nothing else.
package transient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"
	"github.com/redis/go-redis/v9"
)

// StatusError is an HTTP answer other than the one asked for, from a
// request made without go-github (a tarball download).
type StatusError struct {
	Code   int
	Header http.Header
}

// NewStatusError describes resp, which was not the answer wanted.
func NewStatusError(resp *http.Response) *StatusError {
	return &StatusError{Code: resp.StatusCode, Header: resp.Header}
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
}

// Is reports whether err can pass if the work is tried again: GitHub's 5xx
// answers, rate limits (429, or 403 with the rate-limit headers), a 401
// (an installation token that was just rotated), timeouts, refused or reset
// connections, a body cut short, and Redis going away. Everything else —
// 404, a 403 that is a refusal, a hostile archive, a broken file — is for
// good, and so is a cancelled context: whoever cancelled it knows why.
func Is(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if _, ok := errors.AsType[*github.RateLimitError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*github.AbuseRateLimitError](err); ok {
		return true
	}
	if code, h, ok := status(err); ok {
		return Status(code, h)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	if ne, ok := errors.AsType[net.Error](err); ok {
		return ne.Timeout() || isNetOp(err)
	}
	return false
}

// Status reports whether an HTTP answer with this code and these headers
// can pass.
func Status(code int, h http.Header) bool {
	switch {
	case code >= 500, code == http.StatusTooManyRequests, code == http.StatusUnauthorized:
		return true
	case code == http.StatusForbidden:
		return h.Get("X-RateLimit-Remaining") == "0" || h.Get("Retry-After") != ""
	}
	return false
}

// Describe says briefly what went wrong, for people waiting on the work:
// "502", "rate limited", "timed out", "connection failed".
func Describe(err error) string {
	if _, ok := errors.AsType[*github.RateLimitError](err); ok {
		return "rate limited"
	}
	if _, ok := errors.AsType[*github.AbuseRateLimitError](err); ok {
		return "rate limited"
	}
	if code, h, ok := status(err); ok {
		if code == http.StatusTooManyRequests || code == http.StatusForbidden && Status(code, h) {
			return "rate limited"
		}
		return fmt.Sprint(code)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return "connection failed"
}

// status finds the HTTP answer behind err, if there is one.
func status(err error) (int, http.Header, bool) {
	if se, ok := errors.AsType[*StatusError](err); ok {
		return se.Code, se.Header, true
	}
	if er, ok := errors.AsType[*github.ErrorResponse](err); ok && er.Response != nil {
		return er.Response.StatusCode, er.Response.Header, true
	}
	// The installation token request: a 5xx there fails every call.
	if he, ok := errors.AsType[*ghinstallation.HTTPError](err); ok && he.Response != nil {
		return he.Response.StatusCode, he.Response.Header, true
	}
	return 0, nil, false
}

// isNetOp reports whether err is a failed dial, read or write: the network
// or the server went away.
func isNetOp(err error) bool {
	_, ok := errors.AsType[*net.OpError](err)
	return ok
}
