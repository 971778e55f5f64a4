package queue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/store"
)

// A state change and the jobs it implies must commit together. On one
// Redis, AddTx adds the job to the stream inside the caller's MULTI. But on
// Redis Cluster a transaction touches one hash slot: the repository's. So
// there AddTx does not add to the stream; it appends the job to an outbox list
// in the repository's slot, inside the caller's MULTI, and Forward moves
// it to the stream after EXEC. Forwarding adds each job once by a nonce
// it got in AddTx (EnqueueOnce), so a move repeated after a crash never
// doubles it. Before the MULTI, AddTx marks the repository in a global
// index (store.Pending); Claim sweeps the marks that are due, so a job a
// crashed process left in an outbox still reaches the stream.

const (
	// forwardBatch is how many outbox jobs one read moves.
	forwardBatch = 100
	// forwardedTTL is how long a forwarded job's nonce is remembered:
	// far longer than a job waits in an outbox after its first move.
	forwardedTTL = 24 * time.Hour
	// sweepEvery is how often one queue looks for outboxes a crash left.
	sweepEvery = time.Second
	sweepBatch = 16
)

// AddTx queues j on a caller's MULTI pipeline (TxPipelined) of a
// transaction on j.Repo's keys, so that the caller's state change and the
// job commit together or not at all. The caller calls Committed after
// EXEC. On Redis Cluster, j.Repo must be set: the job waits in that
// repository's outbox, on its slot, until Committed forwards it (or a
// sweep finds it).
//
// There AddTx marks the repository in the global index at once, before
// EXEC. If it cannot, it makes the transaction fail, rather than commit a
// job no sweep could find.
func (q *Queue) AddTx(pipe redis.Pipeliner, j Job) {
	// A pipeline only queues the command; Exec's context is the one that counts.
	ctx := context.Background()
	if !q.viaOutbox {
		pipe.XAdd(ctx, q.xadd(encode(j, 0, false)))
		return
	}
	if err := q.pending.Mark(ctx, q.member(j.Repo)); err != nil {
		// Redis (and miniredis) refuse a command with too few arguments
		// while queueing it, and then the whole EXEC (EXECABORT).
		pipe.Do(ctx, "RPUSH", q.outbox(j.Repo))
		return
	}
	pipe.RPush(ctx, q.outbox(j.Repo), encode(j, 0, true))
}

func (q *Queue) member(repo string) string { return strings.ToLower(repo) }

// outbox is the list of jobs repo's transactions queued, in its slot; the
// queue's prefix keeps queues (and tests) apart.
func (q *Queue) outbox(repo string) string { return store.RepoKey(repo, "queued", q.opts.Prefix) }

// Committed queues the jobs a committed transaction on repo's keys added
// with AddTx: on Redis Cluster it forwards them from the repository's
// outbox (see Forward); on one Redis they are queued already.
func (q *Queue) Committed(ctx context.Context, repo string) error {
	if !q.viaOutbox {
		return nil
	}
	_, err := q.Forward(ctx, repo)
	return err
}

// Forward moves the jobs waiting in repo's outbox to the stream, oldest
// first, and returns how many it moved. Call it after the EXEC of a
// transaction that called AddTx; concurrent calls for one repository add
// each job once.
func (q *Queue) Forward(ctx context.Context, repo string) (int, error) {
	key := q.outbox(repo)
	moved := 0
	for {
		items, err := q.rdb.LRange(ctx, key, 0, forwardBatch-1).Result()
		if err != nil {
			return moved, fmt.Errorf("read job outbox of %s: %w", repo, err)
		}
		for _, item := range items {
			e, err := decode(item)
			if err == nil {
				_, _, err = q.EnqueueOnce(ctx, "forwarded:"+e.Nonce, forwardedTTL, e.job(""))
				if err != nil {
					return moved, fmt.Errorf("forward job of %s: %w", repo, err)
				}
			} else {
				zerolog.Ctx(ctx).Error().Err(err).Str("railyard_repository", repo).Msg("Dropped an unreadable job from a job outbox.")
			}
			// LREM, not LPOP: another mover may have taken it already.
			if err := q.rdb.LRem(ctx, key, 1, item).Err(); err != nil {
				return moved, fmt.Errorf("remove forwarded job of %s: %w", repo, err)
			}
			moved++
		}
		if len(items) < forwardBatch {
			return moved, nil
		}
	}
}

// sweep forwards the outboxes whose marks are due, at most every
// sweepEvery: what a process that crashed between its EXEC and its
// Forward left behind. On one Redis nothing is marked: AddTx queues in
// the caller's transaction.
func (q *Queue) sweep(ctx context.Context) error {
	if !q.viaOutbox {
		return nil
	}
	now := time.Now().UnixNano()
	next := q.nextSweep.Load()
	if now < next || !q.nextSweep.CompareAndSwap(next, now+sweepEvery.Nanoseconds()) {
		return nil
	}
	repos, err := q.pending.Due(ctx, sweepBatch)
	if err != nil {
		return err
	}
	for _, repo := range repos {
		n, err := q.Forward(ctx, repo)
		if err != nil {
			return err
		}
		if n > 0 {
			zerolog.Ctx(ctx).Warn().Str("railyard_repository", repo).Int("railyard_jobs", n).
				Msg("Forwarded jobs a process left in a job outbox; it stopped between a state change and queueing its jobs.")
		}
		if err := q.pending.Done(ctx, repo); err != nil {
			return err
		}
	}
	return nil
}
