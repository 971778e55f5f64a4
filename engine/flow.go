package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/queue"
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
func holdFor(p *Pipeline, s *Stage, j *Job) string {
	why, _ := hold(p, s, j)
	return why
}

// The buttons of a waiting revision's check run.
var actionPromote = report.Action{Label: "Promote", Description: "Deploy this revision to this stage", Identifier: "promote"}
var actionUnblock = report.Action{Label: "Unblock", Description: "Let promotion into this stage resume", Identifier: "unblock"}

// hold says why j may not start in s now, and which button of its check
// run lets it start, if one does.
func hold(p *Pipeline, s *Stage, j *Job) (string, []report.Action) {
	switch {
	case j.Operation == OpPatch:
		return "", nil
	case p.Patch != nil:
		return fmt.Sprintf("held: patch mode (%s at %s by @%s)", p.Patch.Stage, short(p.Patch.SHA), p.Patch.Actor), nil
	case p.Stopped != nil:
		return fmt.Sprintf("held: the pipeline is stopped by @%s: %s", p.Stopped.Actor, p.Stopped.Reason), nil
	case j.Manual:
		return fmt.Sprintf("waiting for /promote stage=%s", s.Name), []report.Action{actionPromote}
	case s.Blocked && j.Operation == OpDeploy:
		return fmt.Sprintf("held: %s is blocked (%s); /unblock stage=%s", s.Name, s.BlockedBy, s.Name), []report.Action{actionUnblock}
	case s.active():
		return fmt.Sprintf("waiting for %s to finish %s", s.Name, short(s.Job.SHA)), nil
	}
	return "", nil
}

// offer starts j in s when it may start, or makes it the waiting revision.
func (e *Engine) offer(p *Pipeline, s *Stage, j *Job, fx *effects) {
	if hold := holdFor(p, s, j); hold != "" {
		e.wait(p, s, j, hold, fx)
		return
	}
	e.start(p, s, j, fx)
}

// wait makes j the stage's waiting revision; an older one is superseded.
func (e *Engine) wait(p *Pipeline, s *Stage, j *Job, hold string, fx *effects) {
	if old := s.Waiting; old != nil && old.ID != j.ID {
		e.reportEnd(fx, p, old, outcome{conclusion: "skipped", title: fmt.Sprintf("Superseded by %s", short(j.SHA)),
			summary: fmt.Sprintf("%s of %s to %s was superseded by %s before it started.", old.Operation, short(old.SHA), s.Name, short(j.SHA))})
	}
	s.Waiting, j.Hold = j, hold
	e.reportQueued(fx, p, j)
}

// start queues j to run in s now. A job already running there notices it
// was replaced and stops.
func (e *Engine) start(p *Pipeline, s *Stage, j *Job, fx *effects) {
	if s.Waiting != nil && s.Waiting.ID == j.ID {
		s.Waiting = nil
	}
	j.Hold = ""
	if j.Previous == "" {
		j.Previous = s.Current
	}
	s.Job, s.State = j, Queued
	data, _ := json.Marshal(jobRef{Repo: p.Repo, Stage: s.Name, Job: j.ID})
	fx.jobs = append(fx.jobs, queue.Job{Kind: JobKind, Repo: p.Repo, Data: data})
	e.reportQueued(fx, p, j)
	if j.Operation.deploys() {
		repo := repoOf(p)
		fx.report(func(ctx context.Context) {
			e.send(ctx, "create deployment", e.report.Deployment(ctx, repo, deploymentKey(j.ID), report.Deployment{
				Ref: j.SHA, Environment: j.Stage, Task: task(j.Operation), Description: describe(j),
				Production: j.Production,
				Payload:    map[string]any{"operation": string(j.Operation), "actor": j.Actor, "reason": j.Reason, "previous": j.Previous, "railyard_job": j.ID},
			}))
			e.deploymentStatus(ctx, repo, j, "queued")
		})
	}
}

// kick starts every waiting revision that may now start and refreshes the
// reason of those that still wait.
func (e *Engine) kick(p *Pipeline, fx *effects) []*Job {
	var started []*Job
	for _, s := range p.Stages {
		w := s.Waiting
		if w == nil {
			continue
		}
		switch hold := holdFor(p, s, w); {
		case hold == "":
			e.start(p, s, w, fx)
			started = append(started, w)
		case hold != w.Hold:
			w.Hold = hold
			e.reportQueued(fx, p, w)
		}
	}
	return started
}

func task(op Operation) string {
	if op == OpDeploy {
		return "deploy"
	}
	return "deploy:" + string(op)
}

// describe is the one-line account of a job: "rollback by @alice: bad migration".
func describe(j *Job) string {
	d := fmt.Sprintf("%s by @%s", j.Operation, j.Actor)
	if j.Reason != "" {
		d += ": " + j.Reason
	}
	return d
}

func repoOf(p *Pipeline) Repo {
	owner, name, _ := strings.Cut(p.Repo, "/")
	return Repo{InstallationID: p.InstallationID, Owner: owner, Name: name}
}

// send logs a failure to hand something to the reporter; the reporter itself
// only fails when the store does.
func (e *Engine) send(ctx context.Context, what string, err error) {
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msgf("Could not %s.", what)
	}
}

func (e *Engine) deploymentStatus(ctx context.Context, repo Repo, j *Job, state string) {
	e.send(ctx, "record deployment status", e.report.DeploymentStatus(ctx, repo, deploymentKey(j.ID), report.DeploymentStatus{
		State: state, Description: describe(j), LogURLCheckRun: CheckRunKey(j.ID), Environment: j.Stage,
	}))
}

func (e *Engine) reportQueued(fx *effects, p *Pipeline, j *Job) {
	repo := repoOf(p)
	actions := []report.Action{}
	if s := p.Stage(j.Stage); s != nil && j.Hold != "" {
		// A waiting revision's check run offers what lets it start.
		if _, a := hold(p, s, j); a != nil {
			actions = a
		}
	}
	cr := report.CheckRun{
		Name: "railyard/" + j.Stage, HeadSHA: j.SHA, Status: "queued",
		Title:      titleOf(j, "queued"),
		Summary:    summaryOf(j, nil, j.Hold),
		ExternalID: j.Stage + ":" + j.ID,
		Actions:    actions,
	}
	fx.report(func(ctx context.Context) {
		e.send(ctx, "report queued check run", e.report.CheckRun(ctx, repo, CheckRunKey(j.ID), cr))
	})
}

// outcome is how a job ended, for its check run and deployment.
type outcome struct {
	conclusion string // success, failure, cancelled, skipped
	title      string // overrides the default title
	summary    string // extra lines
	steps      []stagejob.Step
	log        string
	actions    []report.Action
	// reported: the end was reported already (preempt); only the check run
	// gets the details, the deployment no second terminal status.
	reported bool
}

func (e *Engine) reportEnd(fx *effects, p *Pipeline, j *Job, o outcome) {
	repo := repoOf(p)
	title := o.title
	if title == "" {
		title = titleOf(j, o.conclusion)
	}
	actions := o.actions
	if actions == nil {
		actions = []report.Action{}
	}
	if s := p.Stage(j.Stage); s != nil && s.Blocked && s.Job == j && (o.conclusion == "success" || o.conclusion == "failure") {
		// The job left its stage blocked (a rollback, or one before it).
		actions = append(actions, actionUnblock)
	}
	cr := report.CheckRun{
		Name: "railyard/" + j.Stage, HeadSHA: j.SHA, Status: "completed", Conclusion: o.conclusion,
		Title: title, Summary: summaryOf(j, o.steps, o.summary), Text: o.log,
		ExternalID: j.Stage + ":" + j.ID, Actions: actions,
	}
	wasStarted := !j.Started.IsZero() || o.conclusion != "skipped"
	fx.report(func(ctx context.Context) {
		e.send(ctx, "report finished check run", e.report.CheckRun(ctx, repo, CheckRunKey(j.ID), cr))
		if j.Operation.deploys() && wasStarted && !o.reported {
			state := map[string]string{"success": "success", "failure": "failure"}[o.conclusion]
			if state == "" {
				state = "error"
			}
			e.deploymentStatus(ctx, repo, j, state)
		}
	})
}

var actionCancel = report.Action{Label: "Cancel", Description: "Cancel this stage job", Identifier: "cancel"}
var actionRetry = report.Action{Label: "Retry", Description: "Run all steps again", Identifier: "retry"}
var actionRollback = report.Action{Label: "Roll back", Description: "Back to the previous good one", Identifier: "rollback"}

// reportRunning shows j running; with deployment, its deployment too.
func (e *Engine) reportRunning(fx *effects, p *Pipeline, j *Job, takeover, deployment bool) {
	repo := repoOf(p)
	extra := ""
	if takeover {
		extra = "The process running this job stopped; another one took it over and runs it again from the first step."
	}
	cr := runningCheckRun(j, extra)
	fx.report(func(ctx context.Context) {
		e.send(ctx, "report running check run", e.report.CheckRun(ctx, repo, CheckRunKey(j.ID), cr))
		if deployment && j.Operation.deploys() {
			e.deploymentStatus(ctx, repo, j, "in_progress")
		}
	})
}

// reportWaiting shows that a running job waits for GitHub before its steps
// can start. It reaches GitHub through the outbox once GitHub answers again.
func (e *Engine) reportWaiting(fx *effects, p *Pipeline, j *Job) {
	repo := repoOf(p)
	cr := runningCheckRun(j, "Waiting for GitHub: "+j.WaitingFor+"; trying again.")
	fx.report(func(ctx context.Context) {
		e.send(ctx, "report waiting check run", e.report.CheckRun(ctx, repo, CheckRunKey(j.ID), cr))
	})
}

func runningCheckRun(j *Job, extra string) report.CheckRun {
	return report.CheckRun{
		Name: "railyard/" + j.Stage, HeadSHA: j.SHA, Status: "in_progress",
		Title: titleOf(j, "in_progress"), Summary: summaryOf(j, nil, extra),
		ExternalID: j.Stage + ":" + j.ID, StartedAt: j.Started,
		Actions: []report.Action{actionCancel},
	}
}

// pipelineCheck records a pipeline-wide operation as a completed, neutral
// railyard/pipeline check run on the head of the pipeline branch.
func (e *Engine) pipelineCheck(fx *effects, p *Pipeline, req Request, op Operation, title string) {
	if req.Head == "" {
		return
	}
	repo := repoOf(p)
	summary := fmt.Sprintf("**Operation:** %s\n**Actor:** @%s\n", op, req.Actor)
	if req.Reason != "" {
		summary += fmt.Sprintf("**Reason:** %s\n", req.Reason)
	}
	cr := report.CheckRun{
		Name: "railyard/pipeline", HeadSHA: req.Head, Status: "completed", Conclusion: "neutral",
		Title: fmt.Sprintf("%s by @%s", title, req.Actor), Summary: summary,
	}
	fx.report(func(ctx context.Context) {
		e.send(ctx, "report pipeline check run", e.report.CheckRun(ctx, repo, "pipeline:"+newID(), cr))
	})
}

// verbs words titles per operation: present participle, past, noun.
var verbs = map[Operation][3]string{
	OpDeploy:       {"Deploying %s to %s", "Deployed %s to %s", "Deploy of %s to %s"},
	OpPromote:      {"Promoting %s to %s", "Promoted %s to %s", "Promotion of %s to %s"},
	OpRetry:        {"Retrying %s on %s", "Retried %s on %s", "Retry of %s on %s"},
	OpRedeploy:     {"Redeploying %s to %s", "Redeployed %s to %s", "Redeploy of %s to %s"},
	OpPatch:        {"Patching %s into %s", "Patched %s into %s", "Patch of %s into %s"},
	OpRestart:      {"Restarting %s on %s", "Restarted %s on %s", "Restart of %s on %s"},
	OpShutdown:     {"Shutting down %s on %s", "Shut down %s on %s", "Shutdown of %s on %s"},
	OpRollback:     {"Rolling back %[2]s to %[1]s", "Rolled back %[2]s to %[1]s", "Rollback of %[2]s to %[1]s"},
	OpRollForward:  {"Rolling forward %[2]s to %[1]s", "Rolled forward %[2]s to %[1]s", "Roll forward of %[2]s to %[1]s"},
	OpAutoRollback: {"Auto-rolling back %[2]s to %[1]s", "Auto-rolled back %[2]s to %[1]s", "Auto-rollback of %[2]s to %[1]s"},
}

func titleOf(j *Job, status string) string {
	v, ok := verbs[j.Operation]
	if !ok {
		v = verbs[OpDeploy]
	}
	sha := short(j.SHA)
	switch status {
	case "queued":
		return "Queued: " + fmt.Sprintf(v[2], sha, j.Stage)
	case "in_progress":
		return fmt.Sprintf(v[0], sha, j.Stage)
	case "success":
		return fmt.Sprintf(v[1], sha, j.Stage)
	case "cancelled":
		return fmt.Sprintf(v[2], sha, j.Stage) + " cancelled"
	case "skipped":
		return fmt.Sprintf(v[2], sha, j.Stage) + " skipped"
	}
	return fmt.Sprintf(v[2], sha, j.Stage) + " failed"
}

func summaryOf(j *Job, steps []stagejob.Step, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Operation:** %s\n**Actor:** @%s\n", j.Operation, j.Actor)
	if j.Reason != "" {
		fmt.Fprintf(&b, "**Reason:** %s\n", j.Reason)
	}
	fmt.Fprintf(&b, "**Revision:** `%s`\n", j.SHA)
	prev := j.Previous
	if prev == "" {
		prev = "none"
	}
	fmt.Fprintf(&b, "**Previous revision:** `%s`\n", prev)
	if j.CancelledBy != "" {
		fmt.Fprintf(&b, "**Cancelled by:** @%s\n", j.CancelledBy)
	}
	if extra != "" {
		fmt.Fprintf(&b, "\n%s\n", extra)
	}
	if len(steps) > 0 {
		b.WriteString("\n| step | result | duration |\n|---|---|---|\n")
		for _, s := range steps {
			d := "–"
			if s.Duration > 0 {
				d = s.Duration.Round(10e6).String()
			}
			name := s.Name
			if s.URL != "" {
				name = "[" + s.Name + "](" + s.URL + ")"
			}
			// A "|" in a result (GitHub's error text) would end the cell.
			fmt.Fprintf(&b, "| %s | %s | %s |\n", name, strings.ReplaceAll(s.Result, "|", `\|`), d)
		}
	}
	return b.String()
}
