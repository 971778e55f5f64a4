package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/webhooktest"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/server"
)

// Config is one run of the benchmark.
type Config struct {
	Repos, Stages int
	RedisURL      string // "" is the embedded store
	Workers       int    // stage workers (RAILYARD_WORKERS)
	// Budgets per installation, as the RAILYARD_GITHUB_* variables take
	// them: 0 is no limit (as on GitHub Enterprise Server), Default
	// Railyard's default.
	PointsPerMinute, ContentPerMinute, ContentPerHour int
	Deadline                                          time.Duration // then report what was reached
	CommandEvery                                      time.Duration // a /status comment this often; 0 sends none
	Grace                                             time.Duration // then wait at most this long for the last 👀s
	Isolation                                         bool          // confine steps (RAILYARD_STEP_ISOLATION=on)
	LogPath                                           string        // the bot's log (Info, JSON); "" a temporary file
}

// Default is a budget left to Railyard's default.
const Default = -1

const (
	defaultBranch = "master" // the branch of the push payload in testdata
	secret        = "fleet webhook secret"
	person        = "fleet-person" // who types the commands
)

// fleet is one run: a fake GitHub with the repositories, a Railyard
// behind a loopback HTTP server, and what was sent to it.
type fleet struct {
	tb      testing.TB
	cfg     Config
	gh      *githubtest.Server
	inst    int64
	owner   string
	stages  []string
	repos   []*githubtest.Repo
	shas    []string // pushed revision of each repository
	pushes  [][]byte // signed push bodies
	hookURL string
	client  *http.Client
	seq     atomic.Int64

	mu       sync.Mutex
	commands map[int64]time.Time // comment ID → when its webhook's 202 was read
	refused  []string            // answers other than 202
}

// stageNames are build, staging, prod for three stages, and build,
// stage-2, … otherwise, ending in prod.
func stageNames(n int) []string {
	if n == 3 {
		return []string{"build", "staging", "prod"}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("stage-%d", i+1)
	}
	names[0] = "build"
	if n > 1 {
		names[n-1] = "prod"
	}
	return names
}

func pipelineFile(stages []string) string {
	var b strings.Builder
	b.WriteString("stages:\n")
	for _, s := range stages {
		fmt.Fprintf(&b, "  - name: %s\n    steps:\n      - name: noop\n        run: \"true\"\n", s)
	}
	return b.String()
}

// Run runs the benchmark once and returns its figures. Requests the fake
// GitHub refuses as GitHub would fail tb.
func Run(tb testing.TB, cfg Config) (*Result, error) {
	if cfg.Repos < 1 || cfg.Stages < 1 {
		return nil, fmt.Errorf("want at least one repository and one stage")
	}
	f := &fleet{
		tb: tb, cfg: cfg, gh: githubtest.New(tb), stages: stageNames(cfg.Stages),
		// An owner and installation of this run's own: a shared Redis paces
		// GitHub writes per installation and keeps outboxes per repository.
		owner:    fmt.Sprintf("fleet-%d-%d", os.Getpid(), time.Now().UnixMilli()%1_000_000_000),
		inst:     800_000_000 + time.Now().UnixMilli()%100_000_000,
		commands: map[int64]time.Time{},
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}, Timeout: time.Minute},
	}
	defer f.client.CloseIdleConnections()
	f.addRepos()

	srv, stop, err := f.railyard()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	defer stop() // before Close, which the store needs
	if cfg.RedisURL != "" {
		defer f.dropKeys(srv)
	}

	res := f.burst()
	stop()
	res.Config = cfg
	return res, nil
}

// addRepos creates the repositories, one commit each carrying the
// pipeline file, and the signed pushes of those commits.
func (f *fleet) addRepos() {
	files := map[string]githubtest.File{".github/railyard.yml": {Content: pipelineFile(f.stages)}}
	for i := range f.cfg.Repos {
		repo := f.gh.AddRepo(fmt.Sprintf("%s/repo-%03d", f.owner, i), defaultBranch)
		repo.SetInstallation(f.inst)
		repo.SetPermission(person, "write", "write")
		files["README"] = githubtest.File{Content: fmt.Sprint("repository ", i)}
		sha := repo.Commit(defaultBranch, files)
		f.repos = append(f.repos, repo)
		f.shas = append(f.shas, sha)
		f.pushes = append(f.pushes, webhooktest.Payload(f.tb, "push/with-new-branch.payload.json",
			webhooktest.SetRepo(repo.FullName()), webhooktest.Set("repository.id", repo.ID()),
			webhooktest.Set("installation.id", f.inst), webhooktest.Set("after", sha), webhooktest.Set("created", false)))
	}
}

// railyard starts a Railyard as production does, with its logs at Info
// in JSON to a file, behind a loopback HTTP server.
func (f *fleet) railyard() (*server.Server, func(), error) {
	work, err := os.MkdirTemp("", "fleet-work")
	if err != nil {
		return nil, nil, err
	}
	f.tb.Cleanup(func() { os.RemoveAll(work) })
	if err := os.Chmod(work, 0o755); err != nil { // confined steps run as another user
		return nil, nil, err
	}
	logPath := f.cfg.LogPath
	if logPath == "" {
		logPath = filepath.Join(work, "railyard.log")
	}
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	f.tb.Cleanup(func() { logs.Close() })

	env := config.Env{
		V3APIURL: f.gh.URL, WebURL: "https://github.com/", AppID: 1, WebhookSecret: secret,
		PrivateKey: f.gh.PrivateKeyPEM(), WorkDir: filepath.Join(work, "work"), Workers: f.cfg.Workers,
		RedisURL: f.cfg.RedisURL, LogLevel: zerolog.InfoLevel, LogFormat: "json",
		StepIsolationOff: !f.cfg.Isolation,
		PointsPerMinute:  budget(f.cfg.PointsPerMinute),
		ContentPerMinute: budget(f.cfg.ContentPerMinute),
		ContentPerHour:   budget(f.cfg.ContentPerHour),
	}
	var opts server.Options
	if f.cfg.RedisURL != "" {
		opts.Queue = queue.Options{Prefix: f.queuePrefix()}
	}
	log := zerolog.New(logs).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	srv, err := server.New(context.Background(), env, log, opts)
	if err != nil {
		return nil, nil, err
	}
	stopWorkers, err := srv.Start(context.Background())
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	hook := httptest.NewServer(srv.Handler())
	f.hookURL = hook.URL + webhooktest.HookPath
	return srv, sync.OnceFunc(func() { hook.Close(); stopWorkers() }), nil
}

// budget turns a flag's budget into config.Env's: 0 is none, Default is
// Railyard's default (zero in Env).
func budget(n int) int {
	switch n {
	case 0:
		return config.NoLimit
	case Default:
		return 0
	}
	return n
}

func (f *fleet) queuePrefix() string { return "railyard:{railyard}:" + f.owner + ":" }

// dropKeys deletes from a shared Redis what this run left: its
// repositories' keys, its queues, its installation's pacing and its
// repositories in the outboxes' ready sets.
func (f *fleet) dropKeys(srv *server.Server) {
	ctx := context.Background()
	rdb := srv.Store().Redis
	patterns := []string{
		"railyard:{" + f.owner + "/*", f.queuePrefix() + "*",
		fmt.Sprintf("railyard:{railyard}:outbox:pace:%d:*", f.inst),
	}
	for _, pattern := range patterns {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			rdb.Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
	}
	for _, r := range f.repos {
		member := strings.ToLower(r.FullName())
		rdb.ZRem(ctx, "railyard:{railyard}:outbox:ready", member)
		rdb.ZRem(ctx, "railyard:{railyard}:outbox:ready:conversation", member)
	}
}

// burst pushes every repository at once, sends commands meanwhile, and
// waits until every stage of every repository is final on GitHub or the
// deadline passes.
func (f *fleet) burst() *Result {
	ready := make(chan struct{})
	var pushed sync.WaitGroup
	var lastAccepted time.Time
	for i := range f.repos {
		pushed.Go(func() {
			<-ready
			at := f.deliver("push", f.pushes[i])
			f.mu.Lock()
			lastAccepted = maxTime(lastAccepted, at)
			f.mu.Unlock()
		})
	}
	cpu0 := cpuTime()
	start := time.Now()
	close(ready)
	ctx, stopCommands := context.WithCancel(context.Background())
	commandsDone := make(chan struct{})
	go func() { defer close(commandsDone); f.sendCommands(ctx) }()
	pushed.Wait()

	deadline := start.Add(f.cfg.Deadline)
	for !f.allFinal() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	end := time.Now()
	cpu := cpuTime() - cpu0
	stopCommands()
	<-commandsDone
	// The 👀 of the last commands may still be on the way.
	f.awaitReactions(f.cfg.Grace)

	res := f.tally(start, f.gh.Requests())
	res.Pushed = lastAccepted.Sub(start)
	res.Elapsed = end.Sub(start)
	res.CPU = cpu
	f.mu.Lock()
	res.Refused = f.refused
	f.mu.Unlock()
	return res
}

// deliver POSTs a signed webhook and returns when its answer was read, or
// the zero time when it was not 202.
func (f *fleet) deliver(event string, body []byte) time.Time {
	req, err := http.NewRequest(http.MethodPost, f.hookURL, bytes.NewReader(body))
	if err != nil {
		panic(err) // the URL is ours
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-%d", f.owner, f.seq.Add(1)))
	req.Header.Set("X-Hub-Signature-256", webhooktest.Sign([]byte(secret), body))
	resp, err := f.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			return time.Now()
		}
		err = fmt.Errorf("answered %s", resp.Status)
	}
	f.mu.Lock()
	f.refused = append(f.refused, fmt.Sprintf("%s: %v", event, err))
	f.mu.Unlock()
	return time.Time{}
}

// sendCommands posts a /status comment every CommandEvery until ctx ends,
// each on issue 1 of the next repository in turn.
func (f *fleet) sendCommands(ctx context.Context) {
	if f.cfg.CommandEvery <= 0 {
		return
	}
	tick := time.NewTicker(f.cfg.CommandEvery)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		repo := f.repos[k%len(f.repos)]
		id := int64(900_000_000 + k)
		body := webhooktest.Payload(f.tb, "issue_comment/created.with-installation.payload.json",
			webhooktest.SetRepo(repo.FullName()), webhooktest.Set("repository.id", repo.ID()),
			webhooktest.Set("installation.id", f.inst), webhooktest.Set("comment.id", id),
			webhooktest.Set("comment.body", "/status"), webhooktest.Set("comment.user.login", person))
		wg.Go(func() {
			// From the send: the 👀 may come before the 202 is read,
			// now that a command does not wait behind pushes.
			sent := time.Now()
			if at := f.deliver("issue_comment", body); !at.IsZero() {
				f.mu.Lock()
				f.commands[id] = sent
				f.mu.Unlock()
			}
		})
	}
}

// awaitReactions waits up to d until every command accepted has its 👀.
func (f *fleet) awaitReactions(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		n := len(f.commands)
		f.mu.Unlock()
		if len(eyes(f.gh.Requests())) >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// allFinal reports whether every stage of every repository shows a
// completed check run and a final deployment status on GitHub.
func (f *fleet) allFinal() bool {
	for i, r := range f.repos {
		if len(finalStages(r, f.shas[i], f.stages)) < len(f.stages) {
			return false
		}
	}
	return true
}

// finalStages returns the stages of sha that are final on GitHub, with
// their conclusions.
func finalStages(r *githubtest.Repo, sha string, stages []string) map[string]string {
	checks := map[string]string{}
	for _, cr := range r.CheckRuns() {
		if cr.HeadSHA == sha && cr.Status == "completed" {
			checks[strings.TrimPrefix(cr.Name, "railyard/")] = cr.Conclusion
		}
	}
	out := map[string]string{}
	for _, d := range r.Deployments() {
		if d.Ref != sha || len(d.Statuses) == 0 {
			continue
		}
		if !finalState[d.Statuses[len(d.Statuses)-1].State] {
			continue
		}
		if c, ok := checks[d.Environment]; ok {
			out[d.Environment] = c
		}
	}
	return out
}

var finalState = map[string]bool{"success": true, "failure": true, "error": true, "inactive": true}

// cpuTime is this process's CPU time: Railyard, the fake GitHub and the
// driver together.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
