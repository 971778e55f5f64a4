package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/lease"
)

const (
	// leaseTTL bounds how long a dead process keeps a repository's outbox;
	// a live one renews it every leaseRenew (see outboxLease).
	leaseTTL       = time.Minute
	leaseRenew     = 10 * time.Second
	requestTimeout = 20 * time.Second
	claimBatch     = 16
	// idTTL is how long what Railyard knows of an object it made on GitHub
	// (its id and page) is kept after the object was last written to or
	// asked about. Updates, deployment statuses, comment links and the
	// status page's link to a stage's current job need it; a job older
	// than that shows no link and takes no update, which a job does not
	// live long enough to need.
	idTTL = 30 * 24 * time.Hour
	// triedTTL bounds the record of an attempt whose outbox was abandoned.
	triedTTL = 7 * 24 * time.Hour
	// outputTTL bounds the output kept of a check run that never completes
	// (its stage's job was abandoned); a completed one's goes at once.
	outputTTL = 7 * 24 * time.Hour
)

// outboxTimings are the outbox lease's: a sender that cannot renew stops
// sending (its request is cancelled) and may still record an answer it
// got, for up to recordTimeout, before its lease can pass to another.
var outboxTimings = lease.Options{TTL: leaseTTL, Renew: leaseRenew, Grace: recordTimeout, Margin: 5 * time.Second}

// recordTimeout bounds writing down an answer GitHub gave, which goes on
// after the sender was told to stop.
const recordTimeout = 5 * time.Second

var (
	// popScript removes n operations of the outbox once GitHub accepted
	// them (or refused them for good, or a later write made them
	// obsolete), provided the lease is still ours and they are the
	// operations we sent: ARGV[9..] pairs the position of each (0-based,
	// increasing) with a prefix of its JSON. Enqueues only append, so
	// positions hold while the lease does. It also records a created
	// object's entry, keeps or forgets a check run's output, and, when
	// ARGV[8] is "1", resets the backoff and the record of an attempt.
	// KEYS: outbox, lease, object, attempts, output, tried, legacy ids,
	// legacy outputs. ARGV: lease value, n, entry ("" records none), entry
	// TTL s, output field, output ("" forgets), output TTL s, reset, then
	// position and prefix of each.
	popScript = redis.NewScript(`
if redis.call("GET", KEYS[2]) ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
local last = tonumber(ARGV[7 + 2 * n])
local items = redis.call("LRANGE", KEYS[1], 0, last)
for i = 1, n do
  local item, p = items[tonumber(ARGV[7 + 2 * i]) + 1], ARGV[8 + 2 * i]
  if item == nil or string.sub(item, 1, #p) ~= p then return 0 end
end
if last == n - 1 then
  redis.call("LTRIM", KEYS[1], n, -1) -- the head: the usual case
else
  -- From the middle: mark, then remove the marks, which all lie within
  -- the first last+1 items, so LREM stops there.
  local mark = "removed:" .. ARGV[1]
  for i = 1, n do redis.call("LSET", KEYS[1], ARGV[7 + 2 * i], mark) end
  redis.call("LREM", KEYS[1], n, mark)
end
if ARGV[3] ~= "" then redis.call("SET", KEYS[3], ARGV[3], "EX", ARGV[4]) end
if ARGV[5] ~= "" then
  redis.call("HDEL", KEYS[8], ARGV[5])
  if ARGV[6] == "" then
    redis.call("DEL", KEYS[5])
  else
    redis.call("SET", KEYS[5], ARGV[6], "EX", ARGV[7])
  end
end
if ARGV[8] == "1" then redis.call("DEL", KEYS[4], KEYS[6]) end
-- The hash earlier versions kept entries in for ever goes once its
-- entries are as old as the newest could be.
if redis.call("TTL", KEYS[7]) == -1 then redis.call("EXPIRE", KEYS[7], ARGV[4]) end
return 1`)
)

// errLeaseLost means another process took over the outbox, or this one
// could not renew its lease in time.
var errLeaseLost = fmt.Errorf("outbox: %w", lease.ErrLost)

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

// outboxLease is a sender's hold on one repository's outbox: a fenced
// lease (package lease) whose renewals also keep the outbox out of other
// senders' sight, so that they do not keep trying to take it. pop checks
// it in the same script as its writes.
type outboxLease struct {
	*lease.Lease
	r     *Reporter
	k     repoKeys
	taken time.Time // when the request that took it was sent
}

// Renew renews the lease and hides the outbox for another leaseTTL; a
// dead holder's outbox reappears when both run out.
func (o *outboxLease) Renew(ctx context.Context) error {
	if err := o.Lease.Renew(ctx); err != nil {
		return err
	}
	return o.hide(ctx)
}

func (o *outboxLease) hide(ctx context.Context) error {
	if err := o.r.rdb.ZAddXX(ctx, o.r.keys.readySet(o.k.class), redis.Z{Score: ms(o.r.opts.Now().Add(leaseTTL)), Member: o.k.member}).Err(); err != nil {
		return fmt.Errorf("hide outbox: %w", err)
	}
	return nil
}

// keep renews the lease while the sender works; the context it returns
// ends, with lease.ErrLost, when the lease is lost or could not be
// renewed in time.
func (o *outboxLease) keep(ctx context.Context) (context.Context, func()) {
	return lease.Keep(ctx, o, outboxTimings, o.taken)
}

// held returns errLeaseLost once keep's context says the lease is lost.
func held(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), lease.ErrLost) {
		return errLeaseLost
	}
	return nil
}

// claim takes the lease of one due outbox of class c, or returns nil when
// there is none.
func (r *Reporter) claim(ctx context.Context, c class) (repoKeys, *outboxLease, error) {
	defer r.looks.Add(1)
	// Cluster: writes whose committer died before marking them ready (report.go).
	if err := r.sweep(ctx, c); err != nil {
		return repoKeys{}, nil, err
	}
	now := r.opts.Now()
	ready := r.keys.readySet(c)
	due, err := r.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: ready, ByScore: true, Start: "-inf", Stop: fmt.Sprint(now.UnixMilli()), Count: claimBatch,
	}).Result()
	if err != nil {
		return repoKeys{}, nil, fmt.Errorf("list due outboxes: %w", err)
	}
	// Random order, so that senders do not all queue up on the first one.
	rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	for _, m := range due {
		k := keysOf(m, c)
		taken := time.Now()
		l, err := lease.Take(ctx, r.rdb, k.lease, outboxTimings)
		if errors.Is(err, lease.ErrHeld) {
			continue
		}
		if err != nil {
			return repoKeys{}, nil, fmt.Errorf("take outbox lease: %w", err)
		}
		o := &outboxLease{Lease: l, r: r, k: k, taken: taken}
		// The previous holder may have put the outbox off (rate limit)
		// between our listing and our lease.
		score, err := r.rdb.ZScore(ctx, ready, m).Result()
		if err == nil && score <= ms(r.opts.Now()) {
			err = o.hide(ctx)
			if err == nil {
				return k, o, nil
			}
		}
		r.release(ctx, k, o)
		if err != nil && !errors.Is(err, redis.Nil) {
			return repoKeys{}, nil, fmt.Errorf("read outbox schedule: %w", err)
		}
	}
	return repoKeys{}, nil, nil
}

func (r *Reporter) release(ctx context.Context, k repoKeys, token *outboxLease) {
	// Release even when the sender is being stopped.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := token.Release(ctx); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not release an outbox lease; it runs out by itself.")
	}
}

// reschedule makes the outbox due at t.
func (r *Reporter) reschedule(ctx context.Context, k repoKeys, t time.Time) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.rdb.ZAdd(ctx, r.keys.readySet(k.class), redis.Z{Score: ms(t), Member: k.member}).Err(); err != nil {
		return fmt.Errorf("reschedule outbox: %w", err)
	}
	return nil
}

// finish unmarks an empty outbox. An enqueue marks its outbox ready only
// after its push committed, so checking the length after unmarking never
// strands an operation.
func (r *Reporter) finish(ctx context.Context, k repoKeys) error {
	if err := r.rdb.ZRem(ctx, r.keys.readySet(k.class), k.member).Err(); err != nil {
		return fmt.Errorf("unmark outbox: %w", err)
	}
	n, err := r.rdb.LLen(ctx, k.outbox).Result()
	if err != nil {
		return fmt.Errorf("count outbox: %w", err)
	}
	if n > 0 {
		return r.reschedule(ctx, k, r.opts.Now())
	}
	return nil
}

// record is what Redis keeps of a request GitHub accepted.
type record struct {
	field       string // ghid field to set to entry
	entry       entry
	outputField string // output field to set to output, or to delete when it is nil
	output      *output
}

// taken names operations of an outbox to remove: their positions
// (increasing) and a prefix of their JSON.
type taken struct {
	at       []int
	prefixes []string
}

// pop removes the operations t names and keeps rec. reset says they were
// sent (or refused for good): the backoff and the record of an attempt
// start anew. Obsolete or unreadable operations dropped unsent leave them.
func (r *Reporter) pop(ctx context.Context, k repoKeys, token *outboxLease, t taken, rec record, reset bool) error {
	var value, out string
	if rec.field != "" {
		data, err := json.Marshal(rec.entry)
		if err != nil {
			return fmt.Errorf("encode id: %w", err)
		}
		value = string(data)
	}
	if rec.output != nil {
		data, err := json.Marshal(rec.output)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		out = string(data)
	}
	flag := "0"
	if reset {
		flag = "1"
	}
	args := []any{token.Value(), len(t.at), value, int64(idTTL.Seconds()), rec.outputField, out, int64(outputTTL.Seconds()), flag}
	for i, at := range t.at {
		args = append(args, at, t.prefixes[i])
	}
	// GitHub has it now: record that even when the sender is being stopped.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	keys := []string{k.outbox, k.lease, k.object(rec.field), k.attempts, k.output(rec.outputField), k.tried, k.legacyIDs, k.legacyOutput}
	ok, err := popScript.Run(ctx, r.rdb, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("remove sent operation: %w", err)
	}
	if ok == 0 {
		return errLeaseLost
	}
	return nil
}

// output returns the output GitHub shows for a check run, as far as known.
func (r *Reporter) output(ctx context.Context, k repoKeys, field string) (output, error) {
	var o output
	var current, legacy *redis.StringCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		current = p.Get(ctx, k.output(field))
		legacy = p.HGet(ctx, k.legacyOutput, field)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return o, fmt.Errorf("read check run output: %w", err)
	}
	data, err := current.Bytes()
	if errors.Is(err, redis.Nil) {
		data, err = legacy.Bytes()
	}
	if errors.Is(err, redis.Nil) {
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("read check run output: %w", err)
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return o, fmt.Errorf("decode check run output: %w", err)
	}
	return o, nil
}

// backoff counts a failed attempt and returns how many there were and
// how long to wait: 1s, 2s, 4s … at most 5m.
func (r *Reporter) backoff(ctx context.Context, k repoKeys) (int64, time.Duration, error) {
	n, err := r.rdb.Incr(ctx, k.attempts).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("count attempt: %w", err)
	}
	r.rdb.Expire(ctx, k.attempts, time.Hour)
	return n, min(time.Second<<min(n-1, 20), 5*time.Minute), nil
}

// markTried records that a request for operation id is about to be made.
// If one was made before, whose answer never came back, it reports so and
// when that first request was made instead.
func (r *Reporter) markTried(ctx context.Context, k repoKeys, id string) (before bool, at time.Time, err error) {
	v, err := r.rdb.Get(ctx, k.tried).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, time.Time{}, fmt.Errorf("read attempt: %w", err)
	}
	if rest, ok := strings.CutPrefix(v, id+" "); ok {
		if ms, err := strconv.ParseInt(rest, 10, 64); err == nil {
			return true, time.UnixMilli(ms), nil
		}
	}
	now := r.opts.Now()
	if err := r.rdb.Set(ctx, k.tried, id+" "+strconv.FormatInt(now.UnixMilli(), 10), triedTTL).Err(); err != nil {
		return false, time.Time{}, fmt.Errorf("record attempt: %w", err)
	}
	return false, now, nil
}

// entries reads what is known of objects in a repository; unknown ones
// are zero.
func (r *Reporter) entries(ctx context.Context, k repoKeys, fields ...string) ([]entry, error) {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = k.object(f)
	}
	var current *redis.SliceCmd
	var legacy *redis.SliceCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		current = p.MGet(ctx, keys...)
		legacy = p.HMGet(ctx, k.legacyIDs, fields...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read GitHub ids: %w", err)
	}
	es := make([]entry, len(fields))
	for i := range fields {
		// An object an earlier version created is known by its id there,
		// even after an update queued since made a new entry naming it.
		for _, v := range []any{legacy.Val()[i], current.Val()[i]} {
			s, ok := v.(string)
			if !ok || es[i].ID != 0 {
				continue
			}
			if err := json.Unmarshal([]byte(s), &es[i]); err != nil {
				return nil, fmt.Errorf("decode GitHub id of %s: %w", fields[i], err)
			}
		}
	}
	return es, nil
}
