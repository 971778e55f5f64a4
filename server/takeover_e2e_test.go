package server_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/logtest"
	"github.com/railyard/railyard/internal/redisproc"
	"github.com/railyard/railyard/internal/webhooktest"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/server"
)

// takeoverPipeline's build stage has a first step that only leaves a mark,
// and a second that leaves a mark, records its process id and, the first
// time only, sleeps far longer than the test: the process running it is
// killed during that sleep.
const takeoverPipeline = `
stages:
  - name: build
    steps:
` + "%s" + `      - name: compile
        run: |
          echo "build:compile:started" >> $DIR/log
          if mkdir $DIR/first-run 2>/dev/null; then
            echo $$ > $DIR/step.pid
            sleep 600
          fi
  - name: staging
    steps:
` + "%s"

// TestKilledProcessJobIsTakenOver runs the real bot binary as a child
// process, SIGKILLs it in the middle of a step, and checks that a second
// Railyard on the same Redis takes the job over once its lease runs out:
// the stage runs again from its first step, its check run and deployment
// end in success, promotion continues, and nothing stays in_progress
// (docs/reference.md#durability).
func TestKilledProcessJobIsTakenOver(t *testing.T) {
	redisURL := takeoverRedis(t)
	bin := buildBot(t)

	h := childHarness(t, takeoverPipeline, redisURL)
	// The survivor waits for the killed run's stage lock to expire (30 s
	// in the child), as it cannot know the step has stopped.
	h.patience = time.Minute
	// The survivor judges the dead process's lease by its own length, so a
	// short one keeps the test short; the child runs with the defaults.
	h.opts = server.Options{
		Engine: engine.Options{Poll: 20 * time.Millisecond, Grace: 2 * time.Second},
		Report: report.Options{Poll: 10 * time.Millisecond},
		Queue:  queue.Options{Lease: 2 * time.Second},
	}

	bot := startBot(t, bin, h)
	sha := h.commit()
	bot.push(sha)

	s7 := short(sha)
	stepPID := 0
	// Should the step outlive its process, it must not outlive the test.
	t.Cleanup(func() {
		if pid := readPID(h); pid > 0 { // -0 would be the test's own group
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	rdb := redisClient(t, redisURL)
	h.await("the compile step to start and GitHub to show the job running", func() bool {
		stepPID = readPID(h)
		ds := h.deployments("build")
		// Killing the child while it sends to GitHub would leave the
		// outbox leased to a dead process for a minute; wait until it is idle.
		return stepPID > 0 && len(ds) == 1 && lastState(ds[0]) == "in_progress" && outboxIdle(rdb)
	})

	bot.kill()
	killed := time.Now()
	// The step's watchdog sees its process die and stops the step: it
	// never runs beside the takeover's rerun.
	h.await("the killed process's step to stop", func() bool { return !groupAlive(stepPID) })
	h.srv = h.another()

	h.awaitStage("staging", engine.Succeeded, sha)
	t.Logf("took %v from SIGKILL to staging succeeded", time.Since(killed).Round(time.Millisecond))

	want := []string{
		"build:prepare:" + s7 + ":deploy", "build:compile:started", // the killed run
		"build:prepare:" + s7 + ":deploy", "build:compile:started", // the takeover, from the first step
		"staging:deploy:" + s7 + ":deploy",
	}
	if got := h.marks(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("steps ran %v, want %v", got, want)
	}

	// The takeover goes on with the job's own check run and deployment.
	cr := h.awaitCheckRun("railyard/build", sha, "success")
	if n := countCheckRuns(h, "railyard/build", sha); n != 1 {
		t.Errorf("%d railyard/build check runs on the commit, want the one the killed process started", n)
	}
	if !strings.Contains(cr.Summary, "| compile | success |") {
		t.Errorf("build check run summary lacks the rerun compile step:\n%s", cr.Summary)
	}
	h.awaitCheckRun("railyard/staging", sha, "success")
	h.await("build deployment to succeed", func() bool {
		ds := h.deployments("build")
		return len(ds) == 1 && len(ds[0].Statuses) > 0 && ds[0].Statuses[len(ds[0].Statuses)-1].State == "success"
	})
	// The first in_progress was shown before the kill; the takeover's may
	// be replaced by success before it is sent.
	if got := states(h.deployments("build")[0]); !shownInOrder(got, "queued", "in_progress", "in_progress", "success") || !slices.Contains(got, "in_progress") {
		t.Errorf("build deployment statuses %v, want in_progress, a second at most, then success", got)
	}

	// Nothing stays in_progress: not a stage, not a check run.
	for _, s := range h.pipeline().Stages {
		if s.State != engine.Succeeded {
			t.Errorf("stage %s ends %s, want succeeded", s.Name, s.State)
		}
	}
	h.await("every check run to complete", func() bool {
		for _, c := range h.repo.CheckRuns() {
			if c.Status != "completed" {
				return false
			}
		}
		return true
	})

}

// childHarness is a harness for bots run as child processes on redisURL,
// with pipeline's two %s holding build's first step and staging's steps.
// Not newHarness: it starts a Railyard at once, which would race the child
// for the push. The harness's helpers only need these fields.
func childHarness(t *testing.T, pipeline, redisURL string) *harness {
	gh := githubtest.New(t)
	h := &harness{t: t, gh: gh, repo: gh.AddRepo(repoName, defaultBranch), dir: t.TempDir()}
	h.repo.SetPermission(user, "admin", "admin")
	h.files = map[string]githubtest.File{".github/railyard.yml": {
		Content: h.expand(fmt.Sprintf(pipeline, markStep("prepare"), markStep("deploy"))),
	}}
	h.env = config.Env{
		V3APIURL: gh.URL, WebURL: "https://github.com/", AppID: 1, WebhookSecret: secret,
		PrivateKey: gh.PrivateKeyPEM(), WorkDir: filepath.Join(t.TempDir(), "work"), Workers: 4,
		RedisURL: redisURL, LogLevel: zerolog.InfoLevel, LogFormat: "json",
		StepIsolationOff: true, // steps leave their marks in h.dir, outside their workspace
	}
	return h
}

// readPID returns the process id the compile step recorded, or 0.
func readPID(h *harness) int {
	data, err := os.ReadFile(filepath.Join(h.dir, "step.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// takeoverRedis is a real Redis for the child bot, whose queue keys cannot
// be given a prefix: a private redis-server when one is installed, else the
// test Redis with the keys of the test cleaned before and after. On a
// private one the test runs beside others (t.Parallel), so it must be
// called before the test does anything else.
func takeoverRedis(t *testing.T) string {
	url := os.Getenv("RAILYARD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("needs RAILYARD_TEST_REDIS_URL: the bot runs as a separate process on a real Redis")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		cleanKeys(t, url, "railyard:{codertocat/hello-world}:*", "railyard:{railyard}:intake:*", "railyard:{railyard}:people:*",
			"railyard:{railyard}:stage:*", "railyard:{railyard}:outbox:*")
		return url
	}
	t.Parallel()
	return redisproc.Start(t).URL()
}

func redisClient(t *testing.T, url string) *redis.Client {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func cleanKeys(t *testing.T, url string, patterns ...string) {
	rdb := redisClient(t, url)
	clean := func() {
		for _, p := range patterns {
			if keys, _ := rdb.Keys(context.Background(), p).Result(); len(keys) > 0 {
				rdb.Del(context.Background(), keys...)
			}
		}
	}
	clean()
	t.Cleanup(clean)
}

// outboxIdle reports whether no process is sending the repository's
// outboxes to GitHub, and nothing is left in them.
func outboxIdle(rdb *redis.Client) bool {
	const prefix = "railyard:{codertocat/hello-world}:outbox"
	n, err := rdb.Exists(context.Background(), prefix+":lease", prefix, prefix+":conversation:lease", prefix+":conversation").Result()
	return err == nil && n == 0
}

// buildBot builds cmd/bot, as an operator would run it.
func buildBot(t *testing.T) string {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; cannot build the bot")
	}
	bin := filepath.Join(t.TempDir(), "bot")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/railyard/railyard/cmd/bot").CombinedOutput()
	if err != nil {
		t.Fatalf("build the bot: %v\n%s", err, out)
	}
	return bin
}

// childBot is the bot running as a child process in a process group of its
// own.
type childBot struct {
	t    *testing.T
	h    *harness
	cmd  *exec.Cmd
	url  string
	logs *logtest.Buffer // the child writes it while the test reads it
}

// startBot runs the bot with the harness's GitHub, store and secrets in its
// environment, and waits until it serves.
func startBot(t *testing.T, bin string, h *harness) *childBot {
	t.Helper()
	return startBotAs(t, bin, h, botSetup{})
}

// botSetup is how a child bot differs from startBot's.
type botSetup struct {
	dir  string              // working directory; "": a new one, without .env
	env  []string            // KEY=VALUE sets a variable, KEY alone removes it
	cred *syscall.Credential // the user it runs as; nil: the test's
}

func startBotAs(t *testing.T, bin string, h *harness, setup botSetup) *childBot {
	t.Helper()
	addr := "127.0.0.1:" + freePort(t)
	dir := cmp.Or(setup.dir, t.TempDir())
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"GITHUB_V3_API_URL=" + h.env.V3APIURL,
		"GITHUB_WEB_URL=" + h.env.WebURL,
		"GITHUB_APP_INTEGRATION_ID=" + strconv.FormatInt(h.env.AppID, 10),
		"GITHUB_APP_WEBHOOK_SECRET=" + h.env.WebhookSecret,
		"GITHUB_APP_PRIVATE_KEY=" + string(h.env.PrivateKey),
		"RAILYARD_ADDR=" + addr,
		"RAILYARD_REDIS_URL=" + h.env.RedisURL,
		"RAILYARD_WORKDIR=" + filepath.Join(dir, "work"),
		"RAILYARD_LOG_LEVEL=debug",
	}
	if h.env.StepIsolationOff {
		cmd.Env = append(cmd.Env, "RAILYARD_STEP_ISOLATION=off")
	}
	for _, kv := range setup.env {
		key, _, _ := strings.Cut(kv, "=")
		cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, key+"=") })
		if strings.Contains(kv, "=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	b := &childBot{t: t, h: h, cmd: cmd, url: "http://" + addr, logs: &logtest.Buffer{}}
	cmd.Stdout, cmd.Stderr = b.logs, b.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: setup.cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.kill()
		if t.Failed() {
			t.Logf("the child bot's log:\n%s", b.logs)
		}
	})
	h.await("the child bot to be ready", func() bool {
		resp, err := http.Get(b.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return b
}

// push delivers a push of sha to the child bot as GitHub would.
func (b *childBot) push(sha string) {
	b.t.Helper()
	id := fmt.Sprintf("delivery-takeover-%d", time.Now().UnixNano())
	if code := b.deliver("push", id, pushBody(b.t, sha)); code != http.StatusAccepted {
		b.t.Fatalf("push to the child bot answered %d, want 202", code)
	}
}

// deliver sends a signed webhook to the child bot over HTTP and returns
// the status code.
func (b *childBot) deliver(event, delivery string, body []byte) int {
	b.t.Helper()
	in := webhooktest.Request(b.t, secret, event, delivery, body)
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodPost, b.url+in.URL.Path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header = in.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// kill SIGKILLs the bot's process group: no shutdown, no hand-back of jobs.
func (b *childBot) kill() {
	if b.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	b.cmd.Wait()
}

func countCheckRuns(h *harness, name, sha string) int {
	n := 0
	for _, cr := range h.repo.CheckRuns() {
		if cr.Name == name && cr.HeadSHA == sha {
			n++
		}
	}
	return n
}

// groupAlive reports whether process group pgid has a process that is not
// a zombie.
func groupAlive(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		rest := string(data[bytes.LastIndexByte(data, ')')+1:])
		f := strings.Fields(rest)
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}
