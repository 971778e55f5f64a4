package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/gate"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/stagejob"
)

var (
	errStale      = errors.New("job is no longer the stage's job")
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
	var ref jobRef
	if err := json.Unmarshal(qj.Data, &ref); err != nil {
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

	var j *Job
	var p *Pipeline
	err = e.updateHeld(ctx, ref.Repo, held, func(pl *Pipeline, fx *effects) error {
		s := pl.Stage(ref.Stage)
		if s == nil || s.Job == nil || s.Job.ID != ref.Job || !s.active() {
			return errStale
		}
		if s.State == Cancelling {
			j, p = s.Job, pl
			return nil
		}
		// A job back from waiting for GitHub is no takeover, and its
		// deployment already shows it in progress.
		waited := s.Job.WaitingFor != ""
		takeover := s.State != Queued && !waited
		s.Job.WaitingFor = ""
		if takeover {
			log.Warn().Msg("Taking over a job whose process stopped; running it again from the first step.")
		}
		s.State = s.Job.Operation.runningState()
		s.Job.Started = e.opts.Now().UTC()
		j, p = s.Job, pl
		e.reportRunning(fx, pl, s.Job, takeover, !waited)
		return nil
	})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return err
	}

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
	var ref jobRef
	if err := json.Unmarshal(qj.Data, &ref); err != nil {
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
		// With the lock held no run can change the job: only its own end,
		// which finish writes, and a person's command, which finish sees.
		var p *Pipeline
		if p, err = e.Pipeline(ctx, ref.Repo); err == nil {
			s := p.Stage(ref.Stage)
			if s == nil || s.Job == nil || s.Job.ID != ref.Job || !s.active() {
				return // ended or replaced meanwhile: nothing waits for this job
			}
			since := qj.FailingSince.UTC().Format(time.RFC3339)
			_, err = e.finish(ctx, ref, held, s.Job, runResult{
				problem: "Railyard gave up: GitHub did not answer well enough to start this job since " + since + ". `/retry` runs it again.",
			})
		}
	}
	if err != nil && !errors.Is(err, errStale) {
		log.Error().Err(err).Msg("Could not fail the stage of a job given up; it shows in progress until the job is replayed (bot jobs replay).")
		return
	}
	log.Warn().Msg("Stage job given up after waiting for GitHub; the stage failed.")
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
	err := e.updateHeld(ctx, ref.Repo, held, func(p *Pipeline, fx *effects) error {
		s := p.Stage(ref.Stage)
		if s == nil || s.Job == nil || s.Job.ID != ref.Job || !s.active() {
			return errStale
		}
		s.Job.WaitingFor = res.waiting
		e.reportWaiting(fx, p, s.Job)
		return nil
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
func (e *Engine) runSteps(ctx context.Context, repo Repo, j *Job, held *lease.Lease) runResult {
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

// finish records how j ended: the stage's state, promotion to the next
// stage, auto-rollback, and whatever waits. It returns the conclusion of
// j's check run.
func (e *Engine) finish(ctx context.Context, ref jobRef, held *lease.Lease, j *Job, res runResult) (conclusion string, err error) {
	err = e.updateHeld(ctx, ref.Repo, held, func(p *Pipeline, fx *effects) error {
		s := p.Stage(ref.Stage)
		if s == nil || s.Job == nil || s.Job.ID != j.ID {
			next := "another job"
			if s != nil && s.Job != nil {
				next = fmt.Sprintf("%s of %s to %s", s.Job.Operation, s.Name, short(s.Job.SHA))
			}
			// A stage still there has a new job: preempt reported this end.
			conclusion = "cancelled"
			e.reportEnd(fx, p, j, outcome{conclusion: conclusion, steps: res.steps, log: res.log,
				summary: "Cancelled: superseded by " + next + ".", reported: s != nil && s.Job != nil})
			return nil
		}
		j = s.Job // the stored job knows who cancelled it
		o := outcome{steps: res.steps, log: res.log, summary: res.problem}
		var fs *config.Stage
		if res.file != nil {
			fs, _ = res.file.Stage(s.Name)
		}
		switch {
		case res.ok:
			s.State = j.Operation.doneState()
			o.conclusion = "success"
			if j.Operation.deploys() {
				s.recordGood(j.SHA)
				if p.Stages[0] == s {
					p.Built = pushFront(p.Built, j.SHA, keepBuilt)
				}
			}
			if j.Operation.promotes() && res.file != nil {
				e.promote(p, res.file, s, j, fx)
			}
			if s.PreviousGood() != "" {
				o.actions = []report.Action{actionRollback}
			}
		case res.cancelled || s.State == Cancelling:
			// A step that failed after a person's cancel, before the
			// worker noticed it, still ends cancelled: no auto-rollback.
			s.State = Cancelled
			o.conclusion = "cancelled"
		default:
			s.State = Failed
			o.conclusion = "failure"
			o.actions = []report.Action{actionRetry}
			if fs != nil && fs.AutoRollback {
				o.summary = joinLines(o.summary, e.autoRollback(p, s, j, res, fx))
			}
		}
		s.Job.Hold = ""
		conclusion = o.conclusion
		e.reportEnd(fx, p, j, o)
		e.kick(p, fx)
		return nil
	})
	return conclusion, err
}

// promote offers the revision j deployed to the next stage.
func (e *Engine) promote(p *Pipeline, file *config.Pipeline, s *Stage, j *Job, fx *effects) {
	nfs, ok := file.Next(s.Name)
	if !ok {
		return
	}
	next := p.Stage(nfs.Name)
	if next == nil {
		return
	}
	nj := &Job{
		ID: newID(), Stage: next.Name, SHA: j.SHA, Operation: OpDeploy,
		Actor: j.Actor, Reason: j.Reason, ConfigSHA: j.ConfigSHA, Created: e.opts.Now().UTC(),
		Production: nfs.Production, Manual: nfs.Promotion == "manual" || gate.AwaitsPromote(file, nfs.Name),
	}
	e.offer(p, next, nj, fx)
}

// autoRollback queues the rollback of a failed stage to its last good
// revision and says what it did, for the failed job's check run.
func (e *Engine) autoRollback(p *Pipeline, s *Stage, j *Job, res runResult, fx *effects) string {
	switch {
	case j.Operation == OpAutoRollback:
		return "No auto-rollback: this job was itself an auto-rollback."
	case res.problem != "" && res.failed == "":
		return "No auto-rollback: the steps never ran."
	}
	target := ""
	for _, sha := range s.Good {
		if sha != j.SHA {
			target = sha
			break
		}
	}
	if target == "" {
		return fmt.Sprintf("No auto-rollback: %s has no earlier good revision.", s.Name)
	}
	req := Request{Actor: "railyard", Reason: fmt.Sprintf("auto-rollback: %s failed", res.failed), ConfigSHA: j.ConfigSHA}
	rj := &Job{
		ID: newID(), Stage: s.Name, SHA: target, Operation: OpAutoRollback,
		Actor: req.Actor, Reason: req.Reason, ConfigSHA: j.ConfigSHA, Created: e.opts.Now().UTC(),
		Production: j.Production, Previous: s.Current,
	}
	e.audit(fx, req, OpAutoRollback, s.Name, j.SHA, target, rj.ID)
	e.block(s, "auto-rollback after "+res.failed+" failed")
	e.start(p, s, rj, fx)
	return fmt.Sprintf("Auto-rollback of %s to %s queued.", s.Name, short(target))
}

func joinLines(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n\n" + b
}
