package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/logtest"
	"github.com/railyard/railyard/internal/redisproc"
	"github.com/railyard/railyard/internal/webhooktest"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/server"
)

const buildOnly = "stages:\n  - name: build\n    steps:\n      - name: compile\n        run: echo \"build:$(echo $RAILYARD_SHA | cut -c1-7)\" >> $DIR/log\n"

func TestSignatureIsRequired(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	sha := h.commit()
	body := pushBody(t, sha)
	for name, mutate := range map[string]func(r *http.Request){
		"missing":      func(r *http.Request) { r.Header.Del("X-Hub-Signature-256") },
		"wrong secret": func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", webhooktest.Sign([]byte("nope"), body)) },
		"sha1 only":    func(r *http.Request) { r.Header.Del("X-Hub-Signature-256") }, // X-Hub-Signature (SHA-1) stays
		"garbage":      func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", "sha256=zz") },
	} {
		req := webhooktest.Request(t, secret, "push", "d-"+name, body)
		mutate(req)
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s signature: %d, want 401", name, rec.Code)
		}
	}
	// Nothing was queued: a good delivery now is the first and only deploy.
	h.push(sha)
	h.awaitStage("build", engine.Succeeded, sha)
	// The stage's state changes before the outbox has sent what it caused;
	// its final check run comes after its deployment in that outbox.
	h.awaitCheckRun("railyard/build", sha, "success")
	if n := len(h.deployments("build")); n != 1 {
		t.Errorf("%d deployments, want 1", n)
	}
}

func TestMalformedPushIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	sha := h.commit()
	good := pushBody(t, sha)
	for name, body := range map[string][]byte{
		"not JSON":         []byte("{\"ref\": \"refs/heads/master\", "),
		"trailing bytes":   append(append([]byte{}, good...), []byte("}{")...),
		"no repository":    webhooktest.Payload(t, "push/with-new-branch.payload.json", webhooktest.Set("after", sha), webhooktest.Set("repository", nil)),
		"ref not a string": webhooktest.Payload(t, "push/with-new-branch.payload.json", webhooktest.Set("after", sha), webhooktest.Set("ref", 42)),
	} {
		if code := h.deliver("push", body); code != http.StatusBadRequest {
			t.Errorf("%s: answered %d, want 400", name, code)
		}
	}
	// Nothing was queued: a good delivery now is the first and only deploy.
	h.push(sha)
	h.awaitStage("build", engine.Succeeded, sha)
	if marks := h.marks(); len(marks) != 1 {
		t.Errorf("build ran %d times, want once: %v", len(marks), marks)
	}
}

func TestPingAndUnknownEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	if code := h.deliver("ping", webhooktest.Payload(t, "ping/payload.json")); code/100 != 2 {
		t.Errorf("ping answered %d", code)
	}
	if code := h.deliver("workflow_run", webhooktest.Payload(t, "workflow_run/completed.payload.json")); code != http.StatusAccepted {
		t.Errorf("unhandled event answered %d, want 202", code)
	}
}

func TestRedeliveredPushDeploysOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	sha := h.commit()
	for range 2 {
		if code := h.deliverAs("push", "same-delivery", pushBody(t, sha)); code != http.StatusAccepted {
			t.Fatalf("push answered %d", code)
		}
	}
	h.awaitStage("build", engine.Succeeded, sha)
	if marks := h.marks(); len(marks) != 1 {
		t.Errorf("build ran %d times for one delivery: %v", len(marks), marks)
	}
}

func TestPushesRailyardIgnores(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	sha := h.commit()
	h.push(sha) // learns the pipeline branch
	h.awaitStage("build", engine.Succeeded, sha)
	other := h.repo.Commit("feature", map[string]githubtest.File{".github/railyard.yml": {Content: h.expand(buildOnly)}})
	for name, body := range map[string][]byte{
		"tag push":      webhooktest.Payload(t, "push/ghes-35.payload.json", webhooktest.Set("installation", map[string]any{"id": 1})),
		"tag delete":    webhooktest.Payload(t, "push/with-installation.payload.json"),
		"branch delete": webhooktest.Payload(t, "push/with-installation.payload.json", webhooktest.Set("ref", "refs/heads/master")),
		"other branch":  webhooktest.Payload(t, "push/with-new-branch.payload.json", webhooktest.Set("ref", "refs/heads/feature"), webhooktest.Set("after", other)),
	} {
		if code := h.deliver("push", body); code != http.StatusAccepted {
			t.Errorf("%s answered %d, want 202", name, code)
		}
	}
	// A last good push proves the queue drained past the ignored ones.
	last := h.commitAndPush()
	h.awaitStage("build", engine.Succeeded, last)
	if marks := h.marks(); len(marks) != 2 {
		t.Errorf("ignored pushes ran steps: %v", marks)
	}
}

func TestRepositoryWithoutPipelineFileIsIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	sha := h.repo.Commit(defaultBranch, map[string]githubtest.File{"README": {Content: "no pipeline"}})
	h.push(sha)
	h.await("the push job to finish", func() bool { return h.gh.Count("repos/get-content") > 0 })
	h.push(h.repo.Commit(defaultBranch, map[string]githubtest.File{"README": {Content: "still none"}}))
	h.await("the second push job", func() bool { return h.gh.Count("repos/get-content") > 1 })
	if n := len(h.repo.CheckRuns()) + len(h.repo.Deployments()); n != 0 {
		t.Errorf("a repository without a pipeline file got %d check runs/deployments", n)
	}
}

func TestBrokenPipelineFileFailsConfigCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "stages:\n  - name: Build\n    steps:\n      - name: compile\n        timeout: soon\n")
	sha := h.commitAndPush()
	cr := h.awaitCheckRun("railyard/config", sha, "failure")
	for _, want := range []string{"line 2", "line 4", "line 5"} {
		if !strings.Contains(cr.Summary, want) {
			t.Errorf("config check run does not name %s:\n%s", want, cr.Summary)
		}
	}
	if len(h.deployments("build")) != 0 {
		t.Error("a broken file deployed")
	}
}

func TestStoreDownAnswers503(t *testing.T) {
	if os.Getenv("RAILYARD_TEST_REDIS_URL") == "" {
		t.Skip("needs RAILYARD_TEST_REDIS_URL (and redis-server) for a real Redis to stop")
	}
	rs := redisproc.Start(t)
	h := newHarness(t, buildOnly, func(e *config.Env, _ *server.Options) { e.RedisURL = rs.URL() })
	h.await("redis to answer", func() bool {
		return h.srv.Store().Ping(context.Background()) == nil
	})
	sha := h.commit()
	rs.Kill()
	if code := h.deliver("push", pushBody(t, sha)); code != http.StatusServiceUnavailable {
		t.Errorf("push with the store down answered %d, want 503", code)
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store down answered %d, want 503", rec.Code)
	}
}

func freePort(t *testing.T) string {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestEachDeliveryLogsOneLine: an operator finds every delivery in the log
// under its delivery id, once, saying what became of it.
func TestEachDeliveryLogsOneLine(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	var logs logtest.Buffer
	srv := h.logged(&logs)
	sha := h.commit()
	comment := webhooktest.Payload(t, "issue_comment/created.with-installation.payload.json",
		webhooktest.Set("comment.body", "Looks good to me."))
	deliveries := []struct {
		event, id string
		body      []byte
		sign      bool
		want      string // the message of its one line
	}{
		{"push", "d-push", pushBody(t, sha), true, "Queued."},
		{"push", "d-push", pushBody(t, sha), true, "Seen before; not queued again."},
		{"push", "d-tag", webhooktest.Payload(t, "push/ghes-35.payload.json", webhooktest.Set("installation", map[string]any{"id": 1})), true, "Not a branch; ignoring push."},
		{"push", "d-delete", webhooktest.Payload(t, "push/with-installation.payload.json", webhooktest.Set("ref", "refs/heads/master")), true, "Ref deleted; ignoring push."},
		{"issue_comment", "d-comment", comment, true, "No commands in comment; ignoring."},
		{"ping", "d-ping", webhooktest.Payload(t, "ping/payload.json"), true, "Ping answered."},
		{"installation", "d-installation", webhooktest.Payload(t, "installation/created.payload.json"), true, "Event Railyard does not handle; ignoring."},
		{"push", "d-forged", pushBody(t, sha), false, "Webhook with a missing or bad X-Hub-Signature-256; refused."},
	}
	var want []string
	for _, d := range deliveries {
		req := webhooktest.Request(t, secret, d.event, d.id, d.body)
		if !d.sign {
			req.Header.Set("X-Hub-Signature-256", webhooktest.Sign([]byte("not the secret"), d.body))
		}
		srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
		want = append(want, d.id+": "+d.want)
	}
	var got []string
	for _, l := range logs.Lines(t) {
		id, _ := l["github_delivery_id"].(string)
		got = append(got, fmt.Sprintf("%s: %s", id, l["message"]))
	}
	if !slices.Equal(got, want) {
		t.Errorf("log lines:\n%s\nwant one per delivery:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReadyzChecksTheQueues: a store that answers is not enough; /readyz
// answers 503 until the queues' streams and groups exist, as after the
// store lost its data, and 200 once a worker (here Start) has made them.
func TestReadyzChecksTheQueues(t *testing.T) {
	t.Parallel()
	gh := githubtest.New(t)
	env := config.Env{
		V3APIURL: gh.URL, WebURL: "https://github.com/", AppID: 1, WebhookSecret: secret,
		PrivateKey: gh.PrivateKeyPEM(), WorkDir: t.TempDir(), Workers: 1,
		StepIsolationOff: true, // no step runs
	}
	srv, err := server.New(t.Context(), env, zerolog.Nop(), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ready := func() int {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code
	}
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store answering but no queues answered %d, want 503", code)
	}
	// Each queue counts, people's commands' too: with all but one made,
	// the bot is not ready. (Before Start: its workers would make them.)
	all := server.NewQueues(srv.Store().Redis, queue.Options{}).All()
	for _, missing := range all {
		if err := srv.Store().Redis.FlushAll(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		for _, nq := range all {
			if nq != missing {
				if err := nq.Queue.Init(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if code := ready(); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz with the %s queue missing answered %d, want 503", missing.Name, code)
		}
	}
	stop, err := srv.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if code := ready(); code != http.StatusOK {
		t.Errorf("/readyz once the queues exist answered %d, want 200", code)
	}
}

// TestStoreDataLossHeals: when the store comes back empty (FLUSHALL, a
// restart without persistence), the bot recreates its queues by itself: a push delivered after the loss deploys, with no
// restart. The delivery id seen before the loss is accepted again, since
// what remembered it is gone too.
func TestStoreDataLossHeals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	first := h.commit()
	if code := h.deliverAs("push", "before-loss", pushBody(t, first)); code != http.StatusAccepted {
		t.Fatalf("push answered %d", code)
	}
	h.awaitStage("build", engine.Succeeded, first)

	// The workers notice within a claim, so /readyz's 503 in between is
	// too short to catch here; TestReadyzChecksTheQueues shows it.
	if err := h.srv.Store().Redis.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}

	second := h.commit()
	if code := h.deliverAs("push", "before-loss", pushBody(t, second)); code != http.StatusAccepted {
		t.Fatalf("redelivered push after the loss answered %d, want 202", code)
	}
	h.awaitStage("build", engine.Succeeded, second)
	h.await("/readyz to answer 200 again", func() bool {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code == http.StatusOK
	})
	if !h.hasMark("build:" + short(second)) {
		t.Errorf("build did not run for the push after the loss: %v", h.marks())
	}
}
