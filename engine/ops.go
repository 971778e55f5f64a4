package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/railyard/railyard/config"
)

// Request carries what every operation needs: who asks, why, and the
// pipeline file in force.
type Request struct {
	Repo Repo
	// File is the pipeline file read at ConfigSHA on the default branch.
	File      *config.Pipeline
	ConfigSHA string
	// Head is the head of the pipeline branch: pipeline-wide operations
	// get their railyard/pipeline check run there.
	Head   string
	Actor  string
	Reason string
	// Idempotency, when set, makes the operation happen at most once: the
	// queue delivers at least once, so a job may run again after a crash.
	Idempotency string
}

// Result says what an accepted operation did, for the reply to a person.
type Result struct {
	Message string
	// CheckRunKey names the check run of the job it queued, if any.
	CheckRunKey string
}

// Refusal is an operation not allowed in the current state; it changed
// nothing.
type Refusal struct {
	Op    Operation
	Stage string
	Why   string
}

func (r *Refusal) Error() string {
	if r.Stage == "" {
		return fmt.Sprintf("cannot %s: %s", r.Op, r.Why)
	}
	return fmt.Sprintf("cannot %s %s: %s", r.Op, r.Stage, r.Why)
}

// IsRefusal reports whether err is a Refusal.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

func refuse(op Operation, stage, format string, args ...any) error {
	return &Refusal{Op: op, Stage: stage, Why: fmt.Sprintf(format, args...)}
}

// apply runs an operation's transition, at most once per idempotency key.
func (e *Engine) apply(ctx context.Context, req Request, res *Result, fn func(p *Pipeline, fx *effects) error) error {
	return e.update(ctx, req.Repo.FullName(), func(p *Pipeline, fx *effects) error {
		if k := req.Idempotency; k != "" {
			if slices.Contains(p.Seen, k) {
				*res = Result{Message: "Already done: this request was carried out before."}
				return nil
			}
			p.Seen = pushFront(p.Seen, k, keepSeen)
		}
		return fn(p, fx)
	})
}

// CheckRunKey is the report key of a job's check run.
func CheckRunKey(jobID string) string { return "job:" + jobID }

func deploymentKey(jobID string) string { return "deploy:" + jobID }

// prepare loads the stage of an operation, syncing stages with the file.
func (e *Engine) stageOf(p *Pipeline, req Request, op Operation, name string) (*Stage, *config.Stage, error) {
	e.bind(p, req)
	fs, ok := req.File.Stage(name)
	if !ok {
		return nil, nil, refuse(op, name, "there is no stage %q in %s", name, config.PipelinePath)
	}
	return p.Stage(name), fs, nil
}

// bind refreshes the identity and stage list of p from the request.
func (e *Engine) bind(p *Pipeline, req Request) {
	p.Repo = req.Repo.FullName()
	if req.Repo.InstallationID != 0 {
		p.InstallationID = req.Repo.InstallationID
	}
	if req.File != nil {
		p.sync(req.File)
		p.Branch = req.File.Branch
	}
}

func (e *Engine) newJob(req Request, stage string, op Operation, sha string) *Job {
	j := &Job{
		ID: newID(), Stage: stage, SHA: sha, Operation: op,
		Actor: req.Actor, Reason: req.Reason, ConfigSHA: req.ConfigSHA,
		Created: e.opts.Now().UTC(),
	}
	if fs, ok := req.File.Stage(stage); ok {
		j.Production = fs.Production
	}
	return j
}

func (e *Engine) audit(fx *effects, req Request, op Operation, stage, from, to, job string) {
	fx.audit = append(fx.audit, AuditEntry{
		At: e.opts.Now().UTC(), Actor: req.Actor, Operation: op, Stage: stage,
		From: from, To: to, Reason: req.Reason, Job: job,
	})
}

// Deploy starts the pipeline for a push of sha to the pipeline branch: the
// first stage is queued, or the revision waits (held) when it may not start.
// seq numbers pushes in delivery order (0: unnumbered); a push older than
// one already seen is ignored, so the newest revision always ends up last.
func (e *Engine) Deploy(ctx context.Context, req Request, sha string, seq int64) (Result, error) {
	return e.deploy(ctx, req, OpPush, sha, seq)
}

// DeployByHand starts the pipeline for sha as a push of it would: /deploy.
// The caller checks that sha is on the pipeline branch.
func (e *Engine) DeployByHand(ctx context.Context, req Request, sha string) (Result, error) {
	return e.deploy(ctx, req, OpDeploy, sha, 0)
}

// deploy starts the first stage for sha; by is what the audit log names:
// a push, or a person's deploy.
func (e *Engine) deploy(ctx context.Context, req Request, by Operation, sha string, seq int64) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		e.bind(p, req)
		if seq != 0 && seq <= p.LastPush {
			res = Result{Message: fmt.Sprintf("Ignored %s: a newer push arrived first.", short(sha))}
			return nil
		}
		p.LastPush = max(p.LastPush, seq)
		first := p.Stages[0]
		j := e.newJob(req, first.Name, OpDeploy, sha)
		e.audit(fx, req, by, first.Name, first.Current, sha, j.ID)
		e.offer(p, first, j, fx)
		res = e.accepted(j, first, "Deploying %s to %s.", short(sha), first.Name)
		return nil
	})
	return res, err
}

// Promote queues stage for a revision that succeeded in the stage before
// it; by default the previous stage's current revision.
func (e *Engine) Promote(ctx context.Context, req Request, stage, sha string) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		s, _, err := e.stageOf(p, req, OpPromote, stage)
		if err != nil {
			return err
		}
		i := slices.Index(p.Stages, s)
		if i == 0 {
			return refuse(OpPromote, stage, "it is the first stage; pushes to %s deploy it", branchName(p))
		}
		prev := p.Stages[i-1]
		if sha == "" {
			sha = prev.Current
			if sha == "" {
				return refuse(OpPromote, stage, "%s has no deployed revision to promote", prev.Name)
			}
		}
		if !prev.succeeded(sha) {
			return refuse(OpPromote, stage, "%s has not succeeded in %s", short(sha), prev.Name)
		}
		if err := e.mayStartNew(p, OpPromote, stage); err != nil {
			return err
		}
		j := e.newJob(req, stage, OpPromote, sha)
		if w := s.Waiting; w != nil && w.SHA == sha {
			// The revision already waits here (for /promote, or behind a
			// block): promote that job, so it keeps its check run.
			w.Operation, w.Actor, w.Reason, w.Manual = OpPromote, req.Actor, req.Reason, false
			j = w
		}
		j.Previous = s.Current
		e.audit(fx, req, OpPromote, stage, s.Current, sha, j.ID)
		e.offer(p, s, j, fx)
		res = e.accepted(j, s, "Promoting %s to %s.", short(sha), stage)
		return nil
	})
	return res, err
}

// PromoteCandidate returns the revision Promote picks when given none: the
// current revision of the stage before stage; "" when there is none.
func (e *Engine) PromoteCandidate(ctx context.Context, repo string, file *config.Pipeline, stage string) (string, error) {
	i := file.Index(stage)
	if i <= 0 {
		return "", nil
	}
	p, err := e.load(ctx, e.rdb, repo)
	if err != nil {
		return "", err
	}
	if prev := p.Stage(file.Stages[i-1].Name); prev != nil {
		return prev.Current, nil
	}
	return "", nil
}

// mayStartNew refuses operations that start normal work while the pipeline
// is stopped or patched.
func (e *Engine) mayStartNew(p *Pipeline, op Operation, stage string) error {
	if p.Stopped != nil {
		return refuse(op, stage, "the pipeline is stopped by @%s (%s); /resume first", p.Stopped.Actor, p.Stopped.Reason)
	}
	if p.Patch != nil {
		return refuse(op, stage, "the pipeline is in patch mode (%s at %s by @%s); /release first", p.Patch.Stage, short(p.Patch.SHA), p.Patch.Actor)
	}
	return nil
}

// accepted words the reply for a job that was queued or made to wait.
func (e *Engine) accepted(j *Job, s *Stage, format string, args ...any) Result {
	msg := fmt.Sprintf(format, args...)
	if s.Waiting == j {
		msg += " It waits: " + j.Hold + "."
	}
	return Result{Message: msg, CheckRunKey: CheckRunKey(j.ID)}
}

// Cancel stops the running job of a stage; its process group is terminated
// by the worker that runs it. With nothing running it drops the revision
// waiting for the stage. sha, when given, names which of the two is meant:
// the waiting revision can be dropped while another job runs.
func (e *Engine) Cancel(ctx context.Context, req Request, stage, sha string) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		s, _, err := e.stageOf(p, req, OpCancel, stage)
		if err != nil {
			return err
		}
		running := false
		switch s.State {
		case InProgress, RollingBack, RollingForward:
			running = sha == "" || s.Job.SHA == sha
		}
		w := s.Waiting
		switch {
		case running:
			s.State = Cancelling
			s.Job.CancelledBy = req.Actor
			e.audit(fx, req, OpCancel, stage, s.Job.SHA, "", s.Job.ID)
			res = Result{Message: fmt.Sprintf("Cancelling %s of %s at %s.", s.Job.Operation, stage, short(s.Job.SHA)), CheckRunKey: CheckRunKey(s.Job.ID)}
		case w != nil && (sha == "" && !s.active() || w.SHA == sha):
			s.Waiting = nil
			w.CancelledBy, w.Hold = req.Actor, ""
			e.audit(fx, req, OpCancel, stage, w.SHA, "", w.ID)
			// It never started, so it has no deployment to end.
			e.reportEnd(fx, p, w, outcome{conclusion: "cancelled", summary: "Dropped before it started.", reported: true})
			res = Result{Message: fmt.Sprintf("Dropped the %s of %s that waited for %s.", w.Operation, short(w.SHA), stage), CheckRunKey: CheckRunKey(w.ID)}
		case sha != "":
			return refuse(OpCancel, stage, "%s neither runs nor waits there", short(sha))
		case w != nil:
			return refuse(OpCancel, stage, "it is %s, not running; to drop %s, which waits for it, give to=%s", s.State, short(w.SHA), short(w.SHA))
		default:
			return refuse(OpCancel, stage, "it is %s, not running, and no revision waits for it", s.State)
		}
		return nil
	})
	return res, err
}

// Retry repeats a failed or cancelled stage's job for the same revision, as
// it was: a
// rollback stays a rollback (same skips, infra steps as before, no
// promotion, its blocks kept); only a deploy or promotion runs as a retry,
// which promotes on success.
func (e *Engine) Retry(ctx context.Context, req Request, stage string) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		s, _, err := e.stageOf(p, req, OpRetry, stage)
		if err != nil {
			return err
		}
		if s.State != Failed && s.State != Cancelled {
			return refuse(OpRetry, stage, "it is %s, not failed or cancelled", s.State)
		}
		failed := s.Job
		op := failed.Operation.repeatedAs()
		switch op {
		case OpRetry:
			if err := e.mayStartNew(p, OpRetry, stage); err != nil {
				return err
			}
		case OpPatch:
			// A patch is repeated only inside the patch mode it started.
			if h := p.Patch; h == nil || h.Stage != stage || h.SHA != failed.SHA {
				return refuse(OpRetry, stage, "its patch of %s is no longer the pipeline's patch mode; /patch again", short(failed.SHA))
			}
		}
		j := e.newJob(req, stage, op, failed.SHA)
		j.Previous = s.Current
		j.Skip, j.Infra, j.Cache = failed.Skip, failed.Infra, failed.Cache
		e.audit(fx, req, OpRetry, stage, s.Current, j.SHA, j.ID)
		e.start(p, s, j, fx)
		res = e.accepted(j, s, "Retrying %s of %s at %s.", failed.Operation, stage, short(j.SHA))
		return nil
	})
	return res, err
}

// Move is a rollback or roll forward target.
type Move struct {
	Stage string
	SHA   string
	Skip  []string
	Infra bool
}

// Rollback deploys an older revision to a stage, cancelling what runs
// there; the stage and the one after it become blocked.
func (e *Engine) Rollback(ctx context.Context, req Request, m Move) (Result, error) {
	return e.move(ctx, req, OpRollback, m)
}

// RollForward deploys a newer revision to a stage, cancelling what runs
// there; the stage becomes blocked.
func (e *Engine) RollForward(ctx context.Context, req Request, m Move) (Result, error) {
	return e.move(ctx, req, OpRollForward, m)
}

func (e *Engine) move(ctx context.Context, req Request, op Operation, m Move) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		s, fs, err := e.stageOf(p, req, op, m.Stage)
		if err != nil {
			return err
		}
		if !p.built(m.SHA) {
			return refuse(op, m.Stage, "%s never passed %s", short(m.SHA), p.Stages[0].Name)
		}
		for _, name := range m.Skip {
			if _, ok := fs.Step(name); !ok {
				return refuse(op, m.Stage, "%s has no step %q", m.Stage, name)
			}
		}
		j := e.newJob(req, m.Stage, op, m.SHA)
		j.Previous, j.Skip, j.Infra = s.Current, m.Skip, m.Infra
		e.audit(fx, req, op, m.Stage, s.Current, m.SHA, j.ID)
		why := fmt.Sprintf("%s by @%s", op, req.Actor)
		e.block(s, why)
		if op == OpRollback {
			if next, ok := req.File.Next(m.Stage); ok {
				e.block(p.Stage(next.Name), why)
			}
		}
		e.preempt(p, s, j, fx)
		verb := map[Operation]string{OpRollback: "Rolling back", OpRollForward: "Rolling forward"}[op]
		res = e.accepted(j, s, "%s %s to %s.", verb, m.Stage, short(m.SHA))
		return nil
	})
	return res, err
}

func (e *Engine) block(s *Stage, why string) {
	s.Blocked, s.BlockedBy = true, why
}

// preempt starts j at once in s: a job running there is cancelled (its
// worker sees the stage has moved on) and a waiting one stays waiting.
func (e *Engine) preempt(p *Pipeline, s *Stage, j *Job, fx *effects) {
	if s.active() {
		// Its end is reported now: nobody runs a queued job yet, and the
		// process running a started one may be dead and never see it was
		// replaced. A live worker adds its steps to the check run later.
		e.reportEnd(fx, p, s.Job, outcome{conclusion: "cancelled", summary: fmt.Sprintf("Superseded by %s of %s to %s.", j.Operation, s.Name, short(j.SHA))})
	}
	e.start(p, s, j, fx)
}

// Unblock lets automatic promotion into a stage resume.
func (e *Engine) Unblock(ctx context.Context, req Request, stage string) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		s, _, err := e.stageOf(p, req, OpUnblock, stage)
		if err != nil {
			return err
		}
		if !s.Blocked {
			return refuse(OpUnblock, stage, "it is not blocked")
		}
		s.Blocked, s.BlockedBy = false, ""
		e.audit(fx, req, OpUnblock, stage, "", "", "")
		e.pipelineCheck(fx, p, req, OpUnblock, fmt.Sprintf("Unblocked %s", stage))
		e.kick(p, fx)
		res = Result{Message: fmt.Sprintf("Unblocked %s: automatic promotion into it resumes.", stage)}
		return nil
	})
	return res, err
}

// Stop holds the pipeline: running jobs finish, nothing new starts.
func (e *Engine) Stop(ctx context.Context, req Request) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		e.bind(p, req)
		if p.Stopped != nil {
			return refuse(OpStop, "", "the pipeline is already stopped by @%s (%s)", p.Stopped.Actor, p.Stopped.Reason)
		}
		p.Stopped = &Hold{Actor: req.Actor, Reason: req.Reason, At: e.opts.Now().UTC()}
		e.audit(fx, req, OpStop, "", "", "", "")
		e.pipelineCheck(fx, p, req, OpStop, "Pipeline stopped")
		res = Result{Message: "Stopped the pipeline: running stages finish, nothing new starts, pushes are held."}
		return nil
	})
	return res, err
}

// Resume lifts a stop; held and waiting revisions start.
func (e *Engine) Resume(ctx context.Context, req Request) (Result, error) {
	return e.lift(ctx, req, OpResume, func(p *Pipeline) **Hold { return &p.Stopped },
		"the pipeline is not stopped", "Pipeline resumed", "Resumed the pipeline.")
}

// lift clears a pipeline-wide hold (stop or patch mode) and starts what
// waited behind it.
func (e *Engine) lift(ctx context.Context, req Request, op Operation, hold func(*Pipeline) **Hold, notHeld, title, done string) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		e.bind(p, req)
		h := hold(p)
		if *h == nil {
			return refuse(op, "", "%s", notHeld)
		}
		*h = nil
		e.audit(fx, req, op, "", "", "", "")
		e.pipelineCheck(fx, p, req, op, title)
		res = Result{Message: done + startedText(e.kick(p, fx))}
		return nil
	})
	return res, err
}

// Patch deploys a revision to one stage and holds normal deployments until
// Release.
func (e *Engine) Patch(ctx context.Context, req Request, stage, sha string) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		s, _, err := e.stageOf(p, req, OpPatch, stage)
		if err != nil {
			return err
		}
		if p.Patch != nil {
			return refuse(OpPatch, stage, "the pipeline is already in patch mode (%s at %s by @%s); /release first", p.Patch.Stage, short(p.Patch.SHA), p.Patch.Actor)
		}
		p.Patch = &Hold{Actor: req.Actor, Reason: req.Reason, At: e.opts.Now().UTC(), Stage: stage, SHA: sha}
		j := e.newJob(req, stage, OpPatch, sha)
		j.Previous = s.Current
		e.audit(fx, req, OpPatch, stage, s.Current, sha, j.ID)
		e.pipelineCheck(fx, p, req, OpPatch, fmt.Sprintf("Patch mode: %s at %s", stage, short(sha)))
		e.preempt(p, s, j, fx)
		res = e.accepted(j, s, "Patch mode: deploying %s to %s; normal deployments are held until /release.", short(sha), stage)
		return nil
	})
	return res, err
}

// Release leaves patch mode; the newest held revision starts from the first
// stage.
func (e *Engine) Release(ctx context.Context, req Request) (Result, error) {
	return e.lift(ctx, req, OpRelease, func(p *Pipeline) **Hold { return &p.Patch },
		"the pipeline is not in patch mode", "Patch mode released", "Left patch mode.")
}

func startedText(jobs []*Job) string {
	if len(jobs) == 0 {
		return ""
	}
	parts := make([]string, len(jobs))
	for i, j := range jobs {
		parts[i] = fmt.Sprintf("%s at %s", j.Stage, short(j.SHA))
	}
	return " Started " + strings.Join(parts, ", ") + "."
}

// Redeploy re-runs a stage's steps for its current revision.
func (e *Engine) Redeploy(ctx context.Context, req Request, stage, cache string) (Result, error) {
	return e.again(ctx, req, OpRedeploy, stage, cache)
}

// Restart runs a stage's restart steps for its current revision.
func (e *Engine) Restart(ctx context.Context, req Request, stage string) (Result, error) {
	return e.again(ctx, req, OpRestart, stage, "")
}

// Shutdown runs a stage's shutdown steps for its current revision.
func (e *Engine) Shutdown(ctx context.Context, req Request, stage string) (Result, error) {
	return e.again(ctx, req, OpShutdown, stage, "")
}

func (e *Engine) again(ctx context.Context, req Request, op Operation, stage, cache string) (Result, error) {
	var res Result
	err := e.apply(ctx, req, &res, func(p *Pipeline, fx *effects) error {
		s, fs, err := e.stageOf(p, req, op, stage)
		if err != nil {
			return err
		}
		if s.Current == "" {
			return refuse(op, stage, "it has no current revision")
		}
		if s.active() {
			return refuse(op, stage, "it is %s; wait for it or /cancel it", s.State)
		}
		if op == OpRestart && len(fs.Restart) == 0 || op == OpShutdown && len(fs.Shutdown) == 0 {
			return refuse(op, stage, "%s has no %s steps in %s", stage, op, config.PipelinePath)
		}
		j := e.newJob(req, stage, op, s.Current)
		j.Previous, j.Cache = s.Current, cache
		e.audit(fx, req, op, stage, s.Current, s.Current, j.ID)
		e.start(p, s, j, fx)
		res = e.accepted(j, s, "Queued %s of %s at %s.", op, stage, short(j.SHA))
		return nil
	})
	return res, err
}

func branchName(p *Pipeline) string {
	if p.Branch != "" {
		return p.Branch
	}
	return "the default branch"
}
