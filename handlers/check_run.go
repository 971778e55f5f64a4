package handlers

import (
	"context"
	"strconv"
	"strings"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// CheckRun takes clicks on the buttons of Railyard's check runs.
type CheckRun struct{ Base }

func (h *CheckRun) Handles() []string { return []string{"check_run"} }

// buttonJob is the queued part of a click on a check run button.
type buttonJob struct {
	InstallationID int64  `json:"installation_id"`
	Owner          string `json:"owner"`
	Name           string `json:"name"`
	DefaultBranch  string `json:"default_branch"`
	Identifier     string `json:"identifier"`
	Stage          string `json:"stage"`
	HeadSHA        string `json:"head_sha"`
	User           string `json:"user"`
	Delivery       string `json:"delivery"`
}

func (h *CheckRun) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev github.CheckRunEvent
	if err := decode(payload, &ev); err != nil {
		return err
	}
	repo := ev.GetRepo()
	ctx, log := githubapp.PrepareRepoContext(ctx, ev.GetInstallation().GetID(), repo)
	cr := ev.GetCheckRun()
	stage, isOurs := strings.CutPrefix(cr.GetName(), "railyard/")
	switch {
	case ev.GetAction() != "requested_action":
		log.Info().Str("action", ev.GetAction()).Msg("Not a button click; ignoring check run event.")
		return nil
	case !isOurs || stage == "pipeline" || stage == "config":
		log.Info().Str("check_run", cr.GetName()).Msg("Not a Railyard stage check run; ignoring.")
		return nil
	case isBot(ev.GetSender()):
		log.Info().Msg("Button clicked by a bot; ignoring.")
		return nil
	}
	return h.enqueue(ctx, "delivery:"+deliveryID, KindButton, repo.GetFullName(), buttonJob{
		InstallationID: ev.GetInstallation().GetID(),
		Owner:          repo.GetOwner().GetLogin(), Name: repo.GetName(), DefaultBranch: repo.GetDefaultBranch(),
		Identifier: ev.GetRequestedAction().Identifier, Stage: stage, HeadSHA: cr.GetHeadSHA(),
		User: ev.GetSender().GetLogin(), Delivery: deliveryID,
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var _ githubapp.EventHandler = (*CheckRun)(nil)
