package engine

// The pure core: one method of Pipeline per operation, each a transition
// of the state that returns its effects as plain data. No context, store,
// runner, clock or randomness here; the shell (engine.go) commits the new
// state with the effects in one transaction.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/gate"
	"github.com/railyard/railyard/report"
)

// Moment is when a transition happens and the seed of the ids it hands
// out: the core reads no clock and draws no random numbers of its own.
type Moment struct {
	Now  time.Time
	Seed string
}

// Effects is what a transition does besides changing the state, as plain
// data, in order. They commit with the state or not at all.
type Effects struct {
	Jobs   []jobRef       // stage jobs to put on the queue
	Audit  []AuditEntry   // lines for the audit log
	GitHub []report.Write // what GitHub should show
	Reply  Result         // what the person who asked is told
}

// Request carries what every operation needs: who asks, why, and the
// pipeline file in force.
type Request struct {
	Repo report.Repo
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

// Refusal is something a person asked that is not allowed: by the state
// (it changed nothing), the pipeline file or their permission. Its text
// is the reply.
type Refusal struct {
	Op    Operation // "" for a refusal of the request as a whole
	Stage string
	Why   string
}

func (r *Refusal) Error() string {
	switch {
	case r.Op == "":
		return r.Why
	case r.Stage == "":
		return fmt.Sprintf(refusedOp, r.Op, r.Why)
	}
	return fmt.Sprintf(refusedOpOnStage, r.Op, r.Stage, r.Why)
}

// IsRefusal reports whether err is a Refusal.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// Refuse is a refusal of a request as a whole, worded by one of the Why
// texts of render.go.
func Refuse(format string, args ...any) error { return refuse("", "", format, args...) }

func refuse(op Operation, stage, format string, args ...any) error {
	return &Refusal{Op: op, Stage: stage, Why: fmt.Sprintf(format, args...)}
}

// CheckTarget refuses an operation on a stage the pipeline file does not
// have, or skipping a step the stage does not have. The handlers ask it
// before anything else (permission, gate), and every operation on a stage
// again. A command that names no stage has nothing to check.
func CheckTarget(file *config.Pipeline, op Operation, stage string, skip []string) error {
	if stage == "" {
		return nil
	}
	_, err := target(file, op, stage, skip)
	return err
}

func target(file *config.Pipeline, op Operation, stage string, skip []string) (*config.Stage, error) {
	fs, ok := file.Stage(stage)
	if !ok {
		return nil, refuse(op, stage, whyNoStage, stage, stageNames(file))
	}
	for _, name := range skip {
		if _, ok := fs.Step(name); !ok {
			return nil, refuse(op, stage, whyNoStep, stage, name)
		}
	}
	return fs, nil
}

// CheckRunKey is the report key of a job's check run.
func CheckRunKey(jobID string) string { return "job:" + jobID }

func deploymentKey(jobID string) string { return "deploy:" + jobID }

// change is one transition under way: the state it changes and the
// effects it collects.
type change struct {
	p   *Pipeline
	at  Moment
	fx  Effects
	ids int
}

// newID is the next id of this transition: the seed, then seed-2, …
func (c *change) newID() string {
	c.ids++
	if c.ids == 1 {
		return c.at.Seed
	}
	return fmt.Sprintf("%s-%d", c.at.Seed, c.ids)
}

func (c *change) now() time.Time { return c.at.Now.UTC() }

// transition runs fn as one transition of p, at most once per idempotency
// key. A refused or failed one leaves p as it was and has no effects.
func (p *Pipeline) transition(req Request, at Moment, fn func(c *change) error) (Effects, error) {
	before, err := json.Marshal(p)
	if err != nil {
		return Effects{}, err
	}
	c := &change{p: p, at: at}
	if k := req.Idempotency; k != "" {
		if slices.Contains(p.Seen, k) {
			return Effects{Reply: Result{Message: msgAlreadyDone}}, nil
		}
		p.Seen = pushFront(p.Seen, k, keepSeen)
	}
	if err := fn(c); err != nil {
		var old Pipeline
		if uerr := json.Unmarshal(before, &old); uerr != nil {
			return Effects{}, uerr
		}
		*p = old
		return Effects{}, err
	}
	return c.fx, nil
}

// bind refreshes the identity and stage list of p from the request.
func (c *change) bind(req Request) {
	p := c.p
	p.Repo = req.Repo.FullName()
	if req.Repo.InstallationID != 0 {
		p.InstallationID = req.Repo.InstallationID
	}
	if req.File != nil {
		p.sync(req.File)
		p.Branch = req.File.Branch
	}
}

// stageOf binds p and returns the stage an operation acts on.
func (c *change) stageOf(req Request, op Operation, name string, skip []string) (*StageState, *config.Stage, error) {
	c.bind(req)
	fs, err := target(req.File, op, name, skip)
	if err != nil {
		return nil, nil, err
	}
	return c.p.Stage(name), fs, nil
}

// newJob is the one place a stage job is made: its production flag is
// the stage's in the file it runs under.
func (c *change) newJob(file *config.Pipeline, actor, reason, configSHA, stage string, op Operation, sha string) *Job {
	j := &Job{
		ID: c.newID(), Stage: stage, SHA: sha, Operation: op,
		Actor: actor, Reason: reason, ConfigSHA: configSHA, Created: c.now(),
	}
	if file != nil {
		if fs, ok := file.Stage(stage); ok {
			j.Production = fs.Production
		}
	}
	return j
}

func (c *change) jobFor(req Request, stage string, op Operation, sha string) *Job {
	return c.newJob(req.File, req.Actor, req.Reason, req.ConfigSHA, stage, op, sha)
}

func (c *change) audit(actor, reason string, op Operation, stage, from, to, job string) {
	c.fx.Audit = append(c.fx.Audit, AuditEntry{
		At: c.now(), Actor: actor, Operation: op, Stage: stage,
		From: from, To: to, Reason: reason, Job: job,
	})
}

func (c *change) auditReq(req Request, op Operation, stage, from, to, job string) {
	c.audit(req.Actor, req.Reason, op, stage, from, to, job)
}

// accepted words the reply for a job that was queued or made to wait.
func (c *change) accepted(j *Job, s *StageState, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if s.Waiting == j {
		msg += fmt.Sprintf(msgWaits, j.Hold)
	}
	c.fx.Reply = Result{Message: msg, CheckRunKey: CheckRunKey(j.ID)}
}

func (c *change) reply(format string, args ...any) {
	c.fx.Reply = Result{Message: fmt.Sprintf(format, args...)}
}

// Deploy starts the pipeline for a push of sha to the pipeline branch: the
// first stage is queued, or the revision waits (held) when it may not start.
// seq numbers pushes in delivery order (0: unnumbered); a push older than
// one already seen is ignored, so the newest revision always ends up last.
func (p *Pipeline) Deploy(req Request, sha string, seq int64, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error { return c.deploy(req, OpPush, sha, seq) })
}

// DeployByHand starts the pipeline for sha as a push of it would: /deploy.
// The caller checks that sha is on the pipeline branch.
func (p *Pipeline) DeployByHand(req Request, sha string, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error { return c.deploy(req, OpDeploy, sha, 0) })
}

// deploy starts the first stage for sha; by is what the audit log names:
// a push, or a person's deploy.
func (c *change) deploy(req Request, by Operation, sha string, seq int64) error {
	p := c.p
	c.bind(req)
	if seq != 0 && seq <= p.LastPush {
		c.reply(msgIgnoredPush, short(sha))
		return nil
	}
	p.LastPush = max(p.LastPush, seq)
	first := p.Stages[0]
	j := c.jobFor(req, first.Name, OpDeploy, sha)
	c.auditReq(req, by, first.Name, first.Current, sha, j.ID)
	c.offer(first, j)
	c.accepted(j, first, msgDeploying, short(sha), first.Name)
	return nil
}

// Promote queues stage for a revision that succeeded in the stage before
// it; by default the previous stage's current revision.
func (p *Pipeline) Promote(req Request, stage, sha string, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error {
		s, _, err := c.stageOf(req, OpPromote, stage, nil)
		if err != nil {
			return err
		}
		i := slices.Index(p.Stages, s)
		if i == 0 {
			return refuse(OpPromote, stage, whyFirstStage, branchName(p))
		}
		prev := p.Stages[i-1]
		if sha == "" {
			sha = prev.Current
			if sha == "" {
				return refuse(OpPromote, stage, whyNoCurrentBefore, prev.Name)
			}
		}
		if !prev.succeeded(sha) {
			return refuse(OpPromote, stage, whyNotSucceeded, short(sha), prev.Name)
		}
		if err := mayStartNew(p, OpPromote, stage); err != nil {
			return err
		}
		j := c.jobFor(req, stage, OpPromote, sha)
		if w := s.Waiting; w != nil && w.SHA == sha {
			// The revision already waits here (for /promote, or behind a
			// block): promote that job, so it keeps its check run.
			w.Operation, w.Actor, w.Reason, w.Manual = OpPromote, req.Actor, req.Reason, false
			j = w
		}
		j.Previous = s.Current
		c.auditReq(req, OpPromote, stage, s.Current, sha, j.ID)
		c.offer(s, j)
		c.accepted(j, s, msgPromoting, short(sha), stage)
		return nil
	})
}

// PromoteCandidate is the revision Promote picks when given none: the
// current revision of the stage before stage; "" when there is none.
func (p *Pipeline) PromoteCandidate(file *config.Pipeline, stage string) string {
	i := file.Index(stage)
	if i <= 0 {
		return ""
	}
	if prev := p.Stage(file.Stages[i-1].Name); prev != nil {
		return prev.Current
	}
	return ""
}

// mayStartNew refuses operations that start normal work while the pipeline
// is stopped or patched.
func mayStartNew(p *Pipeline, op Operation, stage string) error {
	if p.Stopped != nil {
		return refuse(op, stage, whyStopped, p.Stopped.Actor, p.Stopped.Reason)
	}
	if p.Patched != nil {
		return refuse(op, stage, whyPatched, p.Patched.Stage, short(p.Patched.SHA), p.Patched.Actor)
	}
	return nil
}

// Cancel stops the job of a stage: a running one is terminated by the
// worker that runs it, a queued one that no worker started yet ends at
// once. With nothing queued or running it drops the revision waiting for
// the stage. sha, when given, names which of the two is meant: the
// waiting revision can be dropped while another job runs.
func (p *Pipeline) Cancel(req Request, stage, sha string, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error {
		s, _, err := c.stageOf(req, OpCancel, stage, nil)
		if err != nil {
			return err
		}
		mine := s.Job != nil && (sha == "" || s.Job.SHA == sha)
		w := s.Waiting
		switch {
		case mine && s.State == Queued:
			// No worker started it: it ends here, and its queue job finds
			// it no longer active and does nothing.
			j := s.Job
			j.CancelledBy = req.Actor
			s.State = Cancelled
			c.auditReq(req, OpCancel, stage, j.SHA, "", j.ID)
			c.reportEnd(j, outcome{conclusion: "cancelled", summary: msgDroppedEarly})
			c.reply(msgCancelled, j.Operation, stage, short(j.SHA))
			c.fx.Reply.CheckRunKey = CheckRunKey(j.ID)
			c.kick()
		case mine && (s.State == InProgress || s.State == RollingBack || s.State == RollingForward):
			s.State = Cancelling
			s.Job.CancelledBy = req.Actor
			c.auditReq(req, OpCancel, stage, s.Job.SHA, "", s.Job.ID)
			c.reply(msgCancelling, s.Job.Operation, stage, short(s.Job.SHA))
			c.fx.Reply.CheckRunKey = CheckRunKey(s.Job.ID)
		case w != nil && (sha == "" && !s.active() || w.SHA == sha):
			s.Waiting = nil
			w.CancelledBy, w.Hold = req.Actor, ""
			c.auditReq(req, OpCancel, stage, w.SHA, "", w.ID)
			// It never started, so it has no deployment to end.
			c.reportEnd(w, outcome{conclusion: "cancelled", summary: msgDroppedEarly, reported: true})
			c.reply(msgDropped, w.Operation, short(w.SHA), stage)
			c.fx.Reply.CheckRunKey = CheckRunKey(w.ID)
		case sha != "":
			return refuse(OpCancel, stage, whyNotThere, short(sha))
		case w != nil:
			return refuse(OpCancel, stage, whyNotRunningGive, s.State, short(w.SHA), short(w.SHA))
		default:
			return refuse(OpCancel, stage, whyNotRunning, s.State)
		}
		return nil
	})
}

// Retry repeats a failed or cancelled stage's job for the same revision,
// as it was: a rollback stays a rollback (same skips, infra steps as
// before, no promotion, its blocks kept); only a deploy or promotion runs
// as a retry, which promotes on success.
func (p *Pipeline) Retry(req Request, stage string, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error {
		s, _, err := c.stageOf(req, OpRetry, stage, nil)
		if err != nil {
			return err
		}
		if s.State != Failed && s.State != Cancelled {
			return refuse(OpRetry, stage, whyNotFailed, s.State)
		}
		failed := s.Job
		op := failed.Operation.repeatedAs()
		switch op {
		case OpRetry:
			if err := mayStartNew(p, OpRetry, stage); err != nil {
				return err
			}
		case OpPatch:
			// A patch is repeated only inside the patch mode it started.
			if h := p.Patched; h == nil || h.Stage != stage || h.SHA != failed.SHA {
				return refuse(OpRetry, stage, whyPatchGone, short(failed.SHA))
			}
		}
		j := c.jobFor(req, stage, op, failed.SHA)
		j.Previous = s.Current
		j.Skip, j.Infra, j.Cache = failed.Skip, failed.Infra, failed.Cache
		c.auditReq(req, OpRetry, stage, s.Current, j.SHA, j.ID)
		c.start(s, j)
		c.accepted(j, s, msgRetrying, failed.Operation, stage, short(j.SHA))
		return nil
	})
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
func (p *Pipeline) Rollback(req Request, m Move, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error { return c.move(req, OpRollback, m) })
}

// RollForward deploys a newer revision to a stage, cancelling what runs
// there; the stage becomes blocked.
func (p *Pipeline) RollForward(req Request, m Move, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error { return c.move(req, OpRollForward, m) })
}

func (c *change) move(req Request, op Operation, m Move) error {
	p := c.p
	s, _, err := c.stageOf(req, op, m.Stage, m.Skip)
	if err != nil {
		return err
	}
	if !p.built(m.SHA) {
		return refuse(op, m.Stage, whyNeverBuilt, short(m.SHA), p.Stages[0].Name)
	}
	j := c.jobFor(req, m.Stage, op, m.SHA)
	j.Previous, j.Skip, j.Infra = s.Current, m.Skip, m.Infra
	c.auditReq(req, op, m.Stage, s.Current, m.SHA, j.ID)
	why := fmt.Sprintf(blockedByOp, op, req.Actor)
	s.block(why)
	if op == OpRollback {
		if next, ok := req.File.Next(m.Stage); ok {
			p.Stage(next.Name).block(why)
		}
	}
	c.preempt(s, j)
	c.accepted(j, s, msgMoving, moving[op], m.Stage, short(m.SHA))
	return nil
}

// Unblock lets automatic promotion into a stage resume.
func (p *Pipeline) Unblock(req Request, stage string, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error {
		s, _, err := c.stageOf(req, OpUnblock, stage, nil)
		if err != nil {
			return err
		}
		if !s.Blocked {
			return refuse(OpUnblock, stage, whyNotBlocked)
		}
		s.Blocked, s.BlockedBy = false, ""
		c.auditReq(req, OpUnblock, stage, "", "", "")
		c.pipelineCheck(req, OpUnblock, fmt.Sprintf(titleUnblocked, stage))
		c.kick()
		c.reply(msgUnblocked, stage)
		return nil
	})
}

// Stop holds the pipeline: running jobs finish, nothing new starts.
func (p *Pipeline) Stop(req Request, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error {
		c.bind(req)
		if p.Stopped != nil {
			return refuse(OpStop, "", whyAlreadyStopped, p.Stopped.Actor, p.Stopped.Reason)
		}
		p.Stopped = &Mode{Actor: req.Actor, Reason: req.Reason, At: c.now()}
		c.auditReq(req, OpStop, "", "", "", "")
		c.pipelineCheck(req, OpStop, titleStopped)
		c.reply(msgStopped)
		return nil
	})
}

// Resume lifts a stop; held and waiting revisions start.
func (p *Pipeline) Resume(req Request, at Moment) (Effects, error) {
	return p.lift(req, at, OpResume, &p.Stopped, whyNotStopped, titleResumed, msgResumed)
}

// Release leaves patch mode; the newest held revision starts from the first
// stage.
func (p *Pipeline) Release(req Request, at Moment) (Effects, error) {
	return p.lift(req, at, OpRelease, &p.Patched, whyNotPatched, titleReleased, msgReleased)
}

// lift clears a pipeline-wide mode (stop or patch) and starts what waited
// behind it.
func (p *Pipeline) lift(req Request, at Moment, op Operation, mode **Mode, notSet, title, done string) (Effects, error) {
	return p.transition(req, at, func(c *change) error {
		c.bind(req)
		if *mode == nil {
			return refuse(op, "", "%s", notSet)
		}
		*mode = nil
		c.auditReq(req, op, "", "", "", "")
		c.pipelineCheck(req, op, title)
		c.reply("%s", done+startedText(c.kick()))
		return nil
	})
}

// Patch deploys a revision to one stage and holds normal deployments until
// Release.
func (p *Pipeline) Patch(req Request, stage, sha string, at Moment) (Effects, error) {
	return p.transition(req, at, func(c *change) error {
		s, _, err := c.stageOf(req, OpPatch, stage, nil)
		if err != nil {
			return err
		}
		if p.Patched != nil {
			return refuse(OpPatch, stage, whyAlreadyPatched, p.Patched.Stage, short(p.Patched.SHA), p.Patched.Actor)
		}
		p.Patched = &Mode{Actor: req.Actor, Reason: req.Reason, At: c.now(), Stage: stage, SHA: sha}
		j := c.jobFor(req, stage, OpPatch, sha)
		j.Previous = s.Current
		c.auditReq(req, OpPatch, stage, s.Current, sha, j.ID)
		c.pipelineCheck(req, OpPatch, fmt.Sprintf(titlePatch, stage, short(sha)))
		c.preempt(s, j)
		c.accepted(j, s, msgPatching, short(sha), stage)
		return nil
	})
}

// Redeploy re-runs a stage's steps for its current revision.
func (p *Pipeline) Redeploy(req Request, stage, cache string, at Moment) (Effects, error) {
	return p.again(req, at, OpRedeploy, stage, cache)
}

// Restart runs a stage's restart steps for its current revision.
func (p *Pipeline) Restart(req Request, stage string, at Moment) (Effects, error) {
	return p.again(req, at, OpRestart, stage, "")
}

// Shutdown runs a stage's shutdown steps for its current revision.
func (p *Pipeline) Shutdown(req Request, stage string, at Moment) (Effects, error) {
	return p.again(req, at, OpShutdown, stage, "")
}

func (p *Pipeline) again(req Request, at Moment, op Operation, stage, cache string) (Effects, error) {
	return p.transition(req, at, func(c *change) error {
		s, fs, err := c.stageOf(req, op, stage, nil)
		if err != nil {
			return err
		}
		if s.Current == "" {
			return refuse(op, stage, whyNoCurrent)
		}
		if s.active() {
			return refuse(op, stage, whyBusy, s.State)
		}
		if op == OpRestart && len(fs.Restart) == 0 || op == OpShutdown && len(fs.Shutdown) == 0 {
			return refuse(op, stage, whyNoSteps, stage, op, config.PipelinePath)
		}
		j := c.jobFor(req, stage, op, s.Current)
		j.Previous, j.Cache = s.Current, cache
		c.auditReq(req, op, stage, s.Current, s.Current, j.ID)
		c.start(s, j)
		c.accepted(j, s, msgAgain, op, stage, short(j.SHA))
		return nil
	})
}

func branchName(p *Pipeline) string {
	if p.Branch != "" {
		return p.Branch
	}
	return defaultBranchName
}

// errStale: the job a run asks about is no longer its stage's job.
var errStale = errors.New("job is no longer the stage's job")

// jobOf returns the stage and job ref names while that job is still the
// stage's queued or running one; errStale otherwise.
func (p *Pipeline) jobOf(ref jobRef) (*StageState, error) {
	s := p.Stage(ref.Stage)
	if s == nil || s.Job == nil || s.Job.ID != ref.Job || !s.active() {
		return nil, errStale
	}
	return s, nil
}

// Claim marks the stage job ref names as running, for the run that took
// its stage lock. A job a person cancelled before it started stays
// cancelling: the run only reports its end. takeover says the job ran
// before, in a process that stopped.
func (p *Pipeline) Claim(ref jobRef, at Moment) (takeover bool, fx Effects, err error) {
	fx, err = p.transition(Request{}, at, func(c *change) error {
		s, err := p.jobOf(ref)
		if err != nil || s.State == Cancelling {
			return err
		}
		// A job back from waiting for GitHub is no takeover, and its
		// deployment already shows it in progress.
		waited := s.Job.WaitingFor != ""
		takeover = s.State != Queued && !waited
		s.Job.WaitingFor = ""
		s.State = s.Job.Operation.runningState()
		s.Job.Started = c.now()
		extra := ""
		if takeover {
			extra = msgTakeover
		}
		c.checkRun(s.Job, runningCheckRun(s.Job, extra))
		if !waited && s.Job.Operation.deploys() {
			c.deploymentStatus(s.Job, "in_progress")
		}
		return nil
	})
	return takeover, fx, err
}

// WaitForGitHub records that a running job waits for GitHub before its
// steps can start, so that its check run says so.
func (p *Pipeline) WaitForGitHub(ref jobRef, why string, at Moment) (Effects, error) {
	return p.transition(Request{}, at, func(c *change) error {
		s, err := p.jobOf(ref)
		if err != nil {
			return err
		}
		s.Job.WaitingFor = why
		c.checkRun(s.Job, runningCheckRun(s.Job, fmt.Sprintf(msgWaitGitHub, why)))
		return nil
	})
}

// GiveUp fails the stage job ref names, which the queue gave up on: it
// kept waiting for GitHub since since and never started its steps.
func (p *Pipeline) GiveUp(ref jobRef, since time.Time, at Moment) (conclusion string, fx Effects, err error) {
	s, err := p.jobOf(ref)
	if err != nil {
		return "", Effects{}, err
	}
	return p.Finish(s.Job, runResult{problem: fmt.Sprintf(givenUpReason, since.UTC().Format(time.RFC3339))}, at)
}

// Finish records how j ended: the stage's state, promotion to the next
// stage, auto-rollback, and whatever waits. It returns the conclusion of
// j's check run.
func (p *Pipeline) Finish(j *Job, res runResult, at Moment) (conclusion string, fx Effects, err error) {
	fx, err = p.transition(Request{}, at, func(c *change) error {
		conclusion = c.finish(j, res)
		return nil
	})
	return conclusion, fx, err
}

func (c *change) finish(j *Job, res runResult) string {
	p := c.p
	s := p.Stage(j.Stage)
	if s == nil || s.Job == nil || s.Job.ID != j.ID {
		next := anotherJob
		if s != nil && s.Job != nil {
			next = fmt.Sprintf(jobNamed, s.Job.Operation, s.Name, short(s.Job.SHA))
		}
		// A stage still there has a new job: preempt reported this end.
		c.reportEnd(j, outcome{conclusion: "cancelled", steps: res.steps, log: res.log,
			summary: fmt.Sprintf(msgCancelledBy, next), reported: s != nil && s.Job != nil})
		return "cancelled"
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
			c.promoteNext(res.file, s, j)
		}
		if s.PreviousGood() != "" {
			o.buttons = []report.Button{buttonRollback}
		}
	case res.cancelled || s.State == Cancelling:
		// A step that failed after a person's cancel, before the
		// worker noticed it, still ends cancelled: no auto-rollback.
		s.State = Cancelled
		o.conclusion = "cancelled"
	default:
		s.State = Failed
		o.conclusion = "failure"
		o.buttons = []report.Button{buttonRetry}
		if fs != nil && fs.AutoRollback {
			o.summary = joinLines(o.summary, c.autoRollback(s, j, res))
		}
	}
	s.Job.Hold = ""
	c.reportEnd(j, o)
	c.kick()
	return o.conclusion
}

// promoteNext offers the revision j deployed to the next stage: automatic
// promotion, unlike the /promote of Promote.
func (c *change) promoteNext(file *config.Pipeline, s *StageState, j *Job) {
	nfs, ok := file.Next(s.Name)
	if !ok {
		return
	}
	next := c.p.Stage(nfs.Name)
	if next == nil {
		return
	}
	nj := c.newJob(file, j.Actor, j.Reason, j.ConfigSHA, next.Name, OpDeploy, j.SHA)
	nj.Manual = nfs.Promotion == "manual" || gate.AwaitsPromote(file, nfs.Name)
	c.offer(next, nj)
}

// autoRollback queues the rollback of a failed stage to its last good
// revision and says what it did, for the failed job's check run.
func (c *change) autoRollback(s *StageState, j *Job, res runResult) string {
	switch {
	case j.Operation == OpAutoRollback:
		return autoNotTwice
	case res.problem != "" && res.failed == "":
		return autoNoSteps
	}
	target := ""
	for _, sha := range s.Good {
		if sha != j.SHA {
			target = sha
			break
		}
	}
	if target == "" {
		return fmt.Sprintf(autoNoTarget, s.Name)
	}
	reason := fmt.Sprintf(autoReason, res.failed)
	rj := c.newJob(res.file, "railyard", reason, j.ConfigSHA, s.Name, OpAutoRollback, target)
	rj.Previous = s.Current
	c.audit(rj.Actor, reason, OpAutoRollback, s.Name, j.SHA, target, rj.ID)
	s.block(fmt.Sprintf(blockedByRun, res.failed))
	c.start(s, rj)
	return fmt.Sprintf(autoQueued, s.Name, short(target))
}

func joinLines(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n\n" + b
}
