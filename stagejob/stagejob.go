package stagejob

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/secrets"
	"github.com/railyard/railyard/transient"
)

// Source reads what a job needs from GitHub (package source).
type Source interface {
	// Pipeline returns the pipeline file at commit sha.
	Pipeline(ctx context.Context, repo report.Repo, sha string) (*config.Pipeline, error)
	// Archive returns the gzip tarball of the revision.
	Archive(ctx context.Context, repo report.Repo, sha string) (io.ReadCloser, error)
}

// Workflows runs steps as GitHub Actions workflow runs (package actions).
type Workflows interface {
	Run(ctx context.Context, st actions.Step) actions.Result
}

// Options are what every job of a Runner shares.
type Options struct {
	// Grace is the SIGTERM→SIGKILL grace of a stopped step.
	Grace time.Duration
	// Secrets are the bot's own secrets, redacted from step output.
	Secrets []string
	// SecretsDir holds the secrets operators grant stages (package secrets).
	SecretsDir string
	// Workflows runs workflow: steps; without it they fail saying so.
	Workflows Workflows
}

// Runner runs stage jobs. It is safe for concurrent use.
type Runner struct {
	source Source
	work   *runner.Workspace
	opts   Options
}

// New returns a Runner that reads from src and unpacks revisions into ws.
func New(src Source, ws *runner.Workspace, opts Options) *Runner {
	return &Runner{source: src, work: ws, opts: opts}
}

// Job is one run of a stage, as the engine made it.
type Job struct {
	Repo report.Repo
	// ID names the job's workflow runs; it stays the same when another
	// process takes the job over, so that one run is found again.
	ID    string
	Stage string
	SHA   string
	// Previous is the stage's revision before this job (RAILYARD_PREVIOUS_SHA).
	Previous string
	// Operation is what the job does (docs/reference.md#operations); it
	// picks the steps and is RAILYARD_OPERATION.
	Operation string
	Actor     string
	Reason    string
	// ConfigSHA is the commit the pipeline file is read at.
	ConfigSHA string
	// Skip names steps not to run (skip=).
	Skip []string
	// Infra runs infra steps in a rollback or roll-forward too.
	Infra bool
	// FreshCache unpacks the revision afresh instead of reusing an
	// unpacked copy (cache=skip).
	FreshCache bool
	// Lock is the run's stage lock: a workflow step dispatches, and writes
	// to the store, only while the run holds it (actions.Step.Lock).
	Lock *lease.Lease
}

// The operations whose steps differ from a deploy's; the engine names them
// (its Operation values).
const (
	opRollback     = "rollback"
	opRollForward  = "rollforward"
	opAutoRollback = "auto-rollback"
	opRestart      = "restart"
	opShutdown     = "shutdown"
)

// Step is one step's line in the check run summary.
type Step struct {
	Name     string
	Result   string // success, failure…, skipped (…), cancelled, timed out
	Duration time.Duration
	URL      string // a workflow step's run
}

// Health is how the stage's health check (verify) went.
type Health string

const (
	HealthNotRun Health = ""       // no verify, or the steps before it did not all succeed
	HealthPassed Health = "passed" // an attempt succeeded
	HealthFailed Health = "failed" // every attempt failed, or it was stopped
)

// FailedVerify is Result.Failed when the health check failed.
const FailedVerify = "verify"

// Result is how a job went. Exactly one of these holds: OK; Waiting (the
// steps could not start yet, for a GitHub failure that can pass: run the
// job again later); Problem without Failed (the steps could not run, for
// good); Failed (a step or verify failed); Cancelled (ctx ended first).
type Result struct {
	OK        bool
	Cancelled bool   // ctx ended before the steps finished
	Failed    string // the step, or FailedVerify, that failed
	Problem   string // why the steps could not run
	Waiting   string // why the steps could not start yet
	WaitErr   error  // the failure that can pass
	Health    Health
	Steps     []Step
	// Log is the check run's text: each step's heading and its redacted
	// output tail, or its workflow run.
	Log string
	// File is the pipeline file at ConfigSHA; nil when it could not be read.
	File *config.Pipeline
}

// Run runs j until its steps end or ctx does. Steps still to run when ctx
// ends are skipped, and the running one is stopped.
func (r *Runner) Run(ctx context.Context, j Job) Result {
	file, err := r.source.Pipeline(ctx, j.Repo, j.ConfigSHA)
	if transient.Is(err) {
		return Result{Waiting: fmt.Sprintf("reading %s failed (%s)", config.PipelinePath, transient.Describe(err)), WaitErr: err}
	}
	if err != nil {
		return Result{Problem: fmt.Sprintf("Could not read %s at %s: %v", config.PipelinePath, short(j.ConfigSHA), err)}
	}
	fs, ok := file.Stage(j.Stage)
	if !ok {
		return Result{Problem: fmt.Sprintf("Stage %s is no longer in %s.", j.Stage, config.PipelinePath), File: file}
	}
	// Read for every job, so that a rotated secret takes effect at the next.
	granted, err := secrets.Load(r.opts.SecretsDir, j.Repo.Owner, j.Repo.Name, j.Stage, fs.Secrets)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("A secret of the stage is missing; not running its steps.")
		return Result{Problem: fmt.Sprintf("Missing %s. No step ran.", err), File: file}
	}
	repo := j.Repo.FullName()
	dir, release, err := r.work.Prepare(ctx, repo, j.SHA, j.FreshCache, func(ctx context.Context) (io.ReadCloser, error) {
		return r.source.Archive(ctx, j.Repo, j.SHA)
	})
	if transient.Is(err) {
		return Result{Waiting: fmt.Sprintf("downloading the revision failed (%s)", transient.Describe(err)), WaitErr: err, File: file}
	}
	if err != nil {
		return Result{Problem: fmt.Sprintf("Could not unpack %s: %v", short(j.SHA), err), File: file}
	}
	defer func() {
		release()
		if err := r.work.Prune(repo); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not prune old revisions.")
		}
	}()
	home := filepath.Join(filepath.Dir(dir), ".home")
	_ = os.MkdirAll(home, 0o700)

	vars := map[string]string{
		"RAILYARD_STAGE": j.Stage, "RAILYARD_SHA": j.SHA, "RAILYARD_PREVIOUS_SHA": j.Previous,
		"RAILYARD_OPERATION": j.Operation, "RAILYARD_CACHE": "use",
		"RAILYARD_ACTOR": j.Actor, "RAILYARD_REASON": j.Reason, "RAILYARD_REPOSITORY": repo,
	}
	if j.FreshCache {
		vars["RAILYARD_CACHE"] = "skip"
	}
	// Run steps, verify, restart and shutdown get them; workflow steps never
	// do (they have GitHub's own secrets). The file cannot name these keys twice.
	maps.Copy(vars, granted)
	x := &execution{
		r: r, j: j, branch: file.Branch, dir: dir, home: home, vars: vars,
		redact: secrets.Forms(slices.Concat(r.opts.Secrets, slices.Collect(maps.Values(granted)))...),
		res:    Result{File: file},
	}
	x.steps(ctx, stepsOf(fs, j.Operation))
	if x.res.Failed == "" && ctx.Err() == nil && fs.Verify != nil && j.Operation != opShutdown {
		if x.verify(ctx, fs.Verify) {
			x.res.Health = HealthPassed
		} else {
			x.res.Health, x.res.Failed = HealthFailed, FailedVerify
		}
	}
	x.res.OK = x.res.Failed == "" && ctx.Err() == nil
	x.res.Cancelled = ctx.Err() != nil
	x.res.Log = x.log.String()
	return x.res
}

// stepsOf is the list of the stage's steps an operation runs.
func stepsOf(fs *config.Stage, op string) []config.Step {
	switch op {
	case opRestart:
		return fs.Restart
	case opShutdown:
		return fs.Shutdown
	}
	return fs.Steps
}

// execution is one job's run in its prepared work directory.
type execution struct {
	r      *Runner
	j      Job
	branch string // the pipeline branch, which workflows run on
	dir    string
	home   string
	vars   map[string]string
	redact []string
	res    Result
	log    strings.Builder
}

// steps runs steps in order until one fails.
func (x *execution) steps(ctx context.Context, steps []config.Step) {
	for i, st := range steps {
		if why := skipReason(x.j, st); why != "" {
			x.add(Step{Name: st.Name, Result: "skipped (" + why + ")"})
			continue
		}
		if ctx.Err() != nil {
			x.add(Step{Name: st.Name, Result: "skipped (cancelled)"})
			continue
		}
		var ok bool
		if st.Workflow != "" {
			ok = x.workflow(ctx, st)
		} else {
			ok = x.shell(ctx, st.Name, st.Run, st.Env, st.Timeout)
		}
		if !ok {
			why := "cancelled"
			if ctx.Err() == nil {
				x.res.Failed, why = st.Name, "earlier step failed"
			}
			for _, rest := range steps[i+1:] {
				x.add(Step{Name: rest.Name, Result: "skipped (" + why + ")"})
			}
			return
		}
	}
}

// skipReason says why st does not run in j; "" when it runs.
func skipReason(j Job, st config.Step) string {
	if slices.Contains(j.Skip, st.Name) {
		return "skip=" + st.Name
	}
	if st.Infra && !j.Infra {
		switch j.Operation {
		case opRollback, opRollForward, opAutoRollback:
			return "infra"
		}
	}
	return ""
}

func (x *execution) add(s Step) { x.res.Steps = append(x.res.Steps, s) }

// shell runs a shell step (or a verify attempt) in the work directory.
func (x *execution) shell(ctx context.Context, name, script string, env map[string]string, timeout time.Duration) bool {
	r := runner.Run(ctx, runner.Command{
		Script: script, Dir: x.dir, Env: runner.Env(x.home, x.vars, env),
		Timeout: timeout, Grace: x.r.opts.Grace, Redact: x.redact,
		Sandbox: x.r.work.Sandbox,
	})
	word := stepWord(r.OK(), r.Cancelled, r.TimedOut, r.Err, fmt.Sprintf("failure (exit %d)", r.ExitCode))
	x.add(Step{Name: name, Result: word, Duration: r.Duration})
	fmt.Fprintf(&x.log, "### %s (%s)\n\n```\n%s\n```\n", name, word, r.Output)
	return r.OK()
}

// workflow runs a workflow: step as a GitHub Actions run of the pipeline
// branch, which is told the revision through its sha input.
func (x *execution) workflow(ctx context.Context, st config.Step) bool {
	if x.r.opts.Workflows == nil {
		x.add(Step{Name: st.Name, Result: "failure: workflow steps are not available"})
		fmt.Fprintf(&x.log, "### %s (failure)\n\nThis Railyard was built without GitHub Actions access.\n", st.Name)
		return false
	}
	inputs := map[string]string{"stage": x.j.Stage, "sha": x.j.SHA, "operation": x.j.Operation}
	maps.Copy(inputs, st.Inputs)
	r := x.r.opts.Workflows.Run(ctx, actions.Step{
		Repo: x.j.Repo, Key: x.j.ID + ":" + st.Name, Workflow: st.Workflow, Ref: x.branch,
		Inputs: inputs, Timeout: st.Timeout, Lock: x.j.Lock,
	})
	word := stepWord(r.OK(), r.Cancelled, r.TimedOut, r.Err, "failure (run "+strings.ReplaceAll(r.Conclusion, "_", " ")+")")
	x.add(Step{Name: st.Name, Result: word, Duration: r.Duration, URL: r.URL})
	fmt.Fprintf(&x.log, "### %s (%s)\n\n", st.Name, word)
	if r.URL != "" {
		fmt.Fprintf(&x.log, "Workflow run: %s\n", r.URL)
	} else {
		fmt.Fprintf(&x.log, "Workflow %s: no run.\n", st.Workflow)
	}
	return r.OK()
}

// verify runs the health check, up to 1+Retries times, Interval apart.
func (x *execution) verify(ctx context.Context, v *config.Verify) bool {
	for attempt := 1; attempt <= v.Retries+1; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(v.Interval):
			}
		}
		name := fmt.Sprintf("verify (attempt %d of %d)", attempt, v.Retries+1)
		if x.shell(ctx, name, v.Run, v.Env, v.Timeout) {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
	return false
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

func short(sha string) string { return sha[:min(7, len(sha))] }
