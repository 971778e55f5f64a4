package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/store"
)

// Revisions of the test repository, oldest first.
var (
	shaA = strings.Repeat("a", 40)
	shaB = strings.Repeat("b", 40)
	shaC = strings.Repeat("c", 40)
	shaD = strings.Repeat("d", 40)
)

// testPipeline has what the operations look at: a first stage, a stage
// with restart steps, and a production stage with an infra step and
// shutdown steps. Every step appends "<stage>:<step>:<sha7>:<operation>" to
// MARKS.
const testPipeline = `
branch: main
stages:
  - name: build
    steps:
      - name: compile
        run: echo "$RAILYARD_STAGE:compile:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
  - name: staging
    steps:
      - name: deploy
        run: echo "$RAILYARD_STAGE:deploy:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
    restart:
      - name: restart
        run: echo "$RAILYARD_STAGE:restart:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
  - name: prod
    production: true
    steps:
      - name: terraform
        infra: true
        run: echo "$RAILYARD_STAGE:terraform:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
      - name: deploy
        run: echo "$RAILYARD_STAGE:deploy:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
    shutdown:
      - name: stop
        run: echo "$RAILYARD_STAGE:stop:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
`

const testRepo = "octo/app"

// world is an engine on miniredis with fakes for GitHub.
type world struct {
	t     testing.TB
	ctx   context.Context
	m     *miniredis.Miniredis // its TTLs run only when told: FastForward; nil on a cluster
	rdb   redis.UniversalClient
	q     *queue.Queue
	rep   *fakeReporter
	src   *fakeSource
	e     *Engine
	file  *config.Pipeline
	marks string
}

func newWorld(t *testing.T) *world { return newWorldWith(t, testPipeline) }

// newWorldWith is newWorld with another pipeline file; MARKS in it names
// the file steps write to.
func newWorldWith(t testing.TB, pipeline string) *world {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return newWorldOn(t, pipeline, rdb, m, "test:{q}:")
}

// newWorldOn is newWorldWith on rdb, with the stage queue's keys under
// prefix; m is the miniredis behind rdb, if any.
func newWorldOn(t testing.TB, pipeline string, rdb redis.UniversalClient, m *miniredis.Miniredis, prefix string) *world {
	t.Helper()
	ctx := t.Context()
	q := queue.New(rdb, queue.Options{Prefix: prefix})
	if err := q.Init(ctx); err != nil {
		t.Fatal(err)
	}
	marks := filepath.Join(t.TempDir(), "marks")
	file, problems := config.Parse([]byte(strings.ReplaceAll(pipeline, "MARKS", marks)))
	if len(problems) > 0 {
		t.Fatalf("test pipeline: %v", problems)
	}
	src := &fakeSource{file: file, tarball: tarball(t)}
	w := &world{t: t, ctx: ctx, m: m, rdb: rdb, q: q, rep: &fakeReporter{rdb: rdb}, src: src, file: file, marks: marks}
	w.e = New(rdb, q, w.rep, src, runner.NewWorkspace(t.TempDir()), Options{Poll: 10 * time.Millisecond, Grace: time.Second})
	return w
}

// req is a request by alice under the test pipeline file.
func (w *world) req() Request {
	return Request{
		Repo: report.Repo{InstallationID: 7, Owner: "octo", Name: "app"}, File: w.file,
		ConfigSHA: shaB, Head: shaB, Actor: "alice", Reason: "because",
	}
}

// settled is a pipeline at rest: build and staging at B, prod at A, and
// both revisions built.
func settled() *Pipeline {
	p := &Pipeline{Repo: testRepo, InstallationID: 7, Branch: "main", Built: []string{shaB, shaA}, LastPush: 2}
	for _, name := range []string{"build", "staging", "prod"} {
		cur, good := shaB, []string{shaB, shaA}
		if name == "prod" {
			cur, good = shaA, []string{shaA}
		}
		p.Stages = append(p.Stages, &StageState{
			Name: name, State: Succeeded, Current: cur, Good: good,
			Job: &Job{ID: "job-" + name, Stage: name, SHA: cur, Operation: OpDeploy, Actor: "alice", ConfigSHA: shaB},
		})
	}
	return p
}

// seed stores p as the repository's state.
func (w *world) seed(p *Pipeline) {
	w.t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.rdb.Set(w.ctx, pipelineKey(testRepo), data, 0).Err(); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) pipeline() *Pipeline {
	w.t.Helper()
	p, err := w.e.Pipeline(w.ctx, testRepo)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// raw is the stored state byte for byte.
func (w *world) raw() string {
	s, err := w.rdb.Get(w.ctx, pipelineKey(testRepo)).Result()
	if err != nil && err != redis.Nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *world) auditLen() int64 {
	return w.rdb.LLen(w.ctx, auditKey(testRepo)).Val()
}

func (w *world) depth() queue.Depth {
	w.t.Helper()
	d, err := w.q.Depth(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// claimed is a stage job taken from the queue.
type claimed struct {
	ref   jobRef
	lease *queue.Lease
}

// claimAll takes every ready job off the queue, in order.
func (w *world) claimAll() []claimed {
	w.t.Helper()
	var out []claimed
	for {
		l, err := w.q.Claim(w.ctx, "test", 0)
		if err != nil {
			w.t.Fatal(err)
		}
		if l == nil {
			return out
		}
		var ref jobRef
		if err := json.Unmarshal(l.Job.Data, &ref); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, claimed{ref: ref, lease: l})
	}
}

// runQueued runs every queued stage job, and the jobs those queue, until
// the queue is empty.
func (w *world) runQueued() {
	w.t.Helper()
	for range 20 {
		jobs := w.claimAll()
		if len(jobs) == 0 {
			return
		}
		for _, c := range jobs {
			if err := w.e.RunJob(w.ctx, c.lease.Job); err != nil {
				w.t.Fatalf("run %s job: %v", c.ref.Stage, err)
			}
			if err := c.lease.Ack(w.ctx); err != nil {
				w.t.Fatal(err)
			}
		}
	}
	w.t.Fatal("jobs keep queueing jobs")
}

// ranSteps returns the lines steps wrote, in order.
func (w *world) ranSteps() []string {
	data, _ := os.ReadFile(w.marks)
	return strings.Fields(string(data))
}

// fakeReporter records what the engine asks GitHub to show. It records
// through the transaction it is given, as the real reporter does, so what
// an aborted WATCH attempt added is never recorded.
type fakeReporter struct {
	rdb redis.UniversalClient
	// beforeAdd, when set, runs as a transaction's writes are added.
	beforeAdd func()
}

// reportsKey holds what the fake was told, in the repository's slot as a
// transaction on a Redis Cluster requires.
func reportsKey(repo string) string { return store.RepoKey(repo, "test-reports") }

type keyed[T any] struct {
	key string
	v   T
}

func (f *fakeReporter) Committed(context.Context, string) {}

func (f *fakeReporter) AddTx(ctx context.Context, pipe redis.Pipeliner, repo report.Repo, writes ...report.Write) error {
	if f.beforeAdd != nil {
		f.beforeAdd()
	}
	for _, w := range writes {
		data, err := json.Marshal(w)
		if err != nil {
			return err
		}
		pipe.RPush(ctx, reportsKey(repo.FullName()), data)
	}
	return nil
}

// writes returns what committed transactions told GitHub, in order.
func (f *fakeReporter) writes() []report.Write {
	raw, err := f.rdb.LRange(context.Background(), reportsKey(testRepo), 0, -1).Result()
	if err != nil {
		panic(err)
	}
	out := make([]report.Write, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r), &out[i]); err != nil {
			panic(err)
		}
	}
	return out
}

func (f *fakeReporter) checks() (out []keyed[report.CheckRun]) {
	for _, w := range f.writes() {
		if w.CheckRun != nil {
			out = append(out, keyed[report.CheckRun]{w.Key, *w.CheckRun})
		}
	}
	return out
}

func (f *fakeReporter) deploys() (out []keyed[report.Deployment]) {
	for _, w := range f.writes() {
		if w.Deployment != nil {
			out = append(out, keyed[report.Deployment]{w.Key, *w.Deployment})
		}
	}
	return out
}

func (f *fakeReporter) statuses() (out []keyed[report.DeploymentStatus]) {
	for _, w := range f.writes() {
		if w.DeploymentStatus != nil {
			out = append(out, keyed[report.DeploymentStatus]{w.Key, *w.DeploymentStatus})
		}
	}
	return out
}

func (f *fakeReporter) calls() int { return len(f.writes()) }

// checkRun returns the last version of the check run of a job.
func (f *fakeReporter) checkRun(jobID string) (report.CheckRun, bool) {
	checks := f.checks()
	for i := len(checks) - 1; i >= 0; i-- {
		if checks[i].key == CheckRunKey(jobID) {
			return checks[i].v, true
		}
	}
	return report.CheckRun{}, false
}

// checkRunStates lists the statuses (or conclusions, once completed) a
// job's check run went through.
func (f *fakeReporter) checkRunStates(jobID string) []string {
	var out []string
	for _, c := range f.checks() {
		if c.key == CheckRunKey(jobID) {
			s := c.v.Status
			if s == "completed" {
				s = c.v.Conclusion
			}
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeReporter) deployment(jobID string) (report.Deployment, bool) {
	for _, d := range f.deploys() {
		if d.key == deploymentKey(jobID) {
			return d.v, true
		}
	}
	return report.Deployment{}, false
}

func (f *fakeReporter) deploymentStates(jobID string) []string {
	var out []string
	for _, s := range f.statuses() {
		if s.key == deploymentKey(jobID) {
			out = append(out, s.v.State)
		}
	}
	return out
}

// fakeSource serves the test pipeline file and a tiny revision.
type fakeSource struct {
	file    *config.Pipeline
	tarball []byte

	mu           sync.Mutex
	archiveFails []error // answers to the next downloads, in order
}

func (s *fakeSource) Pipeline(context.Context, report.Repo, string) (*config.Pipeline, error) {
	return s.file, nil
}

func (s *fakeSource) Archive(context.Context, report.Repo, string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.archiveFails) > 0 {
		err := s.archiveFails[0]
		s.archiveFails = s.archiveFails[1:]
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(s.tarball)), nil
}

// tarball is a revision shaped like GitHub's archives: one top folder.
func tarball(t testing.TB) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range []tar.Header{
		{Name: "octo-app-1a2b3c4/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "octo-app-1a2b3c4/README", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2},
	} {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("hi"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}
