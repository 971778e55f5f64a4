package handlers

import (
	"context"
	"fmt"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/store"
)

// WorkflowRun records what GitHub says of the workflow runs that workflow
// steps dispatched, so the step waiting for one learns at once that it
// started or completed. Nothing is queued: one store write is all it takes.
type WorkflowRun struct{ Base }

func (h *WorkflowRun) Handles() []string { return []string{"workflow_run"} }

func (h *WorkflowRun) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev github.WorkflowRunEvent
	if err := decode(payload, &ev); err != nil {
		return err
	}
	repo := ev.GetRepo()
	ctx, log := githubapp.PrepareRepoContext(ctx, ev.GetInstallation().GetID(), repo)
	run := ev.GetWorkflowRun()
	recorded, err := actions.Record(ctx, h.Redis, repo.GetFullName(), ev.GetWorkflow().GetPath(), run)
	if err != nil {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	if !recorded {
		log.Info().Str("event", run.GetEvent()).Msg("Workflow run not started by a dispatch; ignoring.")
		return nil
	}
	log.Info().Int64("railyard_run", run.GetID()).Str("status", run.GetStatus()).
		Str("conclusion", run.GetConclusion()).Msg("Recorded workflow run.")
	return nil
}

var _ githubapp.EventHandler = (*WorkflowRun)(nil)
