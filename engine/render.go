package engine

// All wording Railyard shows people lives here: check run titles,
// summaries and buttons, deployment descriptions, the reasons of
// refusals, acceptance texts, and the replies the handlers post. The
// golden files under testdata/render show what they look like
// (go test ./engine -run TestRender -update rewrites them).

import (
	"fmt"
	"strings"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/stagejob"
)

// Buttons of Railyard's check runs; the check_run handler maps their
// identifiers back to commands (handlers.Buttons).
var (
	buttonCancel   = report.Button{Label: "Cancel", Description: "Cancel this stage job", Identifier: "cancel"}
	buttonDrop     = report.Button{Label: "Cancel", Description: "Drop this waiting revision", Identifier: "cancel"}
	buttonRetry    = report.Button{Label: "Retry", Description: "Run all steps again", Identifier: "retry"}
	buttonRollback = report.Button{Label: "Roll back", Description: "Back to the previous good one", Identifier: "rollback"}
	buttonPromote  = report.Button{Label: "Promote", Description: "Deploy this revision to this stage", Identifier: "promote"}
	buttonUnblock  = report.Button{Label: "Unblock", Description: "Let promotion into this stage resume", Identifier: "unblock"}
)

// Why a waiting revision does not start (Job.Hold).
const (
	holdPatch    = "held: patch mode (%s at %s by @%s)"
	holdStopped  = "held: the pipeline is stopped by @%s: %s"
	holdManual   = "waiting for /promote stage=%s"
	holdBlocked  = "held: %s is blocked (%s); /unblock stage=%s"
	holdBusy     = "waiting for %s to finish %s"
	blockedByOp  = "%s by @%s"
	blockedByRun = "auto-rollback after %s failed"
)

// Reasons of refusals; Refusal.Error prefixes them with the operation.
const (
	refusedOp          = "cannot %s: %s"
	refusedOpOnStage   = "cannot %s %s: %s"
	defaultBranchName  = "the default branch"
	whyNoStage         = "there is no stage %q; the stages are %s"
	whyNoStep          = "%s has no step %q"
	whyFirstStage      = "it is the first stage; pushes to %s deploy it"
	whyNoCurrentBefore = "%s has no deployed revision to promote"
	whyNotSucceeded    = "%s has not succeeded in %s"
	whyStopped         = "the pipeline is stopped by @%s (%s); /resume first"
	whyPatched         = "the pipeline is in patch mode (%s at %s by @%s); /release first"
	whyAlreadyStopped  = "the pipeline is already stopped by @%s (%s)"
	whyAlreadyPatched  = "the pipeline is already in patch mode (%s at %s by @%s); /release first"
	whyNotStopped      = "the pipeline is not stopped"
	whyNotPatched      = "the pipeline is not in patch mode"
	whyNotThere        = "%s neither runs nor waits there"
	whyNotRunningGive  = "it is %s, not running; to drop %s, which waits for it, give to=%s"
	whyNotRunning      = "it is %s, not running, and no revision waits for it"
	whyNotFailed       = "it is %s, not failed or cancelled"
	whyPatchGone       = "its patch of %s is no longer the pipeline's patch mode; /patch again"
	whyNeverBuilt      = "%s never passed %s"
	whyNotBlocked      = "it is not blocked"
	whyNoCurrent       = "it has no current revision"
	whyBusy            = "it is %s; wait for it or /cancel it"
	whyNoSteps         = "%s has no %s steps in %s"
)

// What an accepted operation replies.
const (
	msgAlreadyDone       = "Already done: this request was carried out before."
	msgIgnoredPush       = "Ignored %s: a newer push arrived first."
	msgDeploying         = "Deploying %s to %s."
	msgPromoting         = "Promoting %s to %s."
	msgCancelling        = "Cancelling %s of %s at %s."
	msgCancelled         = "Cancelled the queued %s of %s at %s before it started."
	msgDropped           = "Dropped the %s of %s that waited for %s."
	msgRetrying          = "Retrying %s of %s at %s."
	msgMoving            = "%s %s to %s."
	msgUnblocked         = "Unblocked %s: automatic promotion into it resumes."
	msgStopped           = "Stopped the pipeline: running stages finish, nothing new starts, pushes are held."
	msgResumed           = "Resumed the pipeline."
	msgReleased          = "Left patch mode."
	msgPatching          = "Patch mode: deploying %s to %s; normal deployments are held until /release."
	msgAgain             = "Queued %s of %s at %s."
	msgWaits             = " It waits: %s."
	msgStarted           = " Started %s."
	msgDroppedEarly      = "Dropped before it started."
	msgSuperseded        = "Superseded by %s of %s to %s."
	msgCancelledBy       = "Cancelled: superseded by %s."
	jobNamed             = "%s of %s to %s"
	anotherJob           = "another job"
	msgSupersededWaiting = "%s of %s to %s was superseded by %s before it started."
	msgTakeover          = "The process running this job stopped; another one took it over and runs it again from the first step."
	msgWaitGitHub        = "Waiting for GitHub: %s; trying again."
)

// Titles of railyard/pipeline check runs of pipeline-wide operations.
const (
	titleUnblocked = "Unblocked %s"
	titleStopped   = "Pipeline stopped"
	titleResumed   = "Pipeline resumed"
	titleReleased  = "Patch mode released"
	titlePatch     = "Patch mode: %s at %s"

	titleSupersededWaiting = "Superseded by %s"
)

// What a failed job's check run says about auto-rollback.
const (
	autoNotTwice  = "No auto-rollback: this job was itself an auto-rollback."
	autoNoSteps   = "No auto-rollback: the steps never ran."
	autoNoTarget  = "No auto-rollback: %s has no earlier good revision."
	autoQueued    = "Auto-rollback of %s to %s queued."
	autoReason    = "auto-rollback: %s failed"
	givenUpReason = "Railyard gave up: GitHub did not answer well enough to start this job since %s. `/retry` runs it again."
)

var moving = map[Operation]string{OpRollback: "Rolling back", OpRollForward: "Rolling forward"}

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

// queuedCheckRun is a job's check run while it is queued or waits.
func queuedCheckRun(j *Job, buttons []report.Button) report.CheckRun {
	return report.CheckRun{
		Name: "railyard/" + j.Stage, HeadSHA: j.SHA, Status: "queued",
		Title: titleOf(j, "queued"), Summary: summaryOf(j, nil, j.Hold),
		ExternalID: j.Stage + ":" + j.ID, Buttons: buttons,
	}
}

func runningCheckRun(j *Job, extra string) report.CheckRun {
	return report.CheckRun{
		Name: "railyard/" + j.Stage, HeadSHA: j.SHA, Status: "in_progress",
		Title: titleOf(j, "in_progress"), Summary: summaryOf(j, nil, extra),
		ExternalID: j.Stage + ":" + j.ID, StartedAt: j.Started,
		Buttons: []report.Button{buttonCancel},
	}
}

func endedCheckRun(j *Job, o outcome, buttons []report.Button) report.CheckRun {
	title := o.title
	if title == "" {
		title = titleOf(j, o.conclusion)
	}
	return report.CheckRun{
		Name: "railyard/" + j.Stage, HeadSHA: j.SHA, Status: "completed", Conclusion: o.conclusion,
		Title: title, Summary: summaryOf(j, o.steps, o.summary), Text: o.log,
		ExternalID: j.Stage + ":" + j.ID, Buttons: buttons,
	}
}

// pipelineCheckRun records a pipeline-wide operation on the head of the
// pipeline branch.
func pipelineCheckRun(req Request, op Operation, title string) report.CheckRun {
	summary := fmt.Sprintf("**Operation:** %s\n**Actor:** @%s\n", op, req.Actor)
	if req.Reason != "" {
		summary += fmt.Sprintf("**Reason:** %s\n", req.Reason)
	}
	return report.CheckRun{
		Name: "railyard/pipeline", HeadSHA: req.Head, Status: "completed", Conclusion: "neutral",
		Title: fmt.Sprintf("%s by @%s", title, req.Actor), Summary: summary,
	}
}

func deploymentOf(j *Job) report.Deployment {
	return report.Deployment{
		Ref: j.SHA, Environment: j.Stage, Task: task(j.Operation), Description: describe(j),
		Production: j.Production,
		Payload:    map[string]any{"operation": string(j.Operation), "actor": j.Actor, "reason": j.Reason, "previous": j.Previous, "railyard_job": j.ID},
	}
}

func deploymentStatusOf(j *Job, state string) report.DeploymentStatus {
	return report.DeploymentStatus{State: state, Description: describe(j), LogURLCheckRun: CheckRunKey(j.ID), Environment: j.Stage}
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

func startedText(jobs []*Job) string {
	if len(jobs) == 0 {
		return ""
	}
	parts := make([]string, len(jobs))
	for i, j := range jobs {
		parts[i] = fmt.Sprintf("%s at %s", j.Stage, short(j.SHA))
	}
	return fmt.Sprintf(msgStarted, strings.Join(parts, ", "))
}

func stageNames(f *config.Pipeline) string {
	names := make([]string, len(f.Stages))
	for i, s := range f.Stages {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// Line is one line of a reply to a comment: what a command did or why it
// was refused. Text is the whole line; a check run is linked by its key,
// never by text, so that nothing a person wrote becomes a link.
type Line struct {
	Text        string
	CheckRunKey string
}

// Accepted is the reply line of a command that ran; raw is its text as
// the person wrote it.
func Accepted(raw string, res Result) Line {
	return Line{Text: fmt.Sprintf("✅ %s — %s", quote(raw), res.Message), CheckRunKey: res.CheckRunKey}
}

// Refused is the reply line of a command that did not run.
func Refused(raw string, err error) Line {
	return Line{Text: fmt.Sprintf("❌ %s — %s", quote(raw), err.Error())}
}

// Invalid is the reply line of a line that is no command, or of a comment
// refused as a whole.
func Invalid(err error) Line { return Line{Text: "❌ " + err.Error()} }

func quote(raw string) string { return "`" + strings.ReplaceAll(raw, "`", "'") + "`" }

// Reply is the body of the reply to user's comment. Text is escaped so
// that a "{{checkrun:…}}" a person typed stays text; only the links
// Railyard adds become check run links when the reply is sent.
func Reply(user string, lines []Line) string {
	parts := make([]string, len(lines))
	for i, l := range lines {
		parts[i] = escapePlaceholders(l.Text)
		if l.CheckRunKey != "" {
			parts[i] += fmt.Sprintf(" ([check run]({{checkrun:%s}}))", l.CheckRunKey)
		}
	}
	return fmt.Sprintf("@%s\n\n%s", user, strings.Join(parts, "\n\n"))
}

// escapePlaceholders breaks every "{{" with a zero-width space, which
// GitHub shows as nothing.
func escapePlaceholders(s string) string { return strings.ReplaceAll(s, "{{", "{\u200b{") }

// Status is the /status table of p under file.
func Status(file *config.Pipeline, p *Pipeline) string {
	var b strings.Builder
	b.WriteString("\n\n| stage | state | current | waiting | blocked |\n|---|---|---|---|---|\n")
	for _, fs := range file.Stages {
		state, current, waiting, blocked := "idle", "–", "–", "no"
		if ss := p.Stage(fs.Name); ss != nil {
			state = string(ss.State)
			if ss.Current != "" {
				current = "`" + short(ss.Current) + "`"
			}
			if ss.Waiting != nil {
				waiting = "`" + short(ss.Waiting.SHA) + "` (" + ss.Waiting.Hold + ")"
			}
			if ss.Blocked {
				blocked = "yes: " + ss.BlockedBy
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", fs.Name, state, current, waiting, blocked)
	}
	if p.Stopped != nil {
		fmt.Fprintf(&b, "\n**Stopped** by @%s: %s\n", p.Stopped.Actor, p.Stopped.Reason)
	}
	if p.Patched != nil {
		fmt.Fprintf(&b, "\n**Patch mode**: %s at `%s` by @%s: %s\n", p.Patched.Stage, short(p.Patched.SHA), p.Patched.Actor, p.Patched.Reason)
	}
	return b.String()
}

// ButtonRefused is the railyard/pipeline check run that tells the person
// who clicked identifier on stage's check run at sha why nothing happened
// (a click has no thread to reply in).
func ButtonRefused(identifier, stage, sha, user string, err error) report.CheckRun {
	why := "Refused: " + err.Error()
	return report.CheckRun{
		Name: "railyard/pipeline", HeadSHA: sha, Status: "completed", Conclusion: "neutral",
		Title:   truncate(why, 200),
		Summary: fmt.Sprintf("**Button:** %s on railyard/%s\n**Actor:** @%s\n\n%s", identifier, stage, user, why),
	}
}

// BrokenFile is the failing railyard/config check run on a commit whose
// pipeline file has problems, listing every one.
func BrokenFile(sha string, problems []config.Problem) report.CheckRun {
	var b strings.Builder
	for _, pr := range problems {
		fmt.Fprintf(&b, "- `%s` line %d: %s\n", config.PipelinePath, pr.Line, pr.Message)
	}
	title := fmt.Sprintf("%s has %d problem", config.PipelinePath, len(problems))
	if len(problems) != 1 {
		title += "s"
	}
	return report.CheckRun{
		Name: "railyard/config", HeadSHA: sha, Status: "completed", Conclusion: "failure",
		Title: title, Summary: "Railyard cannot run this pipeline until the file is fixed:\n\n" + b.String(),
	}
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Refusals the handlers make before asking the engine, about the comment
// or click as a whole.
const (
	WhyNoCommits      = "The default branch %s has no commits yet, so there is no `%s` to run."
	WhyNoPipeline     = "This repository has no `%s` on %s, so Railyard has nothing to run."
	WhyBrokenFile     = "`%s` on %s has %d problems (see the railyard/config check run); fix it first."
	WhyPermission     = "@%s has %s permission on this repository; /%s%s needs %s"
	WhyNotACommand    = "/%s is not a command Railyard runs"
	WhyNoRef          = "to=%s names no single commit, branch or tag of this repository"
	WhyNoCommit       = "sha=%s names no single commit of this repository"
	WhyNotASHA        = "sha=%s is a branch or tag name, not a commit SHA"
	WhyOffBranch      = "%.7s is not on the pipeline branch %s; only its commits go through the pipeline"
	WhyPatchNeedsTo   = "/patch needs to= outside a pull request"
	WhyUnknownButton  = "unknown button %q"
	WhyOlderWaiting   = "this button is on %.7s, but the revision waiting for %s is %s"
	WhyOlderCheckRun  = "this button is on %.7s, but %s is now at %s"
	WhyNoPreviousGood = "cannot roll back %s: it has no previous good revision"
	ReasonRollback    = "Roll back button"
)
