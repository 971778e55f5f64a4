package engine

// How jobs flow through a stage, for the core: a revision is offered to
// a stage, waits there while something holds it, starts, and ends; what
// GitHub shows follows each step. Pure, like core.go.

import (
	"fmt"
	"strings"

	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/stagejob"
)

// jobRef is the payload of a stage job on the queue.
type jobRef struct {
	Repo  string `json:"repo"`
	Stage string `json:"stage"`
	Job   string `json:"job"`
}

// holdFor says why j may not start in s now; "" when it may.
func holdFor(p *Pipeline, s *StageState, j *Job) string {
	why, _ := hold(p, s, j)
	return why
}

// hold says why j may not start in s now, and which button of its check
// run lets it start, if one does.
func hold(p *Pipeline, s *StageState, j *Job) (string, *report.Button) {
	switch {
	case j.Operation == OpPatch:
		return "", nil
	case p.Patched != nil:
		return fmt.Sprintf(holdPatch, p.Patched.Stage, short(p.Patched.SHA), p.Patched.Actor), nil
	case p.Stopped != nil:
		return fmt.Sprintf(holdStopped, p.Stopped.Actor, p.Stopped.Reason), nil
	case j.Manual:
		return fmt.Sprintf(holdManual, s.Name), &buttonPromote
	case s.Blocked && j.Operation == OpDeploy:
		return fmt.Sprintf(holdBlocked, s.Name, s.BlockedBy, s.Name), &buttonUnblock
	case s.active():
		return fmt.Sprintf(holdBusy, s.Name, short(s.Job.SHA)), nil
	}
	return "", nil
}

// offer starts j in s when it may start, or makes it the waiting revision.
func (c *change) offer(s *StageState, j *Job) {
	if hold := holdFor(c.p, s, j); hold != "" {
		c.wait(s, j, hold)
		return
	}
	c.start(s, j)
}

// wait makes j the stage's waiting revision; an older one is superseded.
func (c *change) wait(s *StageState, j *Job, hold string) {
	if old := s.Waiting; old != nil && old.ID != j.ID {
		c.reportEnd(old, outcome{conclusion: "skipped", title: fmt.Sprintf(titleSupersededWaiting, short(j.SHA)),
			summary: fmt.Sprintf(msgSupersededWaiting, old.Operation, short(old.SHA), s.Name, short(j.SHA))})
	}
	s.Waiting, j.Hold = j, hold
	c.reportQueued(j)
}

// start queues j to run in s now. A job already running there notices it
// was replaced and stops.
func (c *change) start(s *StageState, j *Job) {
	if s.Waiting != nil && s.Waiting.ID == j.ID {
		s.Waiting = nil
	}
	j.Hold = ""
	if j.Previous == "" {
		j.Previous = s.Current
	}
	s.Job, s.State = j, Queued
	c.fx.Jobs = append(c.fx.Jobs, jobRef{Repo: c.p.Repo, Stage: s.Name, Job: j.ID})
	c.reportQueued(j)
	if j.Operation.deploys() {
		d := deploymentOf(j)
		c.fx.GitHub = append(c.fx.GitHub, report.Write{Key: deploymentKey(j.ID), Deployment: &d})
		c.deploymentStatus(j, "queued")
	}
}

// preempt starts j at once in s: a job running there is cancelled (its
// worker sees the stage has moved on) and a waiting one stays waiting.
func (c *change) preempt(s *StageState, j *Job) {
	if s.active() {
		// Its end is reported now: nobody runs a queued job yet, and the
		// process running a started one may be dead and never see it was
		// replaced. A live worker adds its steps to the check run later.
		c.reportEnd(s.Job, outcome{conclusion: "cancelled", summary: fmt.Sprintf(msgSuperseded, j.Operation, s.Name, short(j.SHA))})
	}
	c.start(s, j)
}

// kick starts every waiting revision that may now start and refreshes the
// reason of those that still wait.
func (c *change) kick() []*Job {
	var started []*Job
	for _, s := range c.p.Stages {
		w := s.Waiting
		if w == nil {
			continue
		}
		switch hold := holdFor(c.p, s, w); {
		case hold == "":
			c.start(s, w)
			started = append(started, w)
		case hold != w.Hold:
			w.Hold = hold
			c.reportQueued(w)
		}
	}
	return started
}

func (c *change) checkRun(j *Job, cr report.CheckRun) {
	c.fx.GitHub = append(c.fx.GitHub, report.Write{Key: CheckRunKey(j.ID), CheckRun: &cr})
}

func (c *change) deploymentStatus(j *Job, state string) {
	s := deploymentStatusOf(j, state)
	c.fx.GitHub = append(c.fx.GitHub, report.Write{Key: deploymentKey(j.ID), DeploymentStatus: &s})
}

// reportQueued shows j queued; a waiting revision's check run offers
// what lets it start, and a Cancel button that drops it.
func (c *change) reportQueued(j *Job) {
	buttons := []report.Button{}
	if s := c.p.Stage(j.Stage); s != nil && j.Hold != "" {
		if _, b := hold(c.p, s, j); b != nil {
			buttons = append(buttons, *b)
		}
		buttons = append(buttons, buttonDrop)
	}
	c.checkRun(j, queuedCheckRun(j, buttons))
}

// outcome is how a job ended, for its check run and deployment.
type outcome struct {
	conclusion string // success, failure, cancelled, skipped
	title      string // overrides the default title
	summary    string // extra lines
	steps      []stagejob.Step
	log        string
	buttons    []report.Button
	// reported: the end was reported already (preempt); only the check run
	// gets the details, the deployment no second terminal status.
	reported bool
}

func (c *change) reportEnd(j *Job, o outcome) {
	buttons := o.buttons
	if buttons == nil {
		buttons = []report.Button{}
	}
	if s := c.p.Stage(j.Stage); s != nil && s.Blocked && s.Job == j && (o.conclusion == "success" || o.conclusion == "failure") {
		// The job left its stage blocked (a rollback, or one before it).
		buttons = append(buttons, buttonUnblock)
	}
	c.checkRun(j, endedCheckRun(j, o, buttons))
	wasStarted := !j.Started.IsZero() || o.conclusion != "skipped"
	if j.Operation.deploys() && wasStarted && !o.reported {
		state := map[string]string{"success": "success", "failure": "failure"}[o.conclusion]
		if state == "" {
			state = "error"
		}
		c.deploymentStatus(j, state)
	}
}

// pipelineCheck records a pipeline-wide operation as a completed, neutral
// railyard/pipeline check run on the head of the pipeline branch.
func (c *change) pipelineCheck(req Request, op Operation, title string) {
	if req.Head == "" {
		return
	}
	cr := pipelineCheckRun(req, op, title)
	c.fx.GitHub = append(c.fx.GitHub, report.Write{Key: "pipeline:" + c.newID(), CheckRun: &cr})
}

func repoOf(p *Pipeline) report.Repo {
	owner, name, _ := strings.Cut(p.Repo, "/")
	return report.Repo{InstallationID: p.InstallationID, Owner: owner, Name: name}
}
