package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/logtest"
	"github.com/railyard/railyard/internal/webhooktest"
	"github.com/railyard/railyard/server"
)

// TestAliasBombFailsConfigCheck: a small pipeline file whose aliases stand
// for more nodes than Railyard expands is refused on every path that reads
// it, with a railyard/config check run that says why, and deploys nothing.
func TestAliasBombFailsConfigCheck(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("stages:\n  - name: build\n    steps:\n")
	b.WriteString("      - {name: s0, run: make, env: &env {REGION: eu, TIER: web, LOG: debug, TEAM: core}}\n")
	for i := 1; i <= config.MaxAliasNodes/9+1; i++ {
		fmt.Fprintf(&b, "      - {name: s%d, run: make, env: *env}\n", i)
	}
	h := newHarness(t, b.String())

	sha := h.commitAndPush()
	cr := h.awaitCheckRun("railyard/config", sha, "failure")
	if want := fmt.Sprintf("YAML aliases expand to more than %d nodes", config.MaxAliasNodes); !strings.Contains(cr.Summary, want) {
		t.Errorf("config check run does not say why:\n%s", cr.Summary)
	}
	if reply := h.ask(user, "/promote build").reply; !strings.Contains(reply, "has 1 problems (see the railyard/config check run)") {
		t.Errorf("command on the refused file: reply %q", reply)
	}
	if n := len(h.deployments("build")); n != 0 {
		t.Errorf("the refused file deployed %d times", n)
	}
}

// body is a request body of size zero bytes that counts what the server
// read of it, and can tell when it is first read or stay open until let go.
type body struct {
	size, read int64
	started    chan struct{} // closed at the first Read
	hold       chan struct{} // when not nil, Read waits for it to close, then fails
	once       sync.Once
}

func newBody(size int64) *body { return &body{size: size, started: make(chan struct{})} }

func (b *body) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	if b.hold != nil {
		<-b.hold
		return 0, io.ErrUnexpectedEOF
	}
	if b.read >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-b.read))
	clear(p[:n])
	b.read += int64(n)
	return n, nil
}

// unsigned is a push delivery of body with a wrong signature and the given
// Content-Length (-1: none, sent chunked).
func unsigned(t *testing.T, b io.Reader, contentLength int64) *http.Request {
	req := webhooktest.Request(t, "not the secret", "push", fmt.Sprintf("unsigned-%d", commentIDs.Add(1)), nil)
	req.Body, req.ContentLength = io.NopCloser(b), contentLength
	return req
}

func serve(h *harness, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// TestWebhookBodiesAreBounded: Railyard holds at most its intake budget for
// bodies whose signature it has not checked, reads no body over GitHub's
// 25 MB cap, and keeps taking real deliveries meanwhile.
func TestWebhookBodiesAreBounded(t *testing.T) {
	t.Parallel()
	const budget = 25 << 20
	h := newHarness(t, buildOnly, func(e *config.Env, _ *server.Options) { e.IntakeBudget = budget })
	sha := h.commit()

	h.run(t, "over 25 MiB is 413, unread", func(t *testing.T) {
		b := newBody(budget + 1)
		if rec := serve(h, unsigned(t, b, b.size)); rec.Code != http.StatusRequestEntityTooLarge || b.read != 0 {
			t.Errorf("answered %d after reading %d bytes; want 413 before reading", rec.Code, b.read)
		}
	})
	h.run(t, "over 25 MiB without a length is 413 at 25 MiB", func(t *testing.T) {
		b := newBody(30 << 20)
		if rec := serve(h, unsigned(t, b, -1)); rec.Code != http.StatusRequestEntityTooLarge || b.read > budget+1 {
			t.Errorf("answered %d after reading %d bytes; want 413 by %d", rec.Code, b.read, budget+1)
		}
	})
	h.run(t, "a Content-Length smaller than the body is all that is read", func(t *testing.T) {
		b := newBody(1 << 20)
		if rec := serve(h, unsigned(t, b, 100)); rec.Code != http.StatusUnauthorized || b.read != 100 {
			t.Errorf("answered %d after reading %d bytes; want 401 after 100", rec.Code, b.read)
		}
	})
	h.run(t, "a body cut short is 400", func(t *testing.T) {
		if rec := serve(h, unsigned(t, newBody(10), 100)); rec.Code != http.StatusBadRequest {
			t.Errorf("answered %d, want 400", rec.Code)
		}
	})
	h.run(t, "past the budget is 503, and real deliveries still come in", func(t *testing.T) {
		// 20 MiB of the 25 stay held by a sender that stalls.
		slow := newBody(20 << 20)
		slow.hold = make(chan struct{})
		done := make(chan int)
		go func() { done <- serve(h, unsigned(t, slow, slow.size)).Code }()
		<-slow.started

		rec := serve(h, unsigned(t, newBody(10<<20), 10<<20))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("answered %d with Retry-After %q; want 503 with one", rec.Code, rec.Header().Get("Retry-After"))
		}
		if rec := serve(h, unsigned(t, newBody(10<<20), -1)); rec.Code != http.StatusServiceUnavailable {
			t.Errorf("without a length: answered %d, want 503", rec.Code)
		}
		h.push(sha)
		h.awaitStage("build", engine.Succeeded, sha)

		close(slow.hold)
		if code := <-done; code != http.StatusBadRequest {
			t.Errorf("the stalled sender got %d, want 400", code)
		}
	})
	h.run(t, "every refusal gave its budget back", func(t *testing.T) {
		for _, length := range []int64{budget, -1} {
			if rec := serve(h, unsigned(t, newBody(budget), length)); rec.Code != http.StatusUnauthorized {
				t.Errorf("a %d-byte unsigned body (Content-Length %d): %d, want 401", budget, length, rec.Code)
			}
		}
	})
	h.run(t, "a signed delivery without a length is read as it comes", func(t *testing.T) {
		next := h.commit()
		req := webhooktest.Request(t, secret, "push", "chunked", pushBody(t, next))
		req.ContentLength = -1
		if rec := serve(h, req); rec.Code != http.StatusAccepted {
			t.Fatalf("answered %d, want 202", rec.Code)
		}
		h.awaitStage("build", engine.Succeeded, next)
	})
	// Nothing refused was queued: the two pushes are the only deploys.
	if marks := h.marks(); len(marks) != 2 {
		t.Errorf("build ran %d times, want twice: %v", len(marks), marks)
	}
}

// TestRefusedBodiesLogOneLine: each refused body is one warning under its
// delivery id saying why.
func TestRefusedBodiesLogOneLine(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly, func(e *config.Env, _ *server.Options) { e.IntakeBudget = 25 << 20 })
	var logs logtest.Buffer
	srv := h.logged(&logs)
	send := func(req *http.Request) string {
		srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
		return req.Header.Get("X-GitHub-Delivery")
	}

	slow := newBody(20 << 20)
	slow.hold = make(chan struct{})
	slowReq := unsigned(t, slow, slow.size)
	done := make(chan string)
	go func() { done <- send(slowReq) }()
	<-slow.started
	want := []string{
		send(unsigned(t, newBody(30<<20), 30<<20)) + ": Webhook body over 25 MiB; refused.",
		send(unsigned(t, newBody(10<<20), 10<<20)) + ": Too many webhook bodies in flight; answered 503.",
	}
	close(slow.hold)
	want = append(want, <-done+": Webhook body unreadable; refused.")

	var got []string
	for _, l := range logs.Lines(t) {
		got = append(got, fmt.Sprintf("%s: %s", l["github_delivery_id"], l["message"]))
		if l["level"] != "warn" || l["github_event_type"] != "push" {
			t.Errorf("log line %v: want a warning with the event", l)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
