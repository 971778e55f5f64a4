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
	"github.com/railyard/railyard/gate"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/secrets"
	"github.com/railyard/railyard/transient"
)

var (
	errStale      = errors.New("job is no longer the stage's job")
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
		res = e.execute(runCtx, repoOf(p), j, held)
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

// execute runs the steps (and the health check) of j, whose run holds the
// stage lock held.
func (e *Engine) execute(ctx context.Context, repo Repo, j *Job, held *lease.Lease) runResult {
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
			ok = e.runWorkflow(ctx, repo, file.Branch, j, st, held, &res, &logs)
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
// pipeline branch, which is told the revision through its sha input. It
// is dispatched only while the run holds the stage lock held.
func (e *Engine) runWorkflow(ctx context.Context, repo Repo, branch string, j *Job, st config.Step, held *lease.Lease, res *runResult, logs *strings.Builder) bool {
	if e.opts.Workflows == nil {
		res.steps = append(res.steps, stepResult{Name: st.Name, Result: "failure: workflow steps are not available"})
		fmt.Fprintf(logs, "### %s (failure)\n\nThis Railyard was built without GitHub Actions access.\n", st.Name)
		return false
	}
	inputs := map[string]string{"stage": j.Stage, "sha": j.SHA, "operation": string(j.Operation)}
	maps.Copy(inputs, st.Inputs)
	r := e.opts.Workflows.Run(ctx, actions.Step{
		Repo: repo, Key: j.ID + ":" + st.Name, Workflow: st.Workflow, Ref: branch,
		Inputs: inputs, Timeout: st.Timeout, Lock: held,
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
