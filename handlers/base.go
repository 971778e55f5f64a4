package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/store"
)

// Job kinds the handlers put on the queue.
const (
	KindPush    = "push"
	KindComment = "comment"
	KindButton  = "action" // a check run button click; the value predates the name
)

// dedupeTTL is how long a delivery or comment id is remembered.
const dedupeTTL = 24 * time.Hour

// Base is what every handler shares: the store and the queues.
type Base struct {
	Redis redis.UniversalClient
	Queue *queue.Queue // the bot's own work: pushes
	// People takes people's commands (comments, button clicks), so that a
	// burst of pushes never holds back a person's 👀 (issue #15).
	People *queue.Queue
}

// queueFor is the queue a job of kind goes on: people's commands on their
// own, everything else on the intake queue.
func (b *Base) queueFor(kind string) *queue.Queue {
	if kind == KindComment || kind == KindButton {
		return b.People
	}
	return b.Queue
}

// enqueue puts one job on its queue (queueFor) unless the same key was seen within a
// day. Store failures wrap store.ErrUnavailable, which the server answers
// with 503 so GitHub can redeliver.
func (b *Base) enqueue(ctx context.Context, key, kind, repo string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s job: %w", kind, err)
	}
	id, dup, err := b.queueFor(kind).EnqueueOnce(ctx, key, dedupeTTL, queue.Job{Kind: kind, Repo: repo, Data: raw})
	if err != nil {
		return fmt.Errorf("%w: enqueue %s job: %v", store.ErrUnavailable, kind, err)
	}
	log := zerolog.Ctx(ctx)
	if dup {
		log.Info().Str("railyard_dedupe", key).Msg("Seen before; not queued again.")
		return nil
	}
	log.Info().Str("railyard_queue_job", id).Str("railyard_kind", kind).Msg("Queued.")
	return nil
}

// repoContext adds go-githubapp's repository log keys to ctx.
func repoContext(ctx context.Context, installationID int64, owner, name string) (context.Context, zerolog.Logger) {
	logger := zerolog.Ctx(ctx).With().
		Int64(githubapp.LogKeyInstallationID, installationID).
		Str(githubapp.LogKeyRepositoryOwner, owner).
		Str(githubapp.LogKeyRepositoryName, name).
		Logger()
	return logger.WithContext(ctx), logger
}

// isBot reports whether a GitHub user is a bot or app (Railyard included).
func isBot(u *github.User) bool {
	return u.GetType() == "Bot" || strings.HasSuffix(u.GetLogin(), "[bot]")
}

var errBadPayload = errors.New("malformed payload")

func decode(payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: %v", errBadPayload, err)
	}
	return nil
}

// IsBadPayload reports whether err is a payload that cannot be decoded.
func IsBadPayload(err error) bool { return errors.Is(err, errBadPayload) }
