package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/redis/go-redis/v9"
	"github.com/tidwall/gjson"

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
}

// pushEvent is the part of a push payload the handler reads.
type pushEvent struct {
	Ref, After, Repo, DefaultBranch string
	Owner, OwnerName                string // owner.login, and owner.name (older payloads)
	Sender, Pusher                  string // sender.login, pusher.name
	Deleted                         bool
	InstallationID                  int64
}

// decodePush reads the fields the handler needs out of a push payload in
// one pass, skipping the rest (commits, most of the repository): a full
// decode with encoding/json was most of the cost of taking a push
// (BENCHMARKS.md).
func decodePush(payload []byte) (pushEvent, error) {
	if !gjson.ValidBytes(payload) {
		return pushEvent{}, fmt.Errorf("%w: push payload is not JSON", errBadPayload)
	}
	var ev pushEvent
	var have uint8 // a bit for each of ref, after, repository.name and .default_branch
	str := func(dst *string, bit uint8, v gjson.Result) {
		if v.Type == gjson.String {
			*dst = v.Str
			have |= bit
		}
	}
	gjson.ParseBytes(payload).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "ref":
			str(&ev.Ref, 1, v)
		case "after":
			str(&ev.After, 2, v)
		case "deleted":
			ev.Deleted = v.Bool()
		case "installation":
			ev.InstallationID = v.Get("id").Int()
		case "sender":
			ev.Sender = v.Get("login").String()
		case "pusher":
			ev.Pusher = v.Get("name").String()
		case "repository":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "name":
					str(&ev.Repo, 4, v)
				case "default_branch":
					str(&ev.DefaultBranch, 8, v)
				case "owner":
					ev.Owner, ev.OwnerName = v.Get("login").String(), v.Get("name").String()
				}
				return true
			})
		}
		return true
	})
	if have != 15 {
		return pushEvent{}, fmt.Errorf("%w: push payload lacks ref, after, repository.name or repository.default_branch", errBadPayload)
	}
	return ev, nil
}

func (h *Push) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	ev, err := decodePush(payload)
	if err != nil {
		return err
	}
	owner, name := cmp.Or(ev.Owner, ev.OwnerName), ev.Repo
	ctx, log := repoContext(ctx, ev.InstallationID, owner, name)

	ref := ev.Ref
	switch {
	case ev.Deleted:
		log.Debug().Str("ref", ref).Msg("Ref deleted; ignoring push.")
		return nil
	case !strings.HasPrefix(ref, "refs/heads/"):
		log.Debug().Str("ref", ref).Msg("Not a branch; ignoring push.")
		return nil
	case ev.InstallationID == 0:
		log.Debug().Msg("Push without an installation; ignoring.")
		return nil
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	def := ev.DefaultBranch
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
	return h.enqueue(ctx, "delivery:"+deliveryID, KindPush, owner+"/"+name, pushJob{
		InstallationID: ev.InstallationID, Owner: owner, Name: name,
		SHA: ev.After, Branch: branch, DefaultBranch: def,
		Pusher: cmp.Or(ev.Sender, ev.Pusher), Delivery: deliveryID,
	})
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
