package server_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/awaittest"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/logtest"
	"github.com/railyard/railyard/internal/redistest"
	"github.com/railyard/railyard/internal/webhooktest"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/server"
)

// parallel is how many tests run at once unless -parallel says: the
// end-to-end tests mostly wait on a bot (its workers, its outbox, a step's
// sleep), so more than the default, one per CPU, keeps the CPUs busy.
const parallel = "4"

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", parallel)
	}
	os.Exit(redistest.Main(m))
}

// The payloads in testdata/webhooks are GitHub's examples for this
// repository; tests keep it and change only SHAs and comment bodies.
const (
	repoName      = "Codertocat/Hello-World"
	defaultBranch = "master"
	secret        = "It's a Secret to Everybody"
	user          = "Codertocat"
)

// harness is a Railyard wired as in production, against a fake GitHub.
type harness struct {
	t     *testing.T
	gh    *githubtest.Server
	repo  *githubtest.Repo
	srv   *server.Server
	dir   string // where steps leave their marks
	seq   atomic.Int64
	files map[string]githubtest.File
	env   config.Env
	opts  server.Options
	// patience bounds each await; zero means 20 s.
	patience time.Duration
	// child, when set, is the bot process webhooks go to instead of srv.
	child *childBot
}

type harnessOption func(*config.Env, *server.Options)

func newHarness(t *testing.T, pipeline string, opts ...harnessOption) *harness {
	t.Helper()
	gh := githubtest.New(t)
	h := &harness{t: t, gh: gh, repo: gh.AddRepo(repoName, defaultBranch), dir: t.TempDir()}
	t.Cleanup(func() { checkRoutes(t, gh) })
	h.repo.SetPermission(user, "admin", "admin")
	h.files = map[string]githubtest.File{".github/railyard.yml": {Content: h.expand(pipeline)}}

	env := config.Env{
		V3APIURL: gh.URL, WebURL: "https://github.com/", AppID: 1, WebhookSecret: secret,
		PrivateKey: gh.PrivateKeyPEM(), WorkDir: filepath.Join(t.TempDir(), "work"), Workers: 4,
		LogLevel: zerolog.InfoLevel, LogFormat: "json",
		StepIsolationOff: true, // steps leave their marks in h.dir, outside their workspace
	}
	so := server.Options{
		Engine: engine.Options{Poll: 20 * time.Millisecond, Grace: 2 * time.Second},
		Report: report.Options{Poll: 10 * time.Millisecond},
		Queue:  queue.Options{Lease: 5 * time.Second},
		// Stopping waits out idle workers' blocked claims.
		ClaimWait: 100 * time.Millisecond,
	}
	for _, o := range opts {
		o(&env, &so)
	}
	h.env, h.opts = env, so
	h.srv = h.another()
	return h
}

// another starts one more Railyard process like the first, against the
// same fake GitHub (and the same store, if the options name one).
func (h *harness) another() *server.Server {
	h.t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(h.t)).Level(zerolog.WarnLevel)
	srv, err := server.New(h.t.Context(), h.env, log, h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	stop, err := srv.Start(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { stop(); srv.Close() })
	return srv
}

// logged builds one more Railyard like the first, not started, whose log
// at Info goes to logs, emptied of its start-up lines.
func (h *harness) logged(logs *logtest.Buffer) *server.Server {
	h.t.Helper()
	srv, err := server.New(h.t.Context(), h.env, zerolog.New(logs).Level(zerolog.InfoLevel), h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { srv.Close() })
	logs.Reset() // the warning about the embedded store
	return srv
}

// expand fills $DIR in a pipeline file with the marks directory.
func (h *harness) expand(s string) string { return strings.ReplaceAll(s, "$DIR", h.dir) }

// commit adds a commit to the default branch carrying the pipeline file.
func (h *harness) commit() string {
	h.t.Helper()
	files := map[string]githubtest.File{}
	for k, v := range h.files {
		files[k] = v
	}
	files["README"] = githubtest.File{Content: fmt.Sprint("revision ", h.seq.Add(1))}
	return h.repo.Commit(defaultBranch, files)
}

// deliver sends a signed webhook and returns the status code.
func (h *harness) deliver(event string, body []byte) int {
	h.t.Helper()
	return h.deliverAs(event, fmt.Sprintf("delivery-%d-%d", time.Now().UnixNano(), h.seq.Add(1)), body)
}

func (h *harness) deliverAs(event, delivery string, body []byte) int {
	h.t.Helper()
	if h.child != nil {
		return h.child.deliver(event, delivery, body)
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, webhooktest.Request(h.t, secret, event, delivery, body))
	return rec.Code
}

func pushBody(t testing.TB, sha string) []byte {
	return webhooktest.Payload(t, "push/with-new-branch.payload.json",
		webhooktest.Set("after", sha), webhooktest.Set("created", false))
}

// push delivers a push of sha to the pipeline branch.
func (h *harness) push(sha string) {
	h.t.Helper()
	if code := h.deliver("push", pushBody(h.t, sha)); code != http.StatusAccepted {
		h.t.Fatalf("push answered %d, want 202", code)
	}
}

// commitAndPush makes a new revision and pushes it.
func (h *harness) commitAndPush() string {
	sha := h.commit()
	h.push(sha)
	return sha
}

var commentIDs atomic.Int64

// comment posts a comment as user on issue 1 and waits for Railyard's reply.
func (h *harness) comment(body string) string {
	h.t.Helper()
	return h.commentAs(user, body)
}

func (h *harness) commentAs(login, body string) string {
	h.t.Helper()
	id := 900000 + commentIDs.Add(1)
	before := len(h.repo.Comments(1))
	payload := webhooktest.Payload(h.t, "issue_comment/created.with-installation.payload.json",
		webhooktest.Set("comment.id", id), webhooktest.Set("comment.body", body),
		webhooktest.Set("comment.user.login", login))
	if code := h.deliver("issue_comment", payload); code != http.StatusAccepted {
		h.t.Fatalf("comment answered %d, want 202", code)
	}
	var reply string
	h.await("a reply to "+body, func() bool {
		cs := h.repo.Comments(1)
		if len(cs) > before {
			reply = cs[len(cs)-1].Body
			return true
		}
		return false
	})
	return reply
}

// await polls cond until it holds, failing the test after 20 seconds.
func (h *harness) await(what string, cond func() bool) {
	h.t.Helper()
	if !awaittest.Poll(cmp.Or(h.patience, 20*time.Second), cond) {
		h.t.Fatalf("timed out waiting for %s\nstate: %s", what, h.describe())
	}
}

func (h *harness) pipeline() *engine.Pipeline {
	h.t.Helper()
	p, err := h.srv.Engine().Pipeline(context.Background(), repoName)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) stage(name string) *engine.StageState {
	if s := h.pipeline().Stage(name); s != nil {
		return s
	}
	return &engine.StageState{Name: name}
}

// awaitStage waits until a stage is in state with its job at sha.
func (h *harness) awaitStage(name string, state engine.State, sha string) {
	h.t.Helper()
	h.await(fmt.Sprintf("%s %s at %s", name, state, sha), func() bool {
		s := h.stage(name)
		return s.State == state && s.Job != nil && s.Job.SHA == sha
	})
}

func (h *harness) describe() string {
	if h.srv == nil {
		return "(Railyard runs outside the test process)"
	}
	p, err := h.srv.Engine().Pipeline(context.Background(), repoName)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, s := range p.Stages {
		fmt.Fprintf(&b, "\n  %s: %s blocked=%v current=%.7s", s.Name, s.State, s.Blocked, s.Current)
		if s.Job != nil {
			fmt.Fprintf(&b, " job=%s@%.7s", s.Job.Operation, s.Job.SHA)
		}
		if s.Waiting != nil {
			fmt.Fprintf(&b, " waiting=%.7s (%s)", s.Waiting.SHA, s.Waiting.Hold)
		}
	}
	if p.Stopped != nil {
		fmt.Fprintf(&b, "\n  stopped by %s", p.Stopped.Actor)
	}
	return b.String()
}

// marks returns the lines steps appended to $DIR/log.
func (h *harness) marks() []string {
	data, _ := os.ReadFile(filepath.Join(h.dir, "log"))
	return strings.Fields(strings.ReplaceAll(string(data), " ", "_"))
}

func (h *harness) hasMark(mark string) bool { return slices.Contains(h.marks(), mark) }

// checkRun returns the newest check run named name on sha.
func (h *harness) checkRun(name, sha string) (githubtest.CheckRun, bool) {
	var found githubtest.CheckRun
	ok := false
	for _, cr := range h.repo.CheckRuns() {
		if cr.Name == name && cr.HeadSHA == sha && (!ok || cr.ID > found.ID) {
			found, ok = cr, true
		}
	}
	return found, ok
}

// awaitCheckRun waits for a completed check run with a conclusion.
func (h *harness) awaitCheckRun(name, sha, conclusion string) githubtest.CheckRun {
	h.t.Helper()
	return h.awaitCheckRunTitled(name, sha, conclusion, "")
}

// awaitCheckRunTitled is awaitCheckRun for a check run whose title starts
// with title: a revision deployed before and rolled back to has an earlier
// run of the same name that concluded alike.
func (h *harness) awaitCheckRunTitled(name, sha, conclusion, title string) githubtest.CheckRun {
	h.t.Helper()
	var cr githubtest.CheckRun
	what := fmt.Sprintf("check run %s on %.7s to conclude %s", name, sha, conclusion)
	if title != "" {
		what += fmt.Sprintf(", titled %q…", title)
	}
	h.await(what, func() bool {
		var ok bool
		cr, ok = h.checkRun(name, sha)
		return ok && cr.Status == "completed" && cr.Conclusion == conclusion && strings.HasPrefix(cr.Title, title)
	})
	return cr
}

// deployments returns the deployments of an environment, oldest first.
func (h *harness) deployments(env string) []githubtest.Deployment {
	var out []githubtest.Deployment
	for _, d := range h.repo.Deployments() {
		if d.Environment == env {
			out = append(out, d)
		}
	}
	return out
}

// deploymentsOf returns an environment's deployments of one task.
func (h *harness) deploymentsOf(env, task string) []githubtest.Deployment {
	var out []githubtest.Deployment
	for _, d := range h.deployments(env) {
		if d.Task == task {
			out = append(out, d)
		}
	}
	return out
}

// awaitDeploymentsOf waits until env has n deployments of task (reports
// reach GitHub after the stage's state changes) and returns them.
func (h *harness) awaitDeploymentsOf(env, task string, n int) []githubtest.Deployment {
	h.t.Helper()
	var out []githubtest.Deployment
	h.await(fmt.Sprintf("%d %s deployments to %s", n, task, env), func() bool {
		out = h.deploymentsOf(env, task)
		return len(out) >= n
	})
	return out
}

// states lists a deployment's statuses, oldest first.
func states(d githubtest.Deployment) []string {
	var out []string
	for _, st := range d.Statuses {
		out = append(out, st.State)
	}
	return out
}

// lastState is the state of a deployment's newest status, "" if none.
func lastState(d githubtest.Deployment) string {
	if n := len(d.Statuses); n > 0 {
		return d.Statuses[n-1].State
	}
	return ""
}

// shownInOrder reports whether got are statuses of want, in its order,
// each at most once, ending with the last of want. Earlier ones may be
// missing: a status a later one replaced before it was sent is dropped
// (a queued one is held a few seconds for that, report.Options).
func shownInOrder(got []string, want ...string) bool {
	if len(got) == 0 || got[len(got)-1] != want[len(want)-1] {
		return false
	}
	i := 0
	for _, s := range got {
		for i < len(want) && want[i] != s {
			i++
		}
		if i == len(want) {
			return false
		}
		i++
	}
	return true
}

func short(sha string) string { return sha[:7] }

// manualProdPipeline builds (step compile), then deploys prod (step
// deploy) only on /promote.
func manualProdPipeline() string {
	return fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: prod
    promotion: manual
    steps:
%s`, markStep("compile"), markStep("deploy"))
}

// markStep is a step that records "<stage>:<step>:<sha7>:<operation>".
func markStep(name string) string {
	return fmt.Sprintf(`      - name: %s
        run: echo "$RAILYARD_STAGE:%s:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> $DIR/log
`, name, name)
}
