package engine

// The operations of docs/reference.md#operations as the shell runs them:
// each is one line of dispatch to its pure transition in core.go, which
// update commits with its effects.

import (
	"context"

	"github.com/railyard/railyard/config"
)

// apply runs one operation's transition for a person or a push and
// returns its reply.
func (e *Engine) apply(ctx context.Context, req Request, op func(p *Pipeline, at Moment) (Effects, error)) (Result, error) {
	var res Result
	err := e.update(ctx, req.Repo.FullName(), nil, func(p *Pipeline, at Moment) (Effects, error) {
		fx, err := op(p, at)
		res = fx.Reply
		return fx, err
	})
	return res, err
}

// Deploy starts the pipeline for a push of sha (Pipeline.Deploy).
func (e *Engine) Deploy(ctx context.Context, req Request, sha string, seq int64) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Deploy(req, sha, seq, at) })
}

// DeployByHand starts the pipeline for sha as a push would: /deploy
// (Pipeline.DeployByHand). The caller checks that sha is on the pipeline
// branch.
func (e *Engine) DeployByHand(ctx context.Context, req Request, sha string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.DeployByHand(req, sha, at) })
}

// Promote runs /promote (Pipeline.Promote).
func (e *Engine) Promote(ctx context.Context, req Request, stage, sha string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Promote(req, stage, sha, at) })
}

// Cancel runs /cancel (Pipeline.Cancel).
func (e *Engine) Cancel(ctx context.Context, req Request, stage, sha string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Cancel(req, stage, sha, at) })
}

// Retry runs /retry (Pipeline.Retry).
func (e *Engine) Retry(ctx context.Context, req Request, stage string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Retry(req, stage, at) })
}

// Rollback runs /rollback (Pipeline.Rollback).
func (e *Engine) Rollback(ctx context.Context, req Request, m Move) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Rollback(req, m, at) })
}

// RollForward runs /rollforward (Pipeline.RollForward).
func (e *Engine) RollForward(ctx context.Context, req Request, m Move) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.RollForward(req, m, at) })
}

// Unblock runs /unblock (Pipeline.Unblock).
func (e *Engine) Unblock(ctx context.Context, req Request, stage string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Unblock(req, stage, at) })
}

// Stop runs /stop (Pipeline.Stop).
func (e *Engine) Stop(ctx context.Context, req Request) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Stop(req, at) })
}

// Resume runs /resume (Pipeline.Resume).
func (e *Engine) Resume(ctx context.Context, req Request) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Resume(req, at) })
}

// Patch runs /patch (Pipeline.Patch).
func (e *Engine) Patch(ctx context.Context, req Request, stage, sha string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Patch(req, stage, sha, at) })
}

// Release runs /release (Pipeline.Release).
func (e *Engine) Release(ctx context.Context, req Request) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Release(req, at) })
}

// Redeploy runs /redeploy (Pipeline.Redeploy).
func (e *Engine) Redeploy(ctx context.Context, req Request, stage, cache string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Redeploy(req, stage, cache, at) })
}

// Restart runs /restart (Pipeline.Restart).
func (e *Engine) Restart(ctx context.Context, req Request, stage string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Restart(req, stage, at) })
}

// Shutdown runs /shutdown (Pipeline.Shutdown).
func (e *Engine) Shutdown(ctx context.Context, req Request, stage string) (Result, error) {
	return e.apply(ctx, req, func(p *Pipeline, at Moment) (Effects, error) { return p.Shutdown(req, stage, at) })
}

// PromoteCandidate returns the revision Promote picks when given none
// (Pipeline.PromoteCandidate).
func (e *Engine) PromoteCandidate(ctx context.Context, repo string, file *config.Pipeline, stage string) (string, error) {
	p, err := e.load(ctx, e.rdb, repo)
	if err != nil {
		return "", err
	}
	return p.PromoteCandidate(file, stage), nil
}
