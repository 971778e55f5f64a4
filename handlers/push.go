package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fastjson"

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

// pushParsers parse push payloads without allocating a tree per push.
var pushParsers fastjson.ParserPool

// decodePush validates a push payload and reads the fields the handler
// needs in one pass, skipping the rest (commits, most of the repository):
// a full decode with encoding/json was most of the cost of taking a push
// (BENCHMARKS.md).
func decodePush(payload []byte) (pushEvent, error) {
	p := pushParsers.Get()
	defer pushParsers.Put(p)
	v, err := p.ParseBytes(payload)
	if err != nil {
		return pushEvent{}, fmt.Errorf("%w: push payload is not JSON: %v", errBadPayload, err)
	}
	// The parser's values live only until it is reused: copy what is kept.
	str := func(keys ...string) (string, bool) {
		s := v.Get(keys...)
		if s == nil || s.Type() != fastjson.TypeString {
			return "", false
		}
		return string(s.GetStringBytes()), true
	}
	ev := pushEvent{
		Deleted:        v.GetBool("deleted"),
		InstallationID: v.GetInt64("installation", "id"),
	}
	var ok [4]bool
	ev.Ref, ok[0] = str("ref")
	ev.After, ok[1] = str("after")
	ev.Repo, ok[2] = str("repository", "name")
	ev.DefaultBranch, ok[3] = str("repository", "default_branch")
	if ok != [4]bool{true, true, true, true} {
		return pushEvent{}, fmt.Errorf("%w: push payload lacks ref, after, repository.name or repository.default_branch", errBadPayload)
	}
	ev.Owner, _ = str("repository", "owner", "login")
	ev.OwnerName, _ = str("repository", "owner", "name")
	ev.Sender, _ = str("sender", "login")
	ev.Pusher, _ = str("pusher", "name")
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
		log.Info().Str("ref", ref).Msg("Ref deleted; ignoring push.")
		return nil
	case !strings.HasPrefix(ref, "refs/heads/"):
		log.Info().Str("ref", ref).Msg("Not a branch; ignoring push.")
		return nil
	case ev.InstallationID == 0:
		log.Info().Msg("Push without an installation; ignoring.")
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
			log.Info().Str("ref", ref).Str("pipeline_branch", known).Msg("Not the pipeline branch; ignoring push.")
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
// reads the file, and forgotten branchTTL after: a repository nobody
// pushes to any more leaves nothing behind, and the next push to one that
// forgot is taken and reads the file again.
const (
	branchTTL     = 30 * 24 * time.Hour
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
