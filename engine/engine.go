package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/store"
)

// Reporter is how the engine tells GitHub what to show (package report):
// the writes go into the transaction of the state change that causes them.
type Reporter interface {
	AddTx(ctx context.Context, pipe redis.Pipeliner, repo report.Repo, writes ...report.Write) error
	// Committed is told after EXEC that a MULTI with AddTx writes of repo
	// ("owner/name") committed, so that they are sent.
	Committed(ctx context.Context, repo string)
}

// Source reads what a running job needs from GitHub.
type Source interface {
	// Pipeline returns the pipeline file at commit sha.
	Pipeline(ctx context.Context, repo report.Repo, sha string) (*config.Pipeline, error)
	// Archive returns the gzip tarball of the revision.
	Archive(ctx context.Context, repo report.Repo, sha string) (io.ReadCloser, error)
}

// JobKind is the queue job kind of stage jobs.
const JobKind = "stage"

// Options tune an Engine; zero values take defaults.
type Options struct {
	// Poll is how often a running job looks for cancellation and renews
	// its stage lock; default 500ms.
	Poll time.Duration
	// LockTTL bounds how long a dead or cut-off process keeps a stage
	// locked; default 30s. The lock is renewed every Poll, and a run that
	// cannot renew it stops its step LockTTL-Grace-LockMargin after its
	// last renewal, so LockTTL must exceed Poll+Grace+LockMargin (Check).
	LockTTL time.Duration
	// Grace is the SIGTERM→SIGKILL grace of cancelled steps; default 10s.
	Grace time.Duration
	// LockMargin is the time left on a stage lock when a run that could
	// not renew it has killed its step; default 2s.
	LockMargin time.Duration
	// Secrets are redacted from step output.
	Secrets []string
	// SecretsDir holds the secrets operators grant stages (package secrets).
	SecretsDir string
	// WebURL is GitHub's web URL, for links; default https://github.com/.
	WebURL string
	Now    func() time.Time
	// Workflows runs workflow: steps; without it they fail saying so.
	Workflows Workflows
	// Observe hears how each stage job that started ended, for metrics:
	// result is success, failure, cancelled, or interrupted (the process
	// stopped, or lost the job, before it finished; it runs again).
	Observe func(stage string, op Operation, result string, took time.Duration)
}

// Workflows runs steps as GitHub Actions workflow runs (package actions).
type Workflows interface {
	Run(ctx context.Context, st actions.Step) actions.Result
}

// Engine runs pipelines. It is safe for concurrent use, and many engines in
// many processes may share one store.
type Engine struct {
	rdb    redis.UniversalClient
	queue  *queue.Queue
	report Reporter
	source Source
	work   *runner.Workspace
	opts   Options
}

// New returns an engine over the given store, queue, reporter, source and
// workspace.
func New(rdb redis.UniversalClient, q *queue.Queue, rep Reporter, src Source, ws *runner.Workspace, opts Options) *Engine {
	return &Engine{rdb: rdb, queue: q, report: rep, source: src, work: ws, opts: opts.withDefaults()}
}

// Check reports whether the options let a stage's run stop its step before
// its stage lock can pass to another process (see LockTTL).
func (opts Options) Check() error {
	if err := opts.withDefaults().lock().Check(); err != nil {
		return fmt.Errorf("stage lock: %w", err)
	}
	return nil
}

func (opts Options) lock() lease.Options {
	return lease.Options{TTL: opts.LockTTL, Renew: opts.Poll, Grace: opts.Grace, Margin: opts.LockMargin}
}

func (opts Options) withDefaults() Options {
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = 30 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	if opts.LockMargin <= 0 {
		opts.LockMargin = 2 * time.Second
	}
	if opts.WebURL == "" {
		opts.WebURL = "https://github.com/"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return opts
}

func pipelineKey(repo string) string { return store.RepoKey(repo, "pipeline") }
func auditKey(repo string) string    { return store.RepoKey(repo, "audit") }
func lockKey(repo, stage string) string {
	return store.RepoKey(repo, "lock", stage)
}

const auditKeep = 200

// Pipeline returns the stored state of repo; a repository never seen has
// no stages.
func (e *Engine) Pipeline(ctx context.Context, repo string) (*Pipeline, error) {
	return e.load(ctx, e.rdb, repo)
}

// Audit returns up to n audit entries of repo, newest first.
func (e *Engine) Audit(ctx context.Context, repo string, n int) ([]AuditEntry, error) {
	raw, err := e.rdb.LRange(ctx, auditKey(repo), 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	out := make([]AuditEntry, 0, len(raw))
	for _, r := range raw {
		var a AuditEntry
		if err := json.Unmarshal([]byte(r), &a); err == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

func (e *Engine) load(ctx context.Context, c redis.Cmdable, repo string) (*Pipeline, error) {
	raw, err := c.Get(ctx, pipelineKey(repo)).Bytes()
	if errors.Is(err, redis.Nil) {
		return &Pipeline{Repo: repo}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pipeline state: %w", err)
	}
	var p Pipeline
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode pipeline state: %w", err)
	}
	return &p, nil
}

// update commits a transition of repo's state: change sees the current
// state at at, changes it and returns its effects, which commit with it in
// one MULTI; or it returns an error, and nothing changes. Conflicting
// writers are retried. With held, the change commits only while held is
// still its stage lock's holder, and is refused with lease.ErrLost once
// another run took the stage over.
func (e *Engine) update(ctx context.Context, repo string, held *lease.Lease, change func(p *Pipeline, at Moment) (Effects, error)) error {
	return e.updateMarked(ctx, repo, held, "", change)
}

// updateMarked is update for a change to be made once: it sets the key
// mark (endedTTL) with the change, and returns errEnded, changing nothing,
// if mark is already set.
func (e *Engine) updateMarked(ctx context.Context, repo string, held *lease.Lease, mark string, change func(p *Pipeline, at Moment) (Effects, error)) error {
	key := pipelineKey(repo)
	watched := []string{key}
	if held != nil {
		watched = append(watched, held.Fence())
	}
	if mark != "" {
		watched = append(watched, mark)
	}
	for range 100 {
		var fx Effects
		err := e.rdb.Watch(ctx, func(tx *redis.Tx) error {
			if held != nil {
				if err := held.Check(ctx, tx); err != nil {
					return err
				}
			}
			if mark != "" {
				if n, err := tx.Exists(ctx, mark).Result(); err != nil {
					return fmt.Errorf("read mark: %w", err)
				} else if n > 0 {
					return errEnded
				}
			}
			p, err := e.load(ctx, tx, repo)
			if err != nil {
				return err
			}
			fx, err = change(p, Moment{Now: e.opts.Now(), Seed: newID()})
			if err != nil {
				return err
			}
			data, err := json.Marshal(p)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, key, data, 0)
				if mark != "" {
					pipe.Set(ctx, mark, 1, endedTTL)
				}
				return e.commit(ctx, pipe, p, fx)
			})
			return err
		}, watched...)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err == nil {
			e.committed(ctx, repo, fx)
		}
		return err
	}
	return fmt.Errorf("update pipeline state of %s: too much contention", repo)
}

// commit adds a transition's effects to pipe, the MULTI that writes its
// state: jobs, audit lines and what GitHub is told commit with it, in order.
func (e *Engine) commit(ctx context.Context, pipe redis.Pipeliner, p *Pipeline, fx Effects) error {
	for _, r := range fx.Jobs {
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		e.queue.AddTx(pipe, queue.Job{Kind: JobKind, Repo: r.Repo, Data: data})
	}
	for _, a := range fx.Audit {
		line, err := json.Marshal(a)
		if err != nil {
			return err
		}
		pipe.LPush(ctx, auditKey(p.Repo), line)
	}
	if len(fx.Audit) > 0 {
		pipe.LTrim(ctx, auditKey(p.Repo), 0, auditKeep-1)
	}
	if len(fx.GitHub) > 0 {
		if err := e.report.AddTx(ctx, pipe, repoOf(p), fx.GitHub...); err != nil {
			return fmt.Errorf("report to GitHub: %w", err)
		}
	}
	return nil
}

// committed forwards what a transition queued in the repository's outboxes,
// which the transaction could not reach on Redis Cluster: the stage jobs
// to the stage queue (queue.AddTx) and the reports to the senders' ready
// set. The state change stands either way; what fails here a sweep
// forwards later.
func (e *Engine) committed(ctx context.Context, repo string, fx Effects) {
	if len(fx.Jobs) > 0 {
		if err := e.queue.Committed(ctx, repo); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not queue a transition's stage jobs; a sweep queues them.")
		}
	}
	if len(fx.GitHub) > 0 {
		e.report.Committed(ctx, repo)
	}
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func short(sha string) string { return sha[:min(7, len(sha))] }

// logFor adds a stage job's keys to ctx's logger; the worker's logger
// already names the repository.
func logFor(ctx context.Context, stage, job string) *zerolog.Logger {
	l := zerolog.Ctx(ctx).With().Str(LogKeyStage, stage).Str(LogKeyJob, job).Logger()
	return &l
}

// Log keys of our own, beside go-githubapp's.
const (
	LogKeyStage = "railyard_stage"
	LogKeyJob   = "railyard_job"
	LogKeySHA   = "railyard_sha"
)

func zeroLog(ctx context.Context) *zerolog.Logger { return zerolog.Ctx(ctx) }
