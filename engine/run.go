package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/secrets"
	"github.com/railyard/railyard/transient"
)

var (
	errCancelled  = errors.New("cancelled")
	errSuperseded = errors.New("superseded")
)

// stepResult is one step's line in the check run summary.
type stepResult struct {
	Name     string
	Result   string // success, failure, skipped (…), cancelled, timed out
	Duration time.Duration
	URL      string // a workflow step's run
}

// runResult is how the steps of a job went.
type runResult struct {
	ok        bool
	cancelled bool   // by a person, or replaced by another job
	failed    string // the step (or "verify") that failed
	problem   string // why the job could not run its steps
	waiting   string // why the steps could not start yet, for a failure that can pass
	waitErr   error  // that failure
	steps     []stepResult
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
		res = e.execute(runCtx, repoOf(p), j)
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

// execute runs the steps (and the health check) of j.
func (e *Engine) execute(ctx context.Context, repo report.Repo, j *Job) runResult {
	file, err := e.source.Pipeline(ctx, repo, j.ConfigSHA)
	if transient.Is(err) {
		return runResult{waiting: fmt.Sprintf("reading %s failed (%s)", config.PipelinePath, transient.Describe(err)), waitErr: err}
	}
	if err != nil {
		return runResult{problem: fmt.Sprintf("Could not read %s at %s: %v", config.PipelinePath, short(j.ConfigSHA), err)}
	}
	fs, ok := file.Stage(j.Stage)
	if !ok {
		return runResult{problem: fmt.Sprintf("Stage %s is no longer in %s.", j.Stage, config.PipelinePath), file: file}
	}
	// Read for every job, so that a rotated secret takes effect at the next.
	granted, err := secrets.Load(e.opts.SecretsDir, repo.Owner, repo.Name, j.Stage, fs.Secrets)
	if err != nil {
		zeroLog(ctx).Warn().Err(err).Msg("A secret of the stage is missing; not running its steps.")
		return runResult{problem: fmt.Sprintf("Missing %s. No step ran.", err), file: file}
	}
	redact := secrets.Forms(slices.Concat(e.opts.Secrets, slices.Collect(maps.Values(granted)))...)
	dir, release, err := e.work.Prepare(ctx, repo.FullName(), j.SHA, j.Cache == "skip", func(ctx context.Context) (io.ReadCloser, error) {
		return e.source.Archive(ctx, repo, j.SHA)
	})
	if transient.Is(err) {
		return runResult{waiting: fmt.Sprintf("downloading the revision failed (%s)", transient.Describe(err)), waitErr: err, file: file}
	}
	if err != nil {
		return runResult{problem: fmt.Sprintf("Could not unpack %s: %v", short(j.SHA), err), file: file}
	}
	defer func() {
		release()
		if err := e.work.Prune(repo.FullName()); err != nil {
			zeroLog(ctx).Warn().Err(err).Msg("Could not prune old revisions.")
		}
	}()
	home := filepath.Join(filepath.Dir(dir), ".home")
	_ = os.MkdirAll(home, 0o700)

	vars := map[string]string{
		"RAILYARD_STAGE": j.Stage, "RAILYARD_SHA": j.SHA, "RAILYARD_PREVIOUS_SHA": j.Previous,
		"RAILYARD_OPERATION": string(j.Operation), "RAILYARD_CACHE": cacheMode(j.Cache),
		"RAILYARD_ACTOR": j.Actor, "RAILYARD_REASON": j.Reason, "RAILYARD_REPOSITORY": repo.FullName(),
	}
	// Run steps, verify, restart and shutdown get them; workflow steps never
	// do (they have GitHub's own secrets). The file cannot name these keys twice.
	maps.Copy(vars, granted)
	steps := fs.Steps
	switch j.Operation {
	case OpRestart:
		steps = fs.Restart
	case OpShutdown:
		steps = fs.Shutdown
	}
	res := runResult{file: file}
	var logs strings.Builder
	for i, st := range steps {
		if why := e.skipReason(j, st); why != "" {
			res.steps = append(res.steps, stepResult{Name: st.Name, Result: "skipped (" + why + ")"})
			continue
		}
		if ctx.Err() != nil {
			res.steps = append(res.steps, stepResult{Name: st.Name, Result: "skipped (cancelled)"})
			continue
		}
		var ok bool
		if st.Workflow != "" {
			ok = e.runWorkflow(ctx, repo, file.Branch, j, st, &res, &logs)
		} else {
			r := runner.Run(ctx, runner.Command{
				Script: st.Run, Dir: dir, Env: runner.Env(home, vars, st.Env),
				Timeout: st.Timeout, Grace: e.opts.Grace, Redact: redact,
				Sandbox: e.work.Sandbox,
			})
			res.steps = append(res.steps, stepResult{Name: st.Name, Result: resultWord(r), Duration: r.Duration})
			fmt.Fprintf(&logs, "### %s (%s)\n\n```\n%s\n```\n", st.Name, resultWord(r), r.Output)
			ok = r.OK()
		}
		if !ok {
			res.failed = st.Name
			markRest(&res, steps[i+1:])
			break
		}
	}
	if res.failed == "" && ctx.Err() == nil && fs.Verify != nil && j.Operation != OpShutdown {
		if !e.verify(ctx, fs.Verify, dir, home, vars, redact, &res, &logs) {
			res.failed = "verify"
		}
	}
	res.ok = res.failed == "" && ctx.Err() == nil
	res.log = logs.String()
	return res
}

// runWorkflow runs a workflow: step as a GitHub Actions run of the
// pipeline branch, which is told the revision through its sha input.
func (e *Engine) runWorkflow(ctx context.Context, repo report.Repo, branch string, j *Job, st config.Step, res *runResult, logs *strings.Builder) bool {
	if e.opts.Workflows == nil {
		res.steps = append(res.steps, stepResult{Name: st.Name, Result: "failure: workflow steps are not available"})
		fmt.Fprintf(logs, "### %s (failure)\n\nThis Railyard was built without GitHub Actions access.\n", st.Name)
		return false
	}
	inputs := map[string]string{"stage": j.Stage, "sha": j.SHA, "operation": string(j.Operation)}
	maps.Copy(inputs, st.Inputs)
	r := e.opts.Workflows.Run(ctx, actions.Step{
		Repo: repo, Key: j.ID + ":" + st.Name, Workflow: st.Workflow, Ref: branch,
		Inputs: inputs, Timeout: st.Timeout,
	})
	word := workflowWord(r)
	res.steps = append(res.steps, stepResult{Name: st.Name, Result: word, Duration: r.Duration, URL: r.URL})
	fmt.Fprintf(logs, "### %s (%s)\n\n", st.Name, word)
	if r.URL != "" {
		fmt.Fprintf(logs, "Workflow run: %s\n", r.URL)
	} else {
		fmt.Fprintf(logs, "Workflow %s: no run.\n", st.Workflow)
	}
	return r.OK()
}

func workflowWord(r actions.Result) string {
	return stepWord(r.OK(), r.Cancelled, r.TimedOut, r.Err, "failure (run "+strings.ReplaceAll(r.Conclusion, "_", " ")+")")
}

func markRest(res *runResult, rest []config.Step) {
	for _, st := range rest {
		res.steps = append(res.steps, stepResult{Name: st.Name, Result: "skipped (earlier step failed)"})
	}
}

// verify runs the health check, up to 1+Retries times, Interval apart.
func (e *Engine) verify(ctx context.Context, v *config.Verify, dir, home string, vars map[string]string, redact []string, res *runResult, logs *strings.Builder) bool {
	for attempt := 1; attempt <= v.Retries+1; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(v.Interval):
			}
		}
		r := runner.Run(ctx, runner.Command{
			Script: v.Run, Dir: dir, Env: runner.Env(home, vars, v.Env),
			Timeout: v.Timeout, Grace: e.opts.Grace, Redact: redact,
			Sandbox: e.work.Sandbox,
		})
		name := fmt.Sprintf("verify (attempt %d of %d)", attempt, v.Retries+1)
		res.steps = append(res.steps, stepResult{Name: name, Result: resultWord(r), Duration: r.Duration})
		fmt.Fprintf(logs, "### %s (%s)\n\n```\n%s\n```\n", name, resultWord(r), r.Output)
		if r.OK() {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
	return false
}

func (e *Engine) skipReason(j *Job, st config.Step) string {
	if slices.Contains(j.Skip, st.Name) {
		return "skip=" + st.Name
	}
	if st.Infra && !j.Infra {
		switch j.Operation {
		case OpRollback, OpRollForward, OpAutoRollback:
			return "infra"
		}
	}
	return ""
}

func cacheMode(c string) string {
	if c == "skip" {
		return "skip"
	}
	return "use"
}

func resultWord(r runner.Result) string {
	return stepWord(r.OK(), r.Cancelled, r.TimedOut, r.Err, fmt.Sprintf("failure (exit %d)", r.ExitCode))
}

// stepWord says how a step ended; failed is the word for a plain failure.
func stepWord(ok, cancelled, timedOut bool, err error, failed string) string {
	switch {
	case ok:
		return "success"
	case cancelled:
		return "cancelled"
	case timedOut:
		return "timed out"
	case err != nil:
		return "failure: " + err.Error()
	}
	return failed
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
