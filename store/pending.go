package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pending is a global index of repositories whose outbox may hold work to
// forward, for transactional outboxes on Redis Cluster.
//
// A transaction may touch one hash slot only, so a repository's state
// change cannot also write a global structure (a queue's stream, a ready
// set). It writes the work into an outbox of its own slot instead, and a
// mover forwards it afterwards. A crash between the commit and the move
// must not strand the work, so the repository is marked here BEFORE the
// transaction: the mark is due Grace later, by when the transaction has
// committed or never will, and a sweep forwards every repository whose
// mark is due. A mark whose transaction aborted only costs the sweep a
// look at an empty outbox.
//
// Every time is the Redis server's (TIME in the scripts below), so the
// processes' clocks do not matter; the index is one key, on one slot.
type Pending struct {
	rdb   redis.UniversalClient
	key   string
	grace time.Duration
}

// DefaultGrace bounds how long a transaction may take from its Mark to its
// EXEC; a sweep forwards what a crashed process left after it.
const DefaultGrace = 10 * time.Second

// NewPending returns the index kept at key (a global key: GlobalKey);
// grace 0 means DefaultGrace.
func NewPending(rdb redis.UniversalClient, key string, grace time.Duration) *Pending {
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Pending{rdb: rdb, key: key, grace: grace}
}

var (
	// markScript makes member due ARGV[2] ms from now, or keeps a later due time.
	markScript = redis.NewScript(nowMs + `
redis.call("ZADD", KEYS[1], "GT", now + tonumber(ARGV[2]), ARGV[1])
return 1`)
	// dueScript returns up to ARGV[1] members that are due.
	dueScript = redis.NewScript(nowMs + `
return redis.call("ZRANGE", KEYS[1], "-inf", now, "BYSCORE", "LIMIT", 0, tonumber(ARGV[1]))`)
	// doneScript removes member ARGV[1] if it is still due: a member marked
	// again since, for a transaction that may not have committed yet, stays.
	doneScript = redis.NewScript(nowMs + `
local s = redis.call("ZSCORE", KEYS[1], ARGV[1])
if s and tonumber(s) <= now then redis.call("ZREM", KEYS[1], ARGV[1]) end
return 1`)
)

// nowMs is the server's time in milliseconds.
const nowMs = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// Mark records that member's outbox is about to get work. Call it before
// the transaction that writes the outbox, and do not commit that
// transaction if Mark failed.
func (p *Pending) Mark(ctx context.Context, member string) error {
	if err := markScript.Run(ctx, p.rdb, []string{p.key}, member, p.grace.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("mark %s pending: %w", member, err)
	}
	return nil
}

// Due returns up to n members whose marks are due: their outboxes may hold
// work a crashed process did not forward.
func (p *Pending) Due(ctx context.Context, n int) ([]string, error) {
	members, err := dueScript.Run(ctx, p.rdb, []string{p.key}, n).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("list pending outboxes: %w", err)
	}
	return members, nil
}

// Done removes member's mark after its outbox was forwarded, unless it was
// marked again meanwhile.
func (p *Pending) Done(ctx context.Context, member string) error {
	if err := doneScript.Run(ctx, p.rdb, []string{p.key}, member).Err(); err != nil {
		return fmt.Errorf("unmark %s: %w", member, err)
	}
	return nil
}

// Len counts the marks, due or not.
func (p *Pending) Len(ctx context.Context) (int64, error) {
	return p.rdb.ZCard(ctx, p.key).Result()
}
