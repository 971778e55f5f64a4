package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The paths below serve Options.SingleProcess: a store that only this
// process uses and that a crash empties anyway, the embedded store. That
// store runs each Lua script in a newly built interpreter, about 140 µs of
// CPU, so the hot paths there (taking a webhook, claiming a job) do their
// steps as plain commands instead. Each is ordered so that goroutines of
// this process racing through it cannot double a job; what a crash between
// two steps could lose, the crash loses anyway.

// enqueueOnceLocal is EnqueueOnce in steps: claim the dedupe key, add the
// job, record its id under the key. SET NX lets only one delivery of a key
// through; a failed add frees the key so that a redelivery is not refused.
func (q *Queue) enqueueOnceLocal(ctx context.Context, key string, ttl time.Duration, j Job) (id string, duplicate bool, err error) {
	fail := func(err error) (string, bool, error) {
		return "", false, fmt.Errorf("enqueue %s job once: %w", j.Kind, err)
	}
	fresh, err := q.rdb.SetNX(ctx, key, "", ttl).Result()
	if err != nil {
		return fail(err)
	}
	if !fresh {
		// "" while the first delivery is still between its steps.
		id, err := q.rdb.Get(ctx, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail(err)
		}
		return id, true, nil
	}
	id, err = q.rdb.XAdd(ctx, q.xadd(encode(j, 0, false))).Result()
	if err != nil {
		q.rdb.Del(context.WithoutCancel(ctx), key)
		return fail(err)
	}
	// The job is queued whatever this answers; a failure only leaves a later
	// duplicate without the first job's id.
	q.rdb.SetXX(ctx, key, id, redis.KeepTTL)
	return id, false, nil
}

// takeOverLocal is takeOver in two commands. XAUTOCLAIM resets the entry's
// idle time, so no other consumer can take it between them.
func (q *Queue) takeOverLocal(ctx context.Context, consumer string) (id, job string, count int64, err error) {
	start := "0-0"
	for {
		msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: q.stream, Group: q.opts.Group, Consumer: consumer,
			MinIdle: q.opts.Lease, Start: start, Count: 1,
		}).Result()
		if err != nil {
			return "", "", 0, err
		}
		if len(msgs) > 0 {
			m := msgs[0]
			p, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: q.stream, Group: q.opts.Group, Start: m.ID, End: m.ID, Count: 1,
			}).Result()
			if err != nil {
				return "", "", 0, err
			}
			if len(p) == 0 || p[0].Consumer != consumer {
				return "", "", 0, nil // acked or dead-lettered meanwhile
			}
			job, _ := m.Values["job"].(string)
			return m.ID, job, p[0].RetryCount, nil
		}
		if next == "0-0" {
			return "", "", 0, nil
		}
		start = next
	}
}

// promoteLocal is promote in plain commands. Each due job is removed from
// the delayed set before it is added to the stream, and only by the
// goroutine whose ZREM removed it.
func (q *Queue) promoteLocal(ctx context.Context) (time.Duration, error) {
	fail := func(err error) (time.Duration, error) { return 0, fmt.Errorf("move due delayed jobs: %w", err) }
	for {
		first, err := q.rdb.ZRangeWithScores(ctx, q.delayed, 0, 0).Result()
		if err != nil {
			return fail(err)
		}
		if len(first) == 0 {
			return -1, nil
		}
		// The server's clock, as in the scripts: it set the due times.
		now, err := q.rdb.Time(ctx).Result()
		if err != nil {
			return fail(err)
		}
		nowMs := now.UnixMilli()
		if wait := int64(first[0].Score) - nowMs; wait > 0 {
			return time.Duration(wait) * time.Millisecond, nil
		}
		due, err := q.rdb.ZRangeByScore(ctx, q.delayed, &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(nowMs, 10), Count: promoteBatch,
		}).Result()
		if err != nil {
			return fail(err)
		}
		for _, job := range due {
			mine, err := q.rdb.ZRem(ctx, q.delayed, job).Result()
			if err != nil {
				return fail(err)
			}
			if mine == 0 {
				continue // another goroutine moved it
			}
			if err := q.rdb.XAdd(ctx, q.xadd(job)).Err(); err != nil {
				// Put it back rather than lose it.
				q.rdb.ZAdd(context.WithoutCancel(ctx), q.delayed, redis.Z{Score: float64(nowMs), Member: job})
				return fail(err)
			}
		}
	}
}
