package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/stagejob"
)

var (
	errCancelled  = errors.New("cancelled")
	errSuperseded = errors.New("superseded")
)

// runResult is how the steps of a job went.
type runResult struct {
	ok        bool
	cancelled bool   // by a person, or replaced by another job
	failed    string // the step (or "verify") that failed
	problem   string // why the job could not run its steps
	waiting   string // why the steps could not start yet, for a failure that can pass
	waitErr   error  // that failure
	steps     []stagejob.Step
	log       string
	file      *config.Pipeline
}

// RunJob runs the stage job a queue job names. It returns nil when the job
// is finished or no longer wanted, and an error when it should be tried
// again (the worker is shutting down, its lease was lost, or the store
// failed); a retried job runs again from its first step.
func (e *Engine) RunJob(ctx context.Context, qj queue.Job) error {
	ref, ok := decodeRef(ctx, qj)
	if !ok {
		return nil // not ours to retry: a malformed job can never run
	}
	log := logFor(ctx, ref.Stage, ref.Job)
	ctx = log.WithContext(ctx)

	held, err := e.lock(ctx, ref)
	if errors.Is(err, errStale) {
		log.Debug().Msg("Job is stale; nothing to run.")
		return nil
	}
	if err != nil {
		return err
	}
	// Never frees a lock that expired and moved on to another run.
	defer held.Release(context.WithoutCancel(ctx))

	var p *Pipeline
	takeover := false
	err = e.update(ctx, ref.Repo, held, func(pl *Pipeline, at Moment) (Effects, error) {
		t, fx, err := pl.Claim(ref, at)
		takeover, p = t, pl
		return fx, err
	})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return err
	}
	if takeover {
		log.Warn().Msg("Taking over a job whose process stopped; running it again from the first step.")
	}
	j := p.Stage(ref.Stage).Job

	started, result := time.Now(), "interrupted"
	if e.opts.Observe != nil {
		defer func() { e.opts.Observe(j.Stage, j.Operation, result, time.Since(started)) }()
	}

	// The step stops when the lock cannot be renewed, before it expires.
	kept, stopKeeping := held.Keep(ctx)
	defer stopKeeping()
	runCtx, cancel := context.WithCancelCause(kept)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		e.watch(runCtx, ref, cancel)
	}()
	var res runResult
	if p.Stage(ref.Stage).State == Cancelling {
		res = runResult{cancelled: true}
	} else {
		log.Info().Str(LogKeySHA, j.SHA).Str("railyard_operation", string(j.Operation)).Msg("Running stage job.")
		res = e.runSteps(runCtx, repoOf(p), j, held)
	}
	cancel(nil)
	<-watched
	if ctx.Err() != nil {
		// Shutting down or lease lost: another process runs the job again.
		return ctx.Err()
	}
	if lost := context.Cause(kept); errors.Is(lost, lease.ErrLost) {
		// Another run may hold the stage now; this one writes nothing.
		log.Warn().Err(lost).Msg("Stage lock lost; stopped the steps. The job runs again.")
		return lost
	}
	if errors.Is(context.Cause(runCtx), errCancelled) || errors.Is(context.Cause(runCtx), errSuperseded) {
		res.cancelled = true
	}
	if res.waiting != "" && !res.cancelled {
		return e.waitForGitHub(ctx, ref, held, res)
	}
	if result, err = e.finish(ctx, ref, held, j, res); err != nil {
		result = "interrupted"
		return err
	}
	log.Info().Bool("ok", res.ok).Bool("cancelled", res.cancelled).Msg("Stage job finished.")
	return nil
}

// GivenUp ends a stage job that the queue gave up on: it kept waiting for
// GitHub (RAILYARD_RETRY_FOR) and never started its steps. The stage fails,
// saying so, with a Retry button, rather than staying in progress with no
// job left to finish it.
func (e *Engine) GivenUp(ctx context.Context, qj queue.Job) {
	ref, ok := decodeRef(ctx, qj)
	if !ok {
		return
	}
	log := logFor(ctx, ref.Stage, ref.Job)
	ctx = log.WithContext(ctx)
	held, err := e.lock(ctx, ref)
	if errors.Is(err, errStale) {
		return
	}
	if err == nil {
		defer held.Release(context.WithoutCancel(ctx))
		err = e.update(ctx, ref.Repo, held, func(p *Pipeline, at Moment) (Effects, error) {
			_, fx, err := p.GiveUp(ref, qj.FailingSince, at)
			return fx, err
		})
	}
	if errors.Is(err, errStale) {
		return // ended or replaced meanwhile: nothing waits for this job
	}
	if err != nil {
		log.Error().Err(err).Msg("Could not fail the stage of a job given up; it shows in progress until the job is replayed (bot jobs replay).")
		return
	}
	log.Warn().Msg("Stage job given up after waiting for GitHub; the stage failed.")
}

// decodeRef reads the stage job a queue job names; one that cannot be
// decoded can never run, and is logged and dropped.
func decodeRef(ctx context.Context, qj queue.Job) (jobRef, bool) {
	var ref jobRef
	if err := json.Unmarshal(qj.Data, &ref); err != nil {
		zeroLog(ctx).Error().Err(err).Str("railyard_queue_job", qj.ID).Msg("Dropped a stage job that cannot be decoded.")
		return ref, false
	}
	return ref, true
}

// lock takes the stage's run lock, which makes "one job per stage at a
// time" hold across processes even while a replaced job is still stopping,
// and gives the run its fencing token. It waits while another run holds
// it, even an earlier run of the same job: that run may still be stopping
// its step in a process cut off from Redis, and gives the lock up before
// it expires.
func (e *Engine) lock(ctx context.Context, ref jobRef) (*lease.Lease, error) {
	key := lockKey(ref.Repo, ref.Stage)
	for {
		l, err := lease.Take(ctx, e.rdb, key, e.opts.lock())
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, lease.ErrHeld) {
			return nil, fmt.Errorf("lock stage: %w", err)
		}
		p, err := e.load(ctx, e.rdb, ref.Repo)
		if err != nil {
			return nil, err
		}
		if s := p.Stage(ref.Stage); s == nil || s.Job == nil || s.Job.ID != ref.Job || !s.active() {
			return nil, errStale
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(e.opts.Poll):
		}
	}
}

// watch cancels the run when a person cancels the job or another job
// replaces it.
func (e *Engine) watch(ctx context.Context, ref jobRef, cancel context.CancelCauseFunc) {
	t := time.NewTicker(e.opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, err := e.load(ctx, e.rdb, ref.Repo)
		if err != nil {
			continue // the store may come back; the stage lock decides if we lost the job
		}
		s := p.Stage(ref.Stage)
		switch {
		case s == nil || s.Job == nil || s.Job.ID != ref.Job:
			cancel(errSuperseded)
			return
		case s.State == Cancelling:
			cancel(errCancelled)
			return
		}
	}
}

// waitForGitHub records that the job waits for GitHub, so that its check
// run says so, and returns an error: the queue tries the job again with
// backoff.
func (e *Engine) waitForGitHub(ctx context.Context, ref jobRef, held *lease.Lease, res runResult) error {
	err := e.update(ctx, ref.Repo, held, func(p *Pipeline, at Moment) (Effects, error) {
		return p.WaitForGitHub(ref, res.waiting, at)
	})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return err
	}
	zeroLog(ctx).Warn().Err(res.waitErr).Msg("Waiting for GitHub before the steps can start; the job is tried again.")
	return fmt.Errorf("%s: %w", res.waiting, res.waitErr)
}

// runSteps runs the steps (and the health check) of j (package stagejob),
// whose run holds the stage lock held.
func (e *Engine) runSteps(ctx context.Context, repo report.Repo, j *Job, held *lease.Lease) runResult {
	r := stagejob.New(e.source, e.work, stagejob.Options{
		Grace: e.opts.Grace, Secrets: e.opts.Secrets, SecretsDir: e.opts.SecretsDir, Workflows: e.opts.Workflows,
	}).Run(ctx, stagejob.Job{
		Repo: repo, ID: j.ID, Stage: j.Stage, SHA: j.SHA, Previous: j.Previous, Operation: string(j.Operation),
		Actor: j.Actor, Reason: j.Reason, ConfigSHA: j.ConfigSHA, Skip: j.Skip, Infra: j.Infra, FreshCache: j.Cache == "skip",
		Lock: held,
	})
	return runResult{ok: r.OK, cancelled: r.Cancelled, failed: r.Failed, problem: r.Problem,
		waiting: r.Waiting, waitErr: r.WaitErr, steps: r.Steps, log: r.Log, file: r.File}
}

// finish records how j ended (Pipeline.Finish) and returns the
// conclusion of its check run.
func (e *Engine) finish(ctx context.Context, ref jobRef, held *lease.Lease, j *Job, res runResult) (conclusion string, err error) {
	err = e.update(ctx, ref.Repo, held, func(p *Pipeline, at Moment) (Effects, error) {
		c, fx, err := p.Finish(j, res, at)
		conclusion = c
		return fx, err
	})
	return conclusion, err
}
