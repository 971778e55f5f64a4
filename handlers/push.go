package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/store"
)

// Push takes pushes: a push to a repository's pipeline branch becomes a
// push job that loads the pipeline file and starts the first stage.
type Push struct{ Base }

func (h *Push) Handles() []string { return []string{"push"} }

// pushJob is the queued part of a push event.
type pushJob struct {
	InstallationID int64  `json:"installation_id"`
	Owner          string `json:"owner"`
	Name           string `json:"name"`
	SHA            string `json:"sha"`
	Branch         string `json:"branch"`
	DefaultBranch  string `json:"default_branch"`
	Pusher         string `json:"pusher"`
	Delivery       string `json:"delivery"`
	// Sequence numbers pushes in the order GitHub delivered them, so push
	// jobs running in parallel cannot deploy an older revision last.
	Sequence int64 `json:"sequence"`
}

func (h *Push) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev github.PushEvent
	if err := decode(payload, &ev); err != nil {
		return err
	}
	repo := ev.GetRepo()
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	if owner == "" {
		owner = repo.GetOwner().GetName()
	}
	ctx, log := repoContext(ctx, ev.GetInstallation().GetID(), owner, name)

	ref := ev.GetRef()
	switch {
	case ev.GetDeleted():
		log.Debug().Str("ref", ref).Msg("Ref deleted; ignoring push.")
		return nil
	case !strings.HasPrefix(ref, "refs/heads/"):
		log.Debug().Str("ref", ref).Msg("Not a branch; ignoring push.")
		return nil
	case ev.GetInstallation().GetID() == 0:
		log.Debug().Msg("Push without an installation; ignoring.")
		return nil
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	def := repo.GetDefaultBranch()
	if branch != def {
		// Only the default branch can change the pipeline file, so a push
		// elsewhere is wanted only if the file names that branch.
		known, err := PipelineBranch(ctx, h.Redis, owner+"/"+name)
		if err != nil {
			return err
		}
		if known != branch && known != unknownBranch {
			log.Debug().Str("ref", ref).Str("pipeline_branch", known).Msg("Not the pipeline branch; ignoring push.")
			return nil
		}
	}
	seq, err := h.Redis.Incr(ctx, store.RepoKey(owner+"/"+name, "pushes")).Result()
	if err != nil {
		return fmt.Errorf("%w: number push: %v", store.ErrUnavailable, err)
	}
	return h.enqueue(ctx, "delivery:"+deliveryID, KindPush, owner+"/"+name, pushJob{
		InstallationID: ev.GetInstallation().GetID(), Owner: owner, Name: name,
		SHA: ev.GetAfter(), Branch: branch, DefaultBranch: def,
		Pusher: pusherOf(&ev), Delivery: deliveryID, Sequence: seq,
	})
}

func pusherOf(ev *github.PushEvent) string {
	if l := ev.GetSender().GetLogin(); l != "" {
		return l
	}
	return ev.GetPusher().GetName()
}

// The pipeline branch cache lets the request path drop pushes to other
// branches without asking GitHub. It is refreshed whenever a push job
// reads the file.
const (
	unknownBranch = ""
	noPipeline    = "\x00none"
)

func branchKey(repo string) string { return store.RepoKey(repo, "branch") }

// PipelineBranch returns the cached pipeline branch of repo: "" when not
// known yet.
func PipelineBranch(ctx context.Context, rdb redis.UniversalClient, repo string) (string, error) {
	b, err := rdb.Get(ctx, branchKey(repo)).Result()
	if errors.Is(err, redis.Nil) {
		return unknownBranch, nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return b, nil
}

var _ githubapp.EventHandler = (*Push)(nil)
