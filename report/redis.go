package report

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

const (
	// leaseTTL bounds how long a dead process keeps a repository's outbox;
	// a live one extends it before each request, which has a shorter
	// timeout.
	leaseTTL       = time.Minute
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
)

var (
	// releaseScript deletes the lease only if it is still ours.
	releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`)

	// extendScript renews the lease only if it is still ours.
	extendScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0`)

	// popScript removes n operations of the outbox once GitHub accepted
	// them (or refused them for good, or a later write made them
	// obsolete), provided the lease is still ours and they are the
	// operations we sent: ARGV[8..] pairs the position of each (0-based,
	// increasing) with a prefix of its JSON. Enqueues only append, so
	// positions hold while the lease does. It also records a created
	// object's entry, keeps or forgets a check run's output, and, when
	// ARGV[7] is "1", resets the backoff and the record of an attempt.
	// KEYS: outbox, lease, object, attempts, output, tried, legacy ids.
	// ARGV: token, n, entry ("" records none), entry TTL s, output field,
	// output ("" forgets), reset, then position and prefix of each.
	popScript = redis.NewScript(`
if redis.call("GET", KEYS[2]) ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
local last = tonumber(ARGV[6 + 2 * n])
local items = redis.call("LRANGE", KEYS[1], 0, last)
for i = 1, n do
  local item, p = items[tonumber(ARGV[6 + 2 * i]) + 1], ARGV[7 + 2 * i]
  if item == nil or string.sub(item, 1, #p) ~= p then return 0 end
end
if last == n - 1 then
  redis.call("LTRIM", KEYS[1], n, -1) -- the head: the usual case
else
  -- From the middle: mark, then remove the marks, which all lie within
  -- the first last+1 items, so LREM stops there.
  local mark = "removed:" .. ARGV[1]
  for i = 1, n do redis.call("LSET", KEYS[1], ARGV[6 + 2 * i], mark) end
  redis.call("LREM", KEYS[1], n, mark)
end
if ARGV[3] ~= "" then redis.call("SET", KEYS[3], ARGV[3], "EX", ARGV[4]) end
if ARGV[5] ~= "" then
  if ARGV[6] == "" then
    redis.call("HDEL", KEYS[5], ARGV[5])
  else
    redis.call("HSET", KEYS[5], ARGV[5], ARGV[6])
    redis.call("EXPIRE", KEYS[5], 604800) -- outputs of abandoned check runs go in a week
  end
end
if ARGV[7] == "1" then redis.call("DEL", KEYS[4], KEYS[6]) end
-- The hash earlier versions kept entries in for ever goes once its
-- entries are as old as the newest could be.
if redis.call("TTL", KEYS[7]) == -1 then redis.call("EXPIRE", KEYS[7], ARGV[4]) end
return 1`)
)

// errLeaseLost means another process took over the outbox.
var errLeaseLost = errors.New("outbox lease lost")

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

// claim takes the lease of one due outbox of class c, or returns an empty
// token when there is none.
func (r *Reporter) claim(ctx context.Context, c class) (repoKeys, string, error) {
	defer r.looks.Add(1)
	// Cluster: writes whose committer died before marking them ready (report.go).
	if err := r.sweep(ctx, c); err != nil {
		return repoKeys{}, "", err
	}
	now := r.opts.Now()
	ready := r.keys.readySet(c)
	due, err := r.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: ready, ByScore: true, Start: "-inf", Stop: fmt.Sprint(now.UnixMilli()), Count: claimBatch,
	}).Result()
	if err != nil {
		return repoKeys{}, "", fmt.Errorf("list due outboxes: %w", err)
	}
	// Random order, so that senders do not all queue up on the first one.
	rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	for _, m := range due {
		k := keysOf(m, c)
		token := crand.Text()
		ok, err := r.rdb.SetNX(ctx, k.lease, token, leaseTTL).Result()
		if err != nil {
			return repoKeys{}, "", fmt.Errorf("take outbox lease: %w", err)
		}
		if !ok {
			continue
		}
		// The previous holder may have put the outbox off (rate limit)
		// between our listing and our lease.
		score, err := r.rdb.ZScore(ctx, ready, m).Result()
		if err != nil || score > ms(r.opts.Now()) {
			r.release(ctx, k, token)
			if err != nil && !errors.Is(err, redis.Nil) {
				return repoKeys{}, "", fmt.Errorf("read outbox schedule: %w", err)
			}
			continue
		}
		return k, token, nil
	}
	return repoKeys{}, "", nil
}

// extend renews the lease and keeps the outbox out of other senders' sight
// while we hold it; a dead holder's outbox reappears when both run out.
func (r *Reporter) extend(ctx context.Context, k repoKeys, token string) error {
	ok, err := extendScript.Run(ctx, r.rdb, []string{k.lease}, token, leaseTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("extend outbox lease: %w", err)
	}
	if ok == 0 {
		return errLeaseLost
	}
	if err := r.rdb.ZAddXX(ctx, r.keys.readySet(k.class), redis.Z{Score: ms(r.opts.Now().Add(leaseTTL)), Member: k.member}).Err(); err != nil {
		return fmt.Errorf("hide outbox: %w", err)
	}
	return nil
}

func (r *Reporter) release(ctx context.Context, k repoKeys, token string) {
	// Release even when the sender is being stopped.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := releaseScript.Run(ctx, r.rdb, []string{k.lease}, token).Err(); err != nil {
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
func (r *Reporter) pop(ctx context.Context, k repoKeys, token string, t taken, rec record, reset bool) error {
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
	args := []any{token, len(t.at), value, int64(idTTL.Seconds()), rec.outputField, out, flag}
	for i, at := range t.at {
		args = append(args, at, t.prefixes[i])
	}
	// GitHub has it now: record that even when the sender is being stopped.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	keys := []string{k.outbox, k.lease, k.object(rec.field), k.attempts, k.output, k.tried, k.legacyIDs}
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
	data, err := r.rdb.HGet(ctx, k.output, field).Bytes()
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
