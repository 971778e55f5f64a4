package server_test

// Benchmarks of issues #2 (push-webhook intake) and #3 (push accepted →
// first step started, GitHub requests per stage job). They run only with
// -bench; BENCHMARKS.md has the commands and the figures.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/webhooktest"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/server"
)

// benchClients are the numbers of clients delivering at once in the closed
// loop: throughput is compared at each and at each handler's peak.
var benchClients = []int{2, 4, 8, 16, 32}

// benchPaced is the open-loop rate of issue #2's latency target.
const benchPaced = 1000

// rigSeq keeps the repositories (and so the store keys) of successive rigs
// apart, also across processes sharing a real Redis.
var rigSeq atomic.Int64

// rig is a Railyard (or a bare handler) behind a real loopback HTTP server,
// with a fake GitHub holding one repository.
type rig struct {
	b      *testing.B
	gh     *githubtest.Server
	repo   *githubtest.Repo
	srv    *server.Server
	url    string // the webhook URL
	client *http.Client
	header http.Header // a signed delivery's headers, for body
	body   []byte      // the delivery the intake benchmarks send
	name   string      // the repository's full name
	inst   int64       // its installation
	dir    string      // where steps leave their marks
	files  map[string]githubtest.File
	seq    atomic.Int64
	// stopWorkers stops the workers and reporter, if the rig runs them.
	stopWorkers func()
}

type rigConfig struct {
	redisURL string // "" is the embedded store
	pipeline string // "" is a bare handler instead of Railyard
	workers  bool   // start the worker pools and the reporter
	opts     server.Options
}

func newRig(b *testing.B, cfg rigConfig) *rig {
	b.Helper()
	n := rigSeq.Add(1)
	r := &rig{
		b:  b,
		gh: githubtest.New(b),
		// A repository and installation of its own per rig: a shared real
		// Redis paces GitHub writes per installation across processes.
		name: fmt.Sprintf("railyard-bench/hello-world-%d-%d", os.Getpid(), n),
		inst: 700000 + int64(os.Getpid())%100000*100 + n,
		dir:  b.TempDir(),
	}
	r.repo = r.gh.AddRepo(r.name, defaultBranch)
	r.repo.SetInstallation(r.inst)
	r.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(r.client.CloseIdleConnections)

	var handler http.Handler = bareHook(secret)
	if cfg.pipeline != "" {
		r.files = map[string]githubtest.File{".github/railyard.yml": {Content: strings.ReplaceAll(cfg.pipeline, "$DIR", r.dir)}}
		handler = r.railyard(cfg)
	}
	hook := httptest.NewServer(handler)
	b.Cleanup(hook.Close)
	r.url = hook.URL + webhooktest.HookPath
	return r
}

// railyard starts a Railyard as production does (Info-level JSON logs,
// one write per line, here to a file), against the rig's fake GitHub.
func (r *rig) railyard(cfg rigConfig) http.Handler {
	b := r.b
	env := config.Env{
		V3APIURL: r.gh.URL, WebURL: "https://github.com/", AppID: 1, WebhookSecret: secret,
		PrivateKey: r.gh.PrivateKeyPEM(), WorkDir: filepath.Join(b.TempDir(), "work"), Workers: 4,
		RedisURL: cfg.redisURL, LogLevel: zerolog.InfoLevel, LogFormat: "json",
		StepIsolationOff: true, // figures comparable with those before steps were confined
	}
	opts := cfg.opts
	if cfg.redisURL != "" {
		opts.Queue.Prefix = fmt.Sprintf("railyard:{railyard}:bench-%d-%d:", os.Getpid(), rigSeq.Load())
	}
	logs, err := os.Create(filepath.Join(b.TempDir(), "railyard.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logs.Close() })
	log := zerolog.New(logs).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	srv, err := server.New(context.Background(), env, log, opts)
	if err != nil {
		b.Fatal(err)
	}
	r.srv = srv
	b.Cleanup(func() { srv.Close() })
	if cfg.redisURL != "" {
		// Runs before Close: what this rig left in the shared Redis goes.
		b.Cleanup(func() { r.dropKeys(opts.Queue.Prefix) })
	}
	if cfg.workers {
		stop, err := srv.Start(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		r.stopWorkers = sync.OnceFunc(stop)
		b.Cleanup(r.stopWorkers)
	}
	return srv.Handler()
}

// dropKeys deletes the keys of the rig's repository, queues and
// installation, and its entries in the reporter's ready sets, from a shared
// real Redis.
func (r *rig) dropKeys(prefix string) {
	ctx := context.Background()
	rdb := r.srv.Store().Redis
	member := strings.ToLower(r.name)
	pace := fmt.Sprintf("railyard:{railyard}:outbox:pace:%d:*", r.inst)
	for _, pattern := range []string{"railyard:{" + member + "}:*", prefix + "*", pace} {
		var keys []string
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for c := range slices.Chunk(keys, 500) {
			rdb.Del(ctx, c...)
		}
	}
	rdb.ZRem(ctx, "railyard:{railyard}:outbox:ready", member)
	rdb.ZRem(ctx, "railyard:{railyard}:outbox:ready:conversation", member)
}

// pushBody is a real push payload moved to the rig's repository and
// installation, pushing sha to the default branch.
func (r *rig) pushBody(sha string) []byte {
	return webhooktest.Payload(r.b, "push/with-new-branch.payload.json",
		webhooktest.SetRepo(r.name), webhooktest.Set("installation.id", r.inst),
		webhooktest.Set("after", sha), webhooktest.Set("created", false))
}

// commit adds a revision carrying the pipeline file to the default branch.
func (r *rig) commit() string {
	files := map[string]githubtest.File{"README": {Content: fmt.Sprint("revision ", r.seq.Add(1))}}
	for k, v := range r.files {
		files[k] = v
	}
	return r.repo.Commit(defaultBranch, files)
}

// send POSTs a signed push delivery with a delivery ID of its own, so that
// dedupe never short-circuits it, and returns the status code.
func (r *rig) send(body []byte, delivery string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = r.header.Clone()
	req.Header.Set("X-GitHub-Delivery", delivery)
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// sign sets the headers GitHub sends with body.
func (r *rig) sign(body []byte) {
	r.header = webhooktest.Request(r.b, secret, "push", "template", body).Header
}

// bareHook is the yardstick of issue #2: a net/http handler that reads the
// body, checks X-Hub-Signature-256 and answers 202, nothing else.
func bareHook(secret string) http.Handler {
	key := []byte(secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 25<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		hexSig, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
		got, err := hex.DecodeString(hexSig)
		mac := hmac.New(sha256.New, key)
		mac.Write(body)
		if !ok || err != nil || !hmac.Equal(got, mac.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// floorHook is bareHook plus the one durable write intake cannot do
// without: the same enqueue-once of the delivery on q that Railyard makes.
// It shows how far any handler that queues before answering can go.
func floorHook(secret string, q *queue.Queue) http.Handler {
	bare := bareHook(secret)
	job := []byte(`{"installation_id":1,"owner":"railyard-bench","name":"hello-world","sha":"` +
		strings.Repeat("0", 40) + `","branch":"master","default_branch":"master","pusher":"Codertocat","delivery":"0"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusOnly{ResponseWriter: w}
		bare.ServeHTTP(rec, r)
		if rec.status != 0 {
			return // refused; answered already
		}
		_, _, err := q.EnqueueOnce(r.Context(), "delivery:"+r.Header.Get("X-GitHub-Delivery"), 24*time.Hour,
			queue.Job{Kind: "push", Repo: "railyard-bench/hello-world", Data: job})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// statusOnly holds back a 202 so floorHook can answer after its write.
type statusOnly struct {
	http.ResponseWriter
	status int
}

func (s *statusOnly) WriteHeader(code int) {
	if code == http.StatusAccepted {
		return
	}
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusOnly) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// floorRig is a rig around floorHook on the real Redis at url.
func floorRig(b *testing.B, url string) *rig {
	r := intakeRig(b, "", false, false)
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	prefix := fmt.Sprintf("railyard:{railyard}:bench%d-%d:", os.Getpid(), rigSeq.Add(1))
	b.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		for c := range slices.Chunk(keys, 500) {
			rdb.Del(context.Background(), c...)
		}
		rdb.Close()
	})
	hook := httptest.NewServer(floorHook(secret, queue.New(rdb, queue.Options{Prefix: prefix})))
	b.Cleanup(hook.Close)
	r.url = hook.URL + webhooktest.HookPath
	return r
}

// stores runs f on the embedded store and, when RAILYARD_TEST_REDIS_URL is
// set, on real Redis.
func stores(b *testing.B, prefix string, f func(b *testing.B, redisURL string)) {
	b.Run(prefix+"embedded", func(b *testing.B) { f(b, "") })
	b.Run(prefix+"redis", func(b *testing.B) {
		url := os.Getenv("RAILYARD_TEST_REDIS_URL")
		if url == "" {
			b.Skip("needs RAILYARD_TEST_REDIS_URL")
		}
		f(b, url)
	})
}

// intakeRig is a rig whose deliveries all push one revision: after the
// first push job the pipeline file is cached, so running workers add
// Railyard's own per-push work (claim, push job, deploy transaction, stage
// job, check run reports) but hardly any load from the in-process fake
// GitHub, which a real deployment does not carry.
func intakeRig(b *testing.B, redisURL string, railyard, workers bool) *rig {
	cfg := rigConfig{redisURL: redisURL, workers: workers}
	if railyard {
		cfg.pipeline = "stages:\n  - name: build\n    steps:\n      - name: noop\n        run: \"true\"\n"
	}
	r := newRig(b, cfg)
	r.body = r.pushBody(r.commit())
	r.sign(r.body)
	return r
}

// BenchmarkPushIntake is issue #2's throughput: for each count in
// benchClients, that many clients each POST a signed push and wait for the
// answer, as fast as they can. Each handler is measured between two runs
// of the bare handler, and reports its throughput as a share of theirs:
// this machine's speed drifts by more than the differences measured, and
// a pair taken seconds apart shares the drift.
func BenchmarkPushIntake(b *testing.B) {
	for _, clients := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			b.Run("bare", func(b *testing.B) { closedLoop(b, clients, intakeRig(b, "", false, false)) })
			b.Run("bare+enqueue/redis", func(b *testing.B) {
				url := os.Getenv("RAILYARD_TEST_REDIS_URL")
				if url == "" {
					b.Skip("needs RAILYARD_TEST_REDIS_URL")
				}
				pairedLoop(b, clients, floorRig(b, url))
			})
			stores(b, "workers/", func(b *testing.B, url string) { pairedLoop(b, clients, intakeRig(b, url, true, true)) })
			stores(b, "intake-only/", func(b *testing.B, url string) { pairedLoop(b, clients, intakeRig(b, url, true, false)) })
		})
	}
}

// BenchmarkPushIntakePaced is issue #2's latency target: deliveries sent at
// benchPaced a second whatever the answers (open loop), latency counted
// from when each was due, so a stall shows in every delivery it delays.
func BenchmarkPushIntakePaced(b *testing.B) {
	b.Run("bare", func(b *testing.B) { openLoop(b, intakeRig(b, "", false, false)) })
	stores(b, "workers/", func(b *testing.B, url string) { openLoop(b, intakeRig(b, url, true, true)) })
	stores(b, "intake-only/", func(b *testing.B, url string) { openLoop(b, intakeRig(b, url, true, false)) })
}

// closedLoop has clients clients deliver b.N pushes, each client sending
// its next as soon as it has an answer.
func closedLoop(b *testing.B, clients int, r *rig) float64 {
	return r.drive(b, "bench", func(send func(i int, from time.Time)) { closed(clients, b.N, send) })
}

// closed has clients clients send n pushes, each sending its next as soon
// as it has an answer.
func closed(clients, n int, send func(i int, from time.Time)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				send(i, time.Now())
			}
		})
	}
	wg.Wait()
}

// pairedLoop is closedLoop on r between two untimed closed loops of as
// many pushes on a bare handler, and reports r's throughput as a share of
// the bare one's mean ("%-of-bare").
func pairedLoop(b *testing.B, clients int, r *rig) {
	b.StopTimer()
	bare := intakeRig(b, "", false, false)
	rate := func() float64 {
		elapsed, _ := bare.run(b, "pair", b.N, func(send func(i int, from time.Time)) { closed(clients, b.N, send) })
		return float64(b.N) / elapsed.Seconds()
	}
	before := rate()
	b.StartTimer()
	got := closedLoop(b, clients, r)
	if r.stopWorkers != nil {
		r.stopWorkers() // or they would work through the backlog during the second bare run
	}
	bareRate := (before + rate()) / 2
	b.ReportMetric(bareRate, "bare-webhooks/s")
	b.ReportMetric(100*got/bareRate, "%-of-bare")
}

// openLoop sends b.N pushes benchPaced a second whatever the answers; each
// latency counts from when its push was due, so a stall shows in every
// delivery it delays.
func openLoop(b *testing.B, r *rig) {
	interval := time.Second / benchPaced
	r.drive(b, "paced", func(send func(i int, from time.Time)) {
		var wg sync.WaitGroup
		start := time.Now()
		for i := range b.N {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			wg.Go(func() { send(i, due) })
		}
		wg.Wait()
	})
}

// drive times loop, which sends push i by calling send(i, from) and counts
// its latency from from, and reports throughput (below benchPaced in the
// open loop means the sender fell behind), CPU, latency and how many
// requests the fake GitHub served meanwhile.
func (r *rig) drive(b *testing.B, name string, loop func(send func(i int, from time.Time))) (webhooksPerSecond float64) {
	gh0 := len(r.gh.Requests())
	b.ResetTimer()
	cpu0 := cpuTime(b)
	elapsed, lat := r.run(b, name, b.N, loop)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "webhooks/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(len(r.gh.Requests())-gh0), "gh-reqs")
	reportPercentiles(b, lat, "")
	return rate
}

// run has loop send n pushes, each with a delivery id of its own, and
// returns how long they took and each one's latency, counted from when
// loop says it was due. An answer other than 202 fails b.
func (r *rig) run(b *testing.B, name string, n int, loop func(send func(i int, from time.Time))) (time.Duration, []time.Duration) {
	lat := make([]time.Duration, n)
	var failures failureLog
	prefix := fmt.Sprintf("%s-%d-%d-", name, os.Getpid(), time.Now().UnixNano())
	start := time.Now()
	loop(func(i int, from time.Time) {
		code, err := r.send(r.body, prefix+strconv.Itoa(i))
		lat[i] = time.Since(from)
		failures.note(code, err)
	})
	elapsed := time.Since(start)
	failures.check(b)
	return elapsed, lat
}

// cpuTime is the CPU time this process has used: clients and server
// together, not a Redis server's. Unlike throughput it hardly depends on
// what else the machine runs.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// failureLog counts answers other than 202 from many goroutines.
type failureLog struct {
	mu    sync.Mutex
	n     int
	first string
}

func (f *failureLog) note(code int, err error) {
	if err == nil && code == http.StatusAccepted {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.first = fmt.Sprintf("status %d, error %v", code, err)
	}
	f.n++
}

func (f *failureLog) check(b *testing.B) {
	if f.n > 0 {
		b.Fatalf("%d of %d deliveries not answered 202; first: %s", f.n, b.N, f.first)
	}
}

// reportPercentiles reports p50, p99 and the maximum of lat in ms.
func reportPercentiles(b *testing.B, lat []time.Duration, what string) {
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(quantileMs(lat, 0.50), what+"p50-ms")
	b.ReportMetric(quantileMs(lat, 0.99), what+"p99-ms")
	b.ReportMetric(quantileMs(lat, 1), what+"max-ms")
}

// twoStages is issue #3's pipeline: the first step of build writes when it
// started (ns since the epoch); every other step does nothing.
const twoStages = `
stages:
  - name: build
    steps:
      - name: first
        run: date +%s%N > $DIR/started-$RAILYARD_SHA
      - name: noop
        run: ":"
  - name: staging
    steps:
      - name: noop
        run: "true"
`

// BenchmarkPushToFirstStep is issue #3: one push at a time into an idle
// Railyard, the time from its 202 to its first step starting, and the
// GitHub requests each push and each stage job makes.
func BenchmarkPushToFirstStep(b *testing.B) {
	stores(b, "", func(b *testing.B, url string) {
		// GitHub's budgets (80 comments a minute, 900 points of check runs
		// per installation) would make pushes wait on the outbox rather
		// than on Railyard; every write is still sent and counted.
		opts := server.Options{Report: report.Options{PerMinute: -1, PerHour: -1, PointsPerMinute: -1}}
		r := newRig(b, rigConfig{redisURL: url, pipeline: twoStages, workers: true, opts: opts})
		pushToFirstStep(b, r)
	})
}

func pushToFirstStep(b *testing.B, r *rig) {
	lat := make([]time.Duration, b.N)
	shas := make([]string, b.N)
	accepted := make([]time.Time, b.N)
	before := len(r.gh.Requests())
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		sha := r.commit()
		body := r.pushBody(sha)
		r.sign(body)
		b.StartTimer()
		code, err := r.send(body, fmt.Sprintf("first-step-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), i))
		shas[i], accepted[i] = sha, time.Now()
		if err != nil || code != http.StatusAccepted {
			b.Fatalf("push answered %d, %v; want 202", code, err)
		}
		lat[i] = r.awaitStarted(sha).Sub(accepted[i])
		// The push is done when staging's last deployment status reached
		// GitHub: every report of both stage jobs was sent before it.
		r.await("staging deployed "+sha[:7], func() bool { return r.deployed("staging", sha) })
	}
	b.StopTimer()
	reportPercentiles(b, lat, "")
	reqs := r.gh.Requests()[before:]
	r.reportRequests(reqs, b.N)
	r.logSegments(reqs, shas, accepted, lat)
}

// logSegments splits each push's wait for its first step at the GitHub
// requests on the way, as the fake GitHub saw them arrive: the push job
// reading the pipeline file, then the stage job fetching the archive.
func (r *rig) logSegments(reqs []githubtest.Request, shas []string, accepted []time.Time, lat []time.Duration) {
	file, archive := map[string]time.Time{}, map[string]time.Time{}
	for _, q := range reqs {
		switch q.OperationID {
		case "repos/get-content":
			file[q.Query.Get("ref")] = q.At
		case "repos/download-tarball-archive":
			archive[path.Base(q.Path)] = q.At
		}
	}
	var toFile, toArchive, toStep []time.Duration
	for i, sha := range shas {
		f, okF := file[sha]
		a, okA := archive[sha]
		if !okF || !okA {
			continue
		}
		toFile = append(toFile, f.Sub(accepted[i]))
		toArchive = append(toArchive, a.Sub(f))
		toStep = append(toStep, accepted[i].Add(lat[i]).Sub(a))
	}
	r.b.Logf("p50/p99 ms: 202 → pipeline file read %s; → archive requested %s; → first step started %s",
		percentiles(toFile), percentiles(toArchive), percentiles(toStep))
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f/%.1f", quantileMs(d, 0.50), quantileMs(d, 0.99))
}

// quantileMs is the q-quantile of d (nearest rank) in ms.
func quantileMs(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := max(int(math.Ceil(q*float64(len(s))))-1, 0)
	return float64(s[i]) / float64(time.Millisecond)
}

// awaitStarted waits for the first step of sha and returns when it began.
func (r *rig) awaitStarted(sha string) time.Time {
	var ns int64
	r.await("the first step of "+sha[:7], func() bool {
		raw, err := os.ReadFile(filepath.Join(r.dir, "started-"+sha))
		line, complete := strings.CutSuffix(string(raw), "\n")
		if err != nil || !complete {
			return false
		}
		ns, err = strconv.ParseInt(line, 10, 64)
		if err != nil {
			r.b.Fatalf("step wrote %q: %v", raw, err)
		}
		return true
	})
	return time.Unix(0, ns)
}

// deployed reports whether env's deployment of sha has its final status.
func (r *rig) deployed(env, sha string) bool {
	for _, d := range r.repo.Deployments() {
		if d.Environment == env && d.Ref == sha && len(d.Statuses) > 0 {
			switch d.Statuses[len(d.Statuses)-1].State {
			case "success", "failure", "error":
				return true
			}
		}
	}
	return false
}

// await polls cond; the poll interval adds nothing to a measured latency,
// which the step's own clock gives.
func (r *rig) await(what string, cond func() bool) {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// reportRequests reports the GitHub requests of pushes pushes (each
// running stageJobs stage jobs) per stage job, and logs them by operation.
func (r *rig) reportRequests(reqs []githubtest.Request, pushes int) {
	const stageJobs = 2 // build and staging
	jobs := float64(pushes * stageJobs)
	byOp := map[string]int{}
	writes := 0
	for _, q := range reqs {
		byOp[q.OperationID]++
		if q.Method != http.MethodGet && q.OperationID != "apps/create-installation-access-token" {
			writes++
		}
	}
	r.b.ReportMetric(float64(len(reqs))/jobs, "gh-reqs/stage-job")
	r.b.ReportMetric(float64(writes)/jobs, "gh-writes/stage-job")
	var per []string
	for _, op := range slices.Sorted(maps.Keys(byOp)) {
		per = append(per, fmt.Sprintf("%s %.2f", op, float64(byOp[op])/jobs))
	}
	// One line: a benchmark's log is cut after ten.
	r.b.Logf("GitHub requests per stage job over %d pushes: %s", pushes, strings.Join(per, ", "))
}
