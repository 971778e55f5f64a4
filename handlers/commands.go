package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/command"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/gate"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/source"
	"github.com/railyard/railyard/worker"
)

// isRefused reports whether err is a person's mistake (a reply) rather than
// a breakage (a retry): the engine's refusals, and the gate's.
func isRefused(err error) bool {
	var g *gate.Refusal
	return errors.As(err, &g) || engine.IsRefusal(err)
}

// session is the context every command of one comment or click shares.
type session struct {
	repo      report.Repo
	file      *config.Pipeline
	head      string // head of the default branch: where the file was read
	branch    string // the pipeline branch
	user      string
	level     config.Level
	issue     int
	pr        bool
	commentID int64
}

// Comment runs the slash commands of a comment and replies in its thread.
func (p *Processors) Comment(ctx context.Context, job queue.Job) error {
	var cj commentJob
	if err := json.Unmarshal(job.Data, &cj); err != nil {
		return worker.Permanent{Err: err}
	}
	ctx, log := repoContext(ctx, cj.InstallationID, cj.Owner, cj.Name)
	log = log.With().Str("github_delivery_id", cj.Delivery).Int64("github_comment_id", cj.CommentID).Str("github_user", cj.User).Logger()
	ctx = log.WithContext(ctx)
	repo := report.Repo{InstallationID: cj.InstallationID, Owner: cj.Owner, Name: cj.Name}
	if job.Deliveries <= 1 {
		p.react(ctx, repo, cj.CommentID, "eyes")
	}

	items := command.Parse(cj.Body)
	s, err := p.session(ctx, repo, cj.DefaultBranch, cj.User)
	if err != nil && !isRefused(err) {
		return err
	}
	var lines []engine.Line
	allOK := err == nil
	if err != nil {
		lines = append(lines, engine.Invalid(err))
		for _, it := range items {
			p.observeRefused(it)
		}
	} else {
		s.issue, s.pr, s.commentID = cj.Issue, cj.PullRequest, cj.CommentID
		for i, it := range items {
			line, ok, err := p.run(ctx, s, it, i)
			if err != nil {
				return err // broke, not refused: retried; done commands do not run twice
			}
			allOK = allOK && ok
			lines = append(lines, line)
		}
	}
	if err := p.Reporter.Comment(ctx, repo, cj.Issue, engine.Reply(cj.User, lines)); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	p.react(ctx, repo, cj.CommentID, map[bool]string{true: "rocket", false: "confused"}[allOK])
	return nil
}

// observeRefused counts a command line that did not run: invalid when it
// cannot be parsed, refused when the comment as a whole was.
func (p *Processors) observeRefused(it command.Item) {
	if it.Err != nil {
		var name command.Name
		if se, ok := errors.AsType[*command.SyntaxError](it.Err); ok {
			name = se.Name
		}
		p.observe(name, CommandInvalid)
		return
	}
	p.observe(it.Command.Name, CommandRefused)
}

func (p *Processors) react(ctx context.Context, repo report.Repo, commentID int64, content string) {
	if err := p.Reporter.Reaction(ctx, repo, commentID, content); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("reaction", content).Msg("Could not react to comment.")
	}
}

// session reads the pipeline file at the head of the default branch and
// the person's permission.
func (p *Processors) session(ctx context.Context, repo report.Repo, defaultBranch, user string) (*session, error) {
	head, err := p.Source.Resolve(ctx, repo, defaultBranch)
	if errors.Is(err, source.ErrUnknownRef) {
		return nil, engine.Refuse(engine.WhyNoCommits, defaultBranch, config.PipelinePath)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve default branch: %w", err)
	}
	loaded, err := p.Source.Load(ctx, repo, head)
	if errors.Is(err, config.ErrNoPipeline) {
		return nil, engine.Refuse(engine.WhyNoPipeline, config.PipelinePath, defaultBranch)
	}
	if err != nil {
		return nil, fmt.Errorf("load pipeline file: %w", err)
	}
	if len(loaded.Problems) > 0 {
		return nil, engine.Refuse(engine.WhyBrokenFile, config.PipelinePath, defaultBranch, len(loaded.Problems))
	}
	level, err := p.Source.Permission(ctx, repo, user)
	if err != nil {
		return nil, fmt.Errorf("read permission: %w", err)
	}
	branch := loaded.Pipeline.Branch
	if branch == "" {
		branch = defaultBranch
	}
	return &session{repo: repo, file: loaded.Pipeline, head: head, branch: branch, user: user, level: level}, nil
}

// run runs one command line and words its reply line; ok is false for a
// refusal. An error means something broke.
func (p *Processors) run(ctx context.Context, s *session, it command.Item, index int) (line engine.Line, ok bool, err error) {
	if it.Err != nil {
		p.observeRefused(it)
		return engine.Invalid(it.Err), false, nil
	}
	c := it.Command
	res, err := p.do(ctx, s, c, fmt.Sprintf("comment:%d:%d", s.commentID, index))
	switch {
	case isRefused(err):
		p.observe(c.Name, CommandRefused)
		zerolog.Ctx(ctx).Info().Str("command", string(c.Name)).Str("why", err.Error()).Msg("Command refused.")
		return engine.Refused(c.Raw, err), false, nil
	case err != nil:
		p.observe(c.Name, CommandFailed)
		return engine.Line{}, false, err
	}
	p.observe(c.Name, CommandAccepted)
	zerolog.Ctx(ctx).Info().Str("command", string(c.Name)).Msg("Command accepted.")
	return engine.Accepted(c.Raw, res), true, nil
}

// do checks a command against the pipeline file and the person's
// permission, resolves its revision, and runs it.
func (p *Processors) do(ctx context.Context, s *session, c *command.Command, idem string) (engine.Result, error) {
	if err := engine.CheckTarget(s.file, engine.Operation(c.Name), c.Stage, c.Skip); err != nil {
		return engine.Result{}, err
	}
	if need := s.file.Required(string(c.Name), c.Stage); !s.level.AtLeast(need) {
		have := s.level
		if have == "" {
			have = "no"
		}
		return engine.Result{}, engine.Refuse(engine.WhyPermission, s.user, have, c.Name, onStage(c.Stage), need)
	}
	// /help and /status are commands too: permissions may name them
	// (docs/reference.md#permissions).
	switch c.Name {
	case command.NameHelp:
		return engine.Result{Message: "\n\n" + command.Help()}, nil
	case command.NameStatus:
		return p.status(ctx, s)
	}
	sha := ""
	if c.To != "" {
		var err error
		if sha, err = p.Source.Resolve(ctx, s.repo, c.To); err != nil {
			if errors.Is(err, source.ErrUnknownRef) {
				return engine.Result{}, engine.Refuse(engine.WhyNoRef, c.To)
			}
			return engine.Result{}, err
		}
	}
	if c.SHA != "" {
		var err error
		if sha, err = p.onBranch(ctx, s, c.SHA); err != nil {
			return engine.Result{}, err
		}
	}
	if err := p.gate(ctx, s, c, &sha); err != nil {
		return engine.Result{}, err
	}
	req := engine.Request{Repo: s.repo, File: s.file, ConfigSHA: s.head, Head: s.head, Actor: s.user, Reason: c.Reason, Idempotency: idem}
	e := p.Engine
	switch c.Name {
	case command.NameDeploy:
		return e.DeployByHand(ctx, req, sha)
	case command.NamePromote:
		return e.Promote(ctx, req, c.Stage, sha)
	case command.NameCancel:
		return e.Cancel(ctx, req, c.Stage, sha)
	case command.NameRetry:
		return e.Retry(ctx, req, c.Stage)
	case command.NameRollback:
		return e.Rollback(ctx, req, engine.Move{Stage: c.Stage, SHA: sha, Skip: c.Skip, Infra: c.Infra})
	case command.NameRollforward:
		return e.RollForward(ctx, req, engine.Move{Stage: c.Stage, SHA: sha, Skip: c.Skip, Infra: c.Infra})
	case command.NameUnblock:
		return e.Unblock(ctx, req, c.Stage)
	case command.NameStop:
		return e.Stop(ctx, req)
	case command.NameResume:
		return e.Resume(ctx, req)
	case command.NamePatch:
		return e.Patch(ctx, req, c.Stage, sha)
	case command.NameRelease:
		return e.Release(ctx, req)
	case command.NameRedeploy:
		return e.Redeploy(ctx, req, c.Stage, c.Cache)
	case command.NameRestart:
		return e.Restart(ctx, req, c.Stage)
	case command.NameShutdown:
		return e.Shutdown(ctx, req, c.Stage)
	}
	return engine.Result{}, engine.Refuse(engine.WhyNotACommand, c.Name)
}

// onBranch resolves the sha= of /deploy to a full SHA on the pipeline
// branch: a push to that branch is what /deploy stands in for.
func (p *Processors) onBranch(ctx context.Context, s *session, abbrev string) (string, error) {
	sha, err := p.Source.Resolve(ctx, s.repo, abbrev)
	if errors.Is(err, source.ErrUnknownRef) {
		return "", engine.Refuse(engine.WhyNoCommit, abbrev)
	}
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(sha, abbrev) {
		// Resolve takes branch and tag names too; sha= takes only commits.
		return "", engine.Refuse(engine.WhyNotASHA, abbrev)
	}
	on, err := p.Source.Contains(ctx, s.repo, s.branch, sha)
	if err != nil {
		return "", fmt.Errorf("compare with %s: %w", s.branch, err)
	}
	if !on {
		return "", engine.Refuse(engine.WhyOffBranch, sha, s.branch)
	}
	return sha, nil
}

// gate asks the gate about the commands that deploy new code: /patch (of
// the pull request it is given on, unless to= names a revision),
// /rollforward, and /promote. It fills in *sha for a /patch without to=.
func (p *Processors) gate(ctx context.Context, s *session, c *command.Command, sha *string) error {
	var cmd string
	switch c.Name {
	case command.NamePatch:
		cmd = gate.Patch
	case command.NameRollforward:
		cmd = gate.RollForward
	case command.NamePromote:
		cmd = gate.Promote
	default:
		return nil
	}
	if cmd != gate.Patch && gate.Requirements(s.file, cmd, c.Stage) == nil {
		return nil // nothing to check: the engine picks the revision if none is named
	}
	var pull *gate.Pull
	if s.pr {
		pr, err := p.Source.Pull(ctx, s.repo, s.issue)
		if err != nil {
			return fmt.Errorf("read pull request: %w", err)
		}
		if *sha == "" && cmd == gate.Patch {
			*sha = pr.Head
		}
		if pr.Head == *sha {
			pull = &pr
		}
	}
	if *sha == "" {
		switch cmd {
		case gate.Patch:
			return engine.Refuse(engine.WhyPatchNeedsTo)
		case gate.Promote:
			// Gate the revision the engine would pick, then promote that one.
			candidate, err := p.Engine.PromoteCandidate(ctx, s.repo.FullName(), s.file, c.Stage)
			if err != nil || candidate == "" {
				return err // none: the engine refuses, saying why
			}
			*sha = candidate
		}
	}
	return p.Gate.Check(ctx, s.repo, gate.Ask{Command: cmd, Stage: c.Stage, SHA: *sha, File: s.file, Branch: s.branch, Pull: pull})
}

func onStage(stage string) string {
	if stage == "" {
		return ""
	}
	return " on " + stage
}

// status words the /status table.
func (p *Processors) status(ctx context.Context, s *session) (engine.Result, error) {
	st, err := p.Engine.Pipeline(ctx, s.repo.FullName())
	if err != nil {
		return engine.Result{}, err
	}
	return engine.Result{Message: engine.Status(s.file, st)}, nil
}

// buttons maps the identifiers of check run buttons to the commands they
// stand for.
var buttons = map[string]command.Name{"cancel": command.NameCancel, "retry": command.NameRetry, "rollback": command.NameRollback,
	"promote": command.NamePromote, "unblock": command.NameUnblock}

// Button runs a click on a check run button like the matching command.
func (p *Processors) Button(ctx context.Context, job queue.Job) error {
	var aj buttonJob
	if err := json.Unmarshal(job.Data, &aj); err != nil {
		return worker.Permanent{Err: err}
	}
	ctx, log := repoContext(ctx, aj.InstallationID, aj.Owner, aj.Name)
	log = log.With().Str("github_delivery_id", aj.Delivery).Str(engine.LogKeyStage, aj.Stage).Str("github_user", aj.User).Logger()
	ctx = log.WithContext(ctx)
	repo := report.Repo{InstallationID: aj.InstallationID, Owner: aj.Owner, Name: aj.Name}

	name, known := buttons[aj.Identifier]
	s, err := p.session(ctx, repo, aj.DefaultBranch, aj.User)
	if err == nil && !known {
		err = engine.Refuse(engine.WhyUnknownButton, aj.Identifier)
	}
	var res engine.Result
	if err == nil {
		var c *command.Command
		if c, err = p.buttonCommand(ctx, repo, aj, name); err == nil {
			res, err = p.do(ctx, s, c, "action:"+aj.Delivery)
		}
	}
	switch {
	case isRefused(err):
		p.observe(name, CommandRefused)
		log.Info().Str("why", err.Error()).Msg("Button refused.")
		p.buttonRefused(ctx, repo, aj, err)
		return nil
	case err != nil:
		p.observe(name, CommandFailed)
		return err
	}
	p.observe(name, CommandAccepted)
	log.Info().Str("button", aj.Identifier).Msg(res.Message)
	return nil
}

// buttonCommand turns a click into the command it stands for. A button
// acts on the revision its check run is on: a click on an older check run
// is refused, not applied to whatever the stage holds now.
func (p *Processors) buttonCommand(ctx context.Context, repo report.Repo, aj buttonJob, name command.Name) (*command.Command, error) {
	pl, err := p.Engine.Pipeline(ctx, repo.FullName())
	if err != nil {
		return nil, err
	}
	st := pl.Stage(aj.Stage)
	now, waiting := "", ""
	switch {
	case st == nil:
	case name == command.NameRollback:
		now = st.Current
	case st.Job != nil:
		now = st.Job.SHA
	}
	if st != nil && st.Waiting != nil {
		waiting = st.Waiting.SHA
	}
	mine := now == aj.HeadSHA
	switch name {
	case command.NamePromote:
		// It promotes the revision waiting there, and only that one.
		if waiting != aj.HeadSHA {
			return nil, engine.Refuse(engine.WhyOlderWaiting, aj.HeadSHA, aj.Stage, shortOrNone(waiting))
		}
		mine = true
	case command.NameUnblock:
		// On the check run of the stage's job or of the revision waiting.
		mine = mine || waiting == aj.HeadSHA
	case command.NameCancel:
		// On the waiting revision's check run it drops that revision, as
		// /cancel to=<sha> does.
		mine = mine || waiting == aj.HeadSHA
	}
	if !mine {
		return nil, engine.Refuse(engine.WhyOlderCheckRun, aj.HeadSHA, aj.Stage, shortOrNone(now))
	}
	c := &command.Command{Name: name, Stage: aj.Stage, Raw: "button " + aj.Identifier}
	if name == command.NamePromote || name == command.NameCancel && now != aj.HeadSHA {
		c.To = aj.HeadSHA
	}
	if name == command.NameRollback {
		c.Reason = engine.ReasonRollback
		if c.To = st.PreviousGood(); c.To == "" {
			return nil, engine.Refuse(engine.WhyNoPreviousGood, aj.Stage)
		}
	}
	return c, nil
}

func shortOrNone(sha string) string {
	if sha == "" {
		return "no revision"
	}
	return sha[:min(7, len(sha))]
}

// buttonRefused tells the person who clicked a refused button why, on
// the commit the button was on (a click has no thread to reply in).
func (p *Processors) buttonRefused(ctx context.Context, repo report.Repo, aj buttonJob, why error) {
	cr := engine.ButtonRefused(aj.Identifier, aj.Stage, aj.HeadSHA, aj.User, why)
	if err := p.Reporter.CheckRun(ctx, repo, "action:"+aj.Delivery, cr); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not report the refused button.")
	}
}
