package handlers

import (
	"context"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/railyard/railyard/command"
)

// IssueComment takes comments on issues and pull requests; one that holds
// slash commands becomes a comment job.
type IssueComment struct{ Base }

func (h *IssueComment) Handles() []string { return []string{"issue_comment"} }

// commentJob is the queued part of a comment.
type commentJob struct {
	InstallationID int64  `json:"installation_id"`
	Owner          string `json:"owner"`
	Name           string `json:"name"`
	DefaultBranch  string `json:"default_branch"`
	Issue          int    `json:"issue"`
	PullRequest    bool   `json:"pull_request"`
	CommentID      int64  `json:"comment_id"`
	Body           string `json:"body"`
	User           string `json:"user"`
	Delivery       string `json:"delivery"`
}

func (h *IssueComment) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev github.IssueCommentEvent
	if err := decode(payload, &ev); err != nil {
		return err
	}
	repo := ev.GetRepo()
	ctx, log := githubapp.PrepareRepoContext(ctx, ev.GetInstallation().GetID(), repo)
	comment := ev.GetComment()
	switch {
	case ev.GetAction() != "created":
		log.Info().Str("action", ev.GetAction()).Msg("Comment edited or deleted; ignoring.")
		return nil
	case isBot(comment.GetUser()):
		log.Info().Str("user", comment.GetUser().GetLogin()).Msg("Comment by a bot; ignoring.")
		return nil
	case ev.GetInstallation().GetID() == 0:
		log.Info().Msg("Comment without an installation; ignoring.")
		return nil
	case len(command.Parse(comment.GetBody())) == 0:
		log.Info().Msg("No commands in comment; ignoring.")
		return nil
	}
	// Keyed on the comment, not the delivery: GitHub may deliver one comment
	// under two delivery ids, and it must act once.
	return h.enqueue(ctx, "comment:"+itoa(comment.GetID()), KindComment, repo.GetFullName(), commentJob{
		InstallationID: ev.GetInstallation().GetID(),
		Owner:          repo.GetOwner().GetLogin(), Name: repo.GetName(), DefaultBranch: repo.GetDefaultBranch(),
		Issue: ev.GetIssue().GetNumber(), PullRequest: ev.GetIssue().IsPullRequest(),
		CommentID: comment.GetID(), Body: comment.GetBody(), User: comment.GetUser().GetLogin(),
		Delivery: deliveryID,
	})
}

var _ githubapp.EventHandler = (*IssueComment)(nil)
