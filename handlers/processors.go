package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/command"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/gate"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/worker"
)

// Source is what the processors read from GitHub (package source).
type Source interface {
	Load(ctx context.Context, repo report.Repo, sha string) (config.Loaded, error)
	Resolve(ctx context.Context, repo report.Repo, ref string) (string, error)
	Permission(ctx context.Context, repo report.Repo, user string) (config.Level, error)
	Pull(ctx context.Context, repo report.Repo, number int) (gate.Pull, error)
	// Contains reports whether sha is on branch.
	Contains(ctx context.Context, repo report.Repo, branch, sha string) (bool, error)
}

// Reporter is what the processors write to GitHub (package report).
type Reporter interface {
	CheckRun(ctx context.Context, repo report.Repo, key string, cr report.CheckRun) error
	Comment(ctx context.Context, repo report.Repo, issue int, body string) error
	Reaction(ctx context.Context, repo report.Repo, commentID int64, content string) error
}

// Processors run the queued work of the handlers.
type Processors struct {
	Redis    redis.UniversalClient
	Engine   *engine.Engine
	Source   Source
	Reporter Reporter
	// Gate decides /patch, /rollforward and /promote into production.
	Gate *gate.Gate
	// Observe hears how each command of a comment or button ended, for
	// metrics; name is "" for a line that names no command.
	Observe func(name command.Name, result CommandResult)
}

// CommandResult is how a command ended.
type CommandResult string

const (
	CommandAccepted CommandResult = "accepted" // it ran
	CommandRefused  CommandResult = "refused"  // the person may not, or the pipeline does not allow it now
	CommandInvalid  CommandResult = "invalid"  // the line cannot be parsed
	CommandFailed   CommandResult = "failed"   // something broke; the comment or click is tried again
)

func (p *Processors) observe(name command.Name, result CommandResult) {
	if p.Observe != nil {
		p.Observe(name, result)
	}
}

// Register adds the processors to a worker pool's table.
func (p *Processors) Register(table map[string]worker.Processor) {
	table[KindPush] = p.Push
	table[KindComment] = p.Comment
	table[KindButton] = p.Button
}

// Push loads the pipeline file for a pushed commit and starts the pipeline.
func (p *Processors) Push(ctx context.Context, job queue.Job) error {
	var pj pushJob
	if err := json.Unmarshal(job.Data, &pj); err != nil {
		return worker.Permanent{Err: err}
	}
	ctx, log := repoContext(ctx, pj.InstallationID, pj.Owner, pj.Name)
	log = log.With().Str("github_delivery_id", pj.Delivery).Str(engine.LogKeySHA, pj.SHA).Logger()
	ctx = log.WithContext(ctx)
	repo := report.Repo{InstallationID: pj.InstallationID, Owner: pj.Owner, Name: pj.Name}

	// The file is read from the default branch only.
	configSHA := pj.SHA
	if pj.Branch != pj.DefaultBranch {
		sha, err := p.Source.Resolve(ctx, repo, pj.DefaultBranch)
		if err != nil {
			return fmt.Errorf("resolve default branch: %w", err)
		}
		configSHA = sha
	}
	loaded, err := p.Source.Load(ctx, repo, configSHA)
	if errors.Is(err, config.ErrNoPipeline) {
		if err := p.Redis.Set(ctx, branchKey(repo.FullName()), noPipeline, branchTTL).Err(); err != nil {
			return fmt.Errorf("remember that there is no pipeline file: %w", err)
		}
		log.Info().Msg("No pipeline file on the default branch; ignoring push.")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load pipeline file: %w", err)
	}
	if len(loaded.Problems) > 0 {
		if pj.Branch == pj.DefaultBranch {
			p.reportBrokenFile(ctx, repo, pj.SHA, loaded.Problems)
		}
		log.Info().Int("problems", len(loaded.Problems)).Msg("Pipeline file is broken; reported it.")
		return nil
	}
	branch := loaded.Pipeline.Branch
	if branch == "" {
		branch = pj.DefaultBranch
	}
	if err := p.Redis.Set(ctx, branchKey(repo.FullName()), branch, branchTTL).Err(); err != nil {
		return fmt.Errorf("remember the pipeline branch: %w", err)
	}
	if pj.Branch != branch {
		log.Info().Str("pipeline_branch", branch).Msg("Not the pipeline branch; ignoring push.")
		return nil
	}
	res, err := p.Engine.Deploy(ctx, engine.Request{
		Repo: repo, File: loaded.Pipeline, ConfigSHA: configSHA, Head: pj.SHA,
		Actor: pj.Pusher, Idempotency: "push:" + pj.Delivery,
	}, pj.SHA, queue.Order(job.First)) // jobs running in parallel must not deploy an older push last
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	log.Info().Msg(res.Message)
	return nil
}

// reportBrokenFile puts a failing railyard/config check run on the commit
// that carries a broken pipeline file, listing every problem.
func (p *Processors) reportBrokenFile(ctx context.Context, repo report.Repo, sha string, problems []config.Problem) {
	if err := p.Reporter.CheckRun(ctx, repo, "config:"+sha, engine.BrokenFile(sha, problems)); err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not report the broken pipeline file.")
	}
}
