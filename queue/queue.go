package queue

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/store"
)

// Job is one unit of work.
type Job struct {
	ID         string // assigned by the queue (stream entry id); ignored on enqueue
	Kind       string // e.g. "push", "stage", "comment"
	Repo       string // "owner/name", for logs and routing
	Data       []byte // opaque payload (JSON from the caller)
	Deliveries int    // how many times this job has been handed out (1 on first claim)
	Retries    int    // how many of those deliveries ended in Lease.Retry
	// FailingSince is when the job's processor first asked for a retry
	// (zero while it never has). Options.RetryFor runs from then.
	FailingSince time.Time
	// First is the id of the job's first stream entry; a retried job keeps
	// it. Ids grow with time, so First orders jobs by when they were queued.
	First string

	// once is the dedupe key EnqueueOnce added the job under. Burying the
	// job frees it, so that the same work sent again is not refused as seen.
	once string
}

// Options tune a Queue; zero values take the defaults.
type Options struct {
	Prefix string        // key prefix; default "railyard:{railyard}:" (the hash tag keeps all keys on one slot)
	Group  string        // consumer group; default "workers"
	Lease  time.Duration // a claimed job not extended for this long may be taken over; default 30s
	// MaxDeliveries bounds deliveries that ended without an answer (the
	// holder died, hung or handed the job back): past it the job is
	// dead-lettered, so a job that crashes every process cannot loop
	// forever. Deliveries that ended in Retry do not count. Default 10.
	MaxDeliveries int
	// RetryFor is how long a job that keeps failing (Lease.Retry) is
	// retried, counted from its first failure, before it is
	// dead-lettered: long enough for GitHub or the network to come back.
	// Default one hour.
	RetryFor time.Duration
	// DeadKept is how many dead-lettered jobs are kept, newest first:
	// enough to inspect and replay an outage's worth, without a stream that
	// grows forever. Default 10,000.
	DeadKept int
	// SingleProcess says the store serves this process alone and loses
	// everything when it stops: the embedded store. EnqueueOnce then needs
	// no Lua script, which the embedded store runs slowly (BENCHMARKS.md).
	SingleProcess bool
	// OutboxGrace bounds how long a caller's transaction may take from
	// AddTx to EXEC; a job a crashed process left in a repository's outbox
	// is forwarded by a sweep after it. Default store.DefaultGrace.
	OutboxGrace time.Duration
}

// Depth counts jobs by where they are.
type Depth struct {
	Ready   int64 // waiting to be claimed
	Leased  int64 // claimed and not yet acked (including expired leases not yet taken over)
	Delayed int64 // waiting for their time
	Dead    int64 // in the dead-letter stream
}

// ErrLeaseLost means the job is no longer this lease's: another consumer
// took it over, or it was already acked. It wraps lease.ErrLost.
var ErrLeaseLost = fmt.Errorf("queue: %w", lease.ErrLost)

// lease is the timing of a job's lease. A worker cut off from Redis has no
// step of its own to stop (the stage lock stops those), so no grace; it
// renews three times a lease and gives up a sixth of a lease before
// another consumer may take the job over.
func (o Options) lease() lease.Options {
	return lease.Options{TTL: o.Lease, Renew: o.Lease / 3, Margin: o.Lease / 6}
}

// Queue is a durable job queue on a Redis stream. It is safe for concurrent use.
type Queue struct {
	rdb     redis.UniversalClient
	opts    Options
	leaseMs int64
	stream  string // jobs ready or leased
	delayed string // sorted set of jobs by due time (server ms)
	dead    string // stream of dead-lettered jobs
	group   *groupCommit
	// viaOutbox: on Redis Cluster, AddTx leaves jobs in the repository's
	// outbox for Forward (outbox.go); on one Redis it adds them to the
	// stream in the caller's transaction.
	viaOutbox bool
	// pending indexes repositories whose outbox AddTx wrote to.
	pending   *store.Pending
	nextSweep atomic.Int64 // unix ns before which Claim does not sweep
}

// New returns a queue on rdb. Call Init once before claiming.
func New(rdb redis.UniversalClient, opts Options) *Queue {
	if opts.Prefix == "" {
		opts.Prefix = "railyard:{railyard}:"
	}
	if opts.Group == "" {
		opts.Group = "workers"
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	// Redis counts idle time in ms, and a lease of 0 ms would hand out every leased job.
	opts.Lease = max(opts.Lease, time.Millisecond)
	if opts.MaxDeliveries <= 0 {
		opts.MaxDeliveries = 10
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = time.Hour
	}
	if opts.DeadKept <= 0 {
		opts.DeadKept = 10000
	}
	return &Queue{
		rdb:       rdb,
		opts:      opts,
		leaseMs:   opts.Lease.Milliseconds(),
		stream:    opts.Prefix + "jobs",
		delayed:   opts.Prefix + "delayed",
		dead:      opts.Prefix + "dead",
		group:     &groupCommit{},
		pending:   store.NewPending(rdb, opts.Prefix+"outboxes", opts.OutboxGrace),
		viaOutbox: store.IsCluster(rdb),
	}
}

// Init creates the stream and the consumer group if they do not exist yet.
func (q *Queue) Init(ctx context.Context) error {
	if err := q.opts.lease().Check(); err != nil {
		return fmt.Errorf("queue lease: %w", err)
	}
	// Start at 0, so jobs added before the group existed are handed out too.
	err := q.rdb.XGroupCreateMkStream(ctx, q.stream, q.opts.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group: %w", err)
	}
	return nil
}

// ErrNotReady means the queue's stream or consumer group is missing: the
// store lost its data (a restart without persistence, a failover to an
// empty replica, FLUSHALL). The next Claim recreates them.
var ErrNotReady = errors.New("queue: stream or consumer group missing")

// Check reports whether the queue's stream and consumer group exist, so
// that readiness means jobs can be claimed, not only that the store answers.
func (q *Queue) Check(ctx context.Context) error {
	groups, err := q.rdb.XInfoGroups(ctx, q.stream).Result()
	if err != nil {
		if isMissing(err) {
			return fmt.Errorf("%w: %s", ErrNotReady, q.stream)
		}
		return fmt.Errorf("check queue %s: %w", q.stream, err)
	}
	for _, g := range groups {
		if g.Name == q.opts.Group {
			return nil
		}
	}
	return fmt.Errorf("%w: group %s of %s", ErrNotReady, q.opts.Group, q.stream)
}

// isMissing tells the store's answers for a stream or group that does not
// exist: NOGROUP from the stream commands, "no such key" from XINFO.
func isMissing(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "NOGROUP") || strings.Contains(msg, "no such key")
}

// heal recreates the stream and group after the store lost them, so that
// workers go on instead of failing every claim until a restart.
func (q *Queue) heal(ctx context.Context, cause error) error {
	zerolog.Ctx(ctx).Warn().Err(cause).Str("railyard_stream", q.stream).
		Msg("Queue stream or consumer group missing; the store lost its data. Recreating them.")
	return q.Init(ctx)
}

// Enqueue adds j and returns its id.
func (q *Queue) Enqueue(ctx context.Context, j Job) (string, error) {
	id, err := q.rdb.XAdd(ctx, q.xadd(encode(j, 0, false))).Result()
	if err != nil {
		return "", fmt.Errorf("enqueue %s job: %w", j.Kind, err)
	}
	return id, nil
}

// EnqueueOnce enqueues j unless dedupeKey was seen within ttl. A repeat
// returns the first job's id, duplicate=true and no error. The check and the
// add are one Lua script, so a crash can neither lose nor double the job.
// Concurrent calls share round trips to Redis (groupCommit).
func (q *Queue) EnqueueOnce(ctx context.Context, dedupeKey string, ttl time.Duration, j Job) (id string, duplicate bool, err error) {
	if ttl < time.Millisecond {
		return "", false, fmt.Errorf("enqueue %s job once: ttl %v is below 1ms", j.Kind, ttl)
	}
	if q.opts.SingleProcess {
		j.once = q.opts.Prefix + "once:" + dedupeKey
		return q.enqueueOnceLocal(ctx, j.once, ttl, j)
	}
	j.once = q.opts.Prefix + "once:" + dedupeKey
	c := &onceCall{
		keys: []string{j.once, q.stream},
		args: []any{ttl.Milliseconds(), encode(j, 0, false)},
	}
	q.group.do(ctx, q.rdb, c)
	res, err := c.res, c.err
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return "", false, fmt.Errorf("enqueue %s job once: %w", j.Kind, err)
	}
	dup, _ := res[0].(int64)
	id, _ = res[1].(string)
	return id, dup == 1, nil
}

// Order is a number that orders stream entry ids ("ms-seq") as Redis
// does, for comparing jobs by Job.First; 0 for an id that is not one.
func Order(id string) int64 {
	ms, seq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseInt(ms, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || n >= 1_000_000 {
		return 0
	}
	return m*1_000_000 + n
}

// EnqueueIn adds j so that it can be claimed after delay, by the server's clock.
func (q *Queue) EnqueueIn(ctx context.Context, j Job, delay time.Duration) error {
	err := delayScript.Run(ctx, q.rdb, []string{q.delayed}, delay.Milliseconds(), encode(j, 0, true)).Err()
	if err != nil {
		return fmt.Errorf("enqueue %s job in %v: %w", j.Kind, delay, err)
	}
	return nil
}

func (q *Queue) xadd(job string) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: q.stream, Values: []any{"job", job}}
}

// Claim hands out one job to consumer, which must be unique among live
// workers: first a job whose lease expired, then due delayed jobs (moved to
// the stream's tail), then new ones, blocking up to wait. It returns
// (nil, nil) when nothing came within wait. Keep wait short (seconds): a
// blocked read does not end early when ctx is cancelled.
func (q *Queue) Claim(ctx context.Context, consumer string, wait time.Duration) (*Lease, error) {
	if consumer == "" {
		return nil, errors.New("claim: empty consumer name")
	}
	deadline := time.Now().Add(wait)
	l, err := q.claim(ctx, consumer, deadline)
	if err != nil && isMissing(err) {
		if herr := q.heal(ctx, err); herr != nil {
			return nil, herr
		}
		return q.claim(ctx, consumer, deadline)
	}
	return l, err
}

func (q *Queue) claim(ctx context.Context, consumer string, deadline time.Time) (*Lease, error) {
	for {
		l, err := q.reclaim(ctx, consumer)
		if err != nil {
			return nil, err
		}
		if l == nil {
			if err := q.sweep(ctx); err != nil {
				return nil, err
			}
			next, err := q.promote(ctx)
			if err != nil {
				return nil, err
			}
			block := time.Until(deadline)
			if next >= 0 {
				// Wake up when the next delayed job is due rather than sleep past it.
				block = min(block, next)
			}
			if l, err = q.readNew(ctx, consumer, block); err != nil {
				return nil, err
			}
		}
		if l != nil {
			if l.Job.Deliveries-l.Job.Retries <= q.opts.MaxDeliveries {
				return l, nil
			}
			// Handed out too often: the previous holders all died or hung.
			if err := l.bury(ctx, l.Job.Deliveries-1); err != nil && !errors.Is(err, ErrLeaseLost) {
				return nil, err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !time.Now().Before(deadline) {
			return nil, nil
		}
	}
}

// reclaim takes over a job whose lease expired.
func (q *Queue) reclaim(ctx context.Context, consumer string) (*Lease, error) {
	take := q.takeOver
	if q.opts.SingleProcess {
		take = q.takeOverLocal
	}
	sent := time.Now()
	id, job, count, err := take(ctx, consumer)
	if err != nil {
		return nil, fmt.Errorf("take over expired leases: %w", err)
	}
	if id == "" {
		return nil, nil
	}
	l := q.lease(ctx, consumer, id, int(count), job, sent)
	l.log(zerolog.Ctx(ctx).Info()).Int("railyard_job_deliveries", l.Job.Deliveries).
		Msg("Took over a job whose lease expired or was released.")
	return l, nil
}

// takeOver gives consumer the oldest entry whose lease expired: its id
// ("" for none), its job and its delivery count.
func (q *Queue) takeOver(ctx context.Context, consumer string) (id, job string, count int64, err error) {
	res, err := reclaimScript.Run(ctx, q.rdb, []string{q.stream}, q.opts.Group, consumer, q.leaseMs).Slice()
	if errors.Is(err, redis.Nil) {
		return "", "", 0, nil
	}
	if err != nil {
		return "", "", 0, err
	}
	if len(res) != 3 {
		return "", "", 0, fmt.Errorf("unexpected reply %v", res)
	}
	id, _ = res[0].(string)
	fields, _ := res[1].([]any)
	count, _ = res[2].(int64)
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "job" {
			job, _ = fields[i+1].(string)
		}
	}
	return id, job, count, nil
}

// promoteBatch is how many due jobs one promote moves at most.
const promoteBatch = 100

// promote moves due delayed jobs into the stream and tells how long until
// the next one is due (negative: none left).
func (q *Queue) promote(ctx context.Context) (time.Duration, error) {
	if q.opts.SingleProcess {
		return q.promoteLocal(ctx)
	}
	ms, err := promoteScript.Run(ctx, q.rdb, []string{q.delayed, q.stream}, promoteBatch).Int64()
	if err != nil {
		return 0, fmt.Errorf("move due delayed jobs: %w", err)
	}
	if ms < 0 {
		return -1, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// readNew reads one job never handed out before, blocking up to block.
func (q *Queue) readNew(ctx context.Context, consumer string, block time.Duration) (*Lease, error) {
	args := &redis.XReadGroupArgs{
		Group:    q.opts.Group,
		Consumer: consumer,
		Streams:  []string{q.stream, ">"},
		Count:    1,
		Block:    -1, // do not block: BLOCK 0 would wait forever
	}
	if block > 0 {
		args.Block = max(block, time.Millisecond)
	}
	sent := time.Now()
	streams, err := q.rdb.XReadGroup(ctx, args).Result()
	if args.Block > 0 {
		// A job that arrived while the read blocked was handed out then,
		// not when the read was sent: up to a reply's latency before now,
		// which the lease's margin covers.
		sent = time.Now()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read new jobs: %w", err)
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			job, _ := m.Values["job"].(string)
			return q.lease(ctx, consumer, m.ID, 1, job, sent), nil
		}
	}
	return nil, nil
}

// lease builds the lease for a stream entry just handed to consumer.
func (q *Queue) lease(ctx context.Context, consumer, id string, count int, job string, sent time.Time) *Lease {
	l := &Lease{q: q, consumer: consumer, count: count, raw: job, sent: sent}
	e, err := decode(job)
	if err != nil {
		// Nobody can run it: make Claim dead-letter it at once.
		zerolog.Ctx(ctx).Error().Err(err).Str("railyard_job", id).Msg("Job entry is unreadable.")
		e.Prior = q.opts.MaxDeliveries
	}
	l.prior = e.Prior
	l.Job = e.job(id)
	l.Job.Deliveries += count
	return l
}

// Depth counts the queue's jobs in one consistent snapshot.
func (q *Queue) Depth(ctx context.Context) (Depth, error) {
	var xlen, delayed, dead *redis.IntCmd
	var pending *redis.XPendingCmd
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		xlen = p.XLen(ctx, q.stream)
		pending = p.XPending(ctx, q.stream, q.opts.Group)
		delayed = p.ZCard(ctx, q.delayed)
		dead = p.XLen(ctx, q.dead)
		return nil
	})
	if err != nil {
		return Depth{}, fmt.Errorf("queue depth: %w", err)
	}
	// Acked jobs are deleted, so the stream holds only ready and leased ones.
	leased := pending.Val().Count
	return Depth{Ready: xlen.Val() - leased, Leased: leased, Delayed: delayed.Val(), Dead: dead.Val()}, nil
}

// Dead returns up to count dead-lettered jobs, newest first, with the ids
// they had in the queue and how often they were handed out.
func (q *Queue) Dead(ctx context.Context, count int64) ([]Job, error) {
	msgs, err := q.rdb.XRevRangeN(ctx, q.dead, "+", "-", count).Result()
	if err != nil {
		return nil, fmt.Errorf("read dead jobs: %w", err)
	}
	jobs := make([]Job, 0, len(msgs))
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		raw, _ := m.Values["job"].(string)
		e, _ := decode(raw) // an unreadable job is still listed, by its id
		j := e.job(id)
		j.once = "" // freed when it was buried
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// ErrNoSuchJob means Replay found no dead-lettered job with that id.
var ErrNoSuchJob = errors.New("queue: no dead-lettered job with that id")

// Replay queues the dead-lettered job that had id in the queue again, as new:
// its delivery and retry counts start over. It returns the job as queued.
func (q *Queue) Replay(ctx context.Context, id string) (Job, error) {
	start := "+"
	for {
		msgs, err := q.rdb.XRevRangeN(ctx, q.dead, start, "-", 100).Result()
		if err != nil {
			return Job{}, fmt.Errorf("read dead jobs: %w", err)
		}
		for _, m := range msgs {
			if m.Values["id"] != id {
				continue
			}
			raw, _ := m.Values["job"].(string)
			e, err := decode(raw)
			if err != nil {
				return Job{}, fmt.Errorf("replay job %s: %w", id, err)
			}
			j := e.job(id)
			j.Deliveries, j.Retries, j.FailingSince, j.once = 0, 0, time.Time{}, ""
			newID, err := replayScript.Run(ctx, q.rdb, []string{q.dead, q.stream}, m.ID, encode(j, 0, false)).Text()
			if errors.Is(err, redis.Nil) {
				return Job{}, ErrNoSuchJob // replayed by someone else meanwhile
			}
			if err != nil {
				return Job{}, fmt.Errorf("replay job %s: %w", id, err)
			}
			j.ID = newID
			return j, nil
		}
		if len(msgs) < 100 {
			return Job{}, ErrNoSuchJob
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// envelope is a job as stored: one JSON field of a stream entry, or one
// member of the delayed set.
type envelope struct {
	Kind  string `json:"kind"`
	Repo  string `json:"repo,omitempty"`
	Data  []byte `json:"data,omitempty"`
	Prior int    `json:"prior,omitempty"` // deliveries before this entry (Retry keeps the count)
	First string `json:"first,omitempty"` // the job's first entry id, when this one is a retry
	Once  string `json:"once,omitempty"`  // Job.once
	// Retries and Failing (unix ms) are Job.Retries and Job.FailingSince.
	Retries int    `json:"retries,omitempty"`
	Failing int64  `json:"failing,omitempty"`
	Nonce   string `json:"nonce,omitempty"` // keeps equal delayed jobs apart in the sorted set
}

func encode(j Job, prior int, unique bool) string {
	e := envelope{Kind: j.Kind, Repo: j.Repo, Data: j.Data, Prior: prior, First: j.First, Once: j.once, Retries: j.Retries}
	if !j.FailingSince.IsZero() {
		e.Failing = j.FailingSince.UnixMilli()
	}
	if unique {
		e.Nonce = rand.Text()
	}
	b, _ := json.Marshal(e) // cannot fail: strings, bytes and ints only
	return string(b)
}

// job is the envelope as the Job of stream entry id, with the deliveries
// before this entry.
func (e envelope) job(id string) Job {
	j := Job{ID: id, Kind: e.Kind, Repo: e.Repo, Data: e.Data, Deliveries: e.Prior, First: cmp.Or(e.First, id),
		Retries: e.Retries, once: e.Once}
	if e.Failing != 0 {
		j.FailingSince = time.UnixMilli(e.Failing)
	}
	return j
}

func decode(s string) (envelope, error) {
	var e envelope
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return envelope{}, fmt.Errorf("decode job: %w", err)
	}
	return e, nil
}
