// Package lease is Railyard's one lease primitive: one holder at a time,
// a renewal loop that gives up before the lease can pass to another, and
// the timing rule that makes giving up in time possible (Options.Check).
//
// Lease is a fenced lease on one Redis key, told apart from every earlier
// and later holder by a token that only grows. The holder renews it while
// it works (Keep), stops its work before the lease can pass to another
// when it cannot renew, and checks it in the same transaction as each
// write it makes (Check, or a script comparing the key with Value), so
// that a holder that lost it changes nothing. The stage lock (package
// engine) and each repository's outbox lease (package report) are Leases.
//
// The queue's job lease is not a key: it is the job's entry on its
// stream's pending list, which Redis already keeps with its owner and idle
// time, and which XAUTOCLAIM hands to another consumer once idle for the
// lease (package queue). A key beside it would be a second record to keep
// in step with the pending entry, and takeover would still need the
// entry. So the queue implements Renewer (an XCLAIM that resets the idle
// time, checked against owner and delivery count in one script) and uses
// Keep: the renewal loop, giving up in time and the timing rule live here
// for all three.
//
// It knows nothing of what is leased; callers build the key (package store).
package lease

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// ErrHeld is what Take returns while another holder has the lease.
var ErrHeld = errors.New("lease held by another")

// ErrLost means the lease is no longer this holder's: it expired, or
// another holder took it.
var ErrLost = errors.New("lease lost")

// Options are a lease's timings.
type Options struct {
	// TTL is how long the lease lives after its last renewal.
	TTL time.Duration
	// Renew is how often the holder renews it.
	Renew time.Duration
	// Grace is how long the holder's work takes to stop once told to
	// (a step's SIGTERM→SIGKILL grace).
	Grace time.Duration
	// Margin is slack for what the other terms do not measure: clocks
	// running at different rates, scheduling, reaping a killed process.
	Margin time.Duration
}

// Check reports whether the timings let a holder that can no longer renew
// stop its work before the lease can pass to another: it gives up
// TTL-Grace-Margin after the last renewal it sent, which must leave room
// for at least one renewal, so TTL must exceed Renew+Grace+Margin.
func (o Options) Check() error {
	if o.TTL <= 0 || o.Renew <= 0 || o.Grace < 0 || o.Margin < 0 {
		return fmt.Errorf("lease timings must be positive: TTL %v, renewal every %v, grace %v, margin %v", o.TTL, o.Renew, o.Grace, o.Margin)
	}
	if o.TTL <= o.Renew+o.Grace+o.Margin {
		return fmt.Errorf("lease TTL %v must exceed renewal interval %v + grace %v + margin %v (%v), "+
			"or a holder cut off from Redis would still be working when its lease passes to another",
			o.TTL, o.Renew, o.Grace, o.Margin, o.Renew+o.Grace+o.Margin)
	}
	return nil
}

// giveUp is how long after the last renewal it sent a holder keeps working.
func (o Options) giveUp() time.Duration { return o.TTL - o.Grace - o.Margin }

// Lease is one holder's hold on a key. Its methods are safe for concurrent
// use.
type Lease struct {
	// Token grows with every Take of the key: a later holder has a larger one.
	Token int64

	rdb   redis.UniversalClient
	key   string
	value string // "<token>:<random>": unique even if the counter was lost with Redis's data
	opts  Options

	mu   sync.Mutex
	sent time.Time // when the last successful renewal (or the take) was sent
}

// FenceTTL is how long a fencing counter outlives the last Take of its
// key. Every holder gives its lease up within a TTL, so once the counter
// expires no holder is left to be told from a later one; a lease's value
// stays unique all the same (see Value). Without it a counter would outlive
// its stage or repository for ever.
const FenceTTL = 30 * 24 * time.Hour

// Take takes the lease on key for opts.TTL, or returns ErrHeld. The fencing
// counter lives beside the key, at key+":fence", for FenceTTL after the
// last Take.
func Take(ctx context.Context, rdb redis.UniversalClient, key string, opts Options) (*Lease, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	sent := time.Now()
	v, err := takeScript.Run(ctx, rdb, []string{key, fenceKey(key)}, opts.TTL.Milliseconds(), rand.Text(), FenceTTL.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		return nil, ErrHeld
	}
	if err != nil {
		return nil, fmt.Errorf("take lease %s: %w", key, err)
	}
	tok, _, _ := strings.Cut(v, ":")
	token, err := strconv.ParseInt(tok, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("take lease %s: bad value %q", key, v)
	}
	return &Lease{Token: token, rdb: rdb, key: key, value: v, opts: opts, sent: sent}, nil
}

// Fence is the key to WATCH in a transaction that calls Check. It is the
// fencing counter, not the lease's own key: renewals change that one every
// few moments and would abort the transaction for nothing, while the
// counter changes only when another holder takes the lease.
func (l *Lease) Fence() string { return fenceKey(l.key) }

func fenceKey(key string) string { return key + ":fence" }

// Key is the lease's key.
func (l *Lease) Key() string { return l.key }

// Value is what the lease's key holds while this holder has it: a Lua
// script writing on the holder's behalf compares GET Key with it, in the
// same script, rather than call Check first.
func (l *Lease) Value() string { return l.value }

// Renew extends the lease by another TTL, or returns ErrLost.
func (l *Lease) Renew(ctx context.Context) error {
	sent := time.Now()
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.value, l.opts.TTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.key, err)
	}
	if n == 0 {
		return ErrLost
	}
	l.mu.Lock()
	l.sent = sent
	l.mu.Unlock()
	return nil
}

// Release frees the lease if it is still this holder's; a lease that
// expired and passed to another is left alone.
func (l *Lease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.value).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}

// Check returns ErrLost unless the lease is this holder's. Call it on the
// transaction of a write, after WATCHing Fence: the write then commits only
// if no other holder took the lease since, and a holder that lost it
// writes nothing.
func (l *Lease) Check(ctx context.Context, tx redis.Cmdable) error {
	v, err := tx.Get(ctx, l.key).Result()
	if errors.Is(err, redis.Nil) {
		return ErrLost
	}
	if err != nil {
		return fmt.Errorf("check lease %s: %w", l.key, err)
	}
	if v != l.value {
		return ErrLost
	}
	return nil
}

// Keep renews the lease every Options.Renew until stop is called or ctx is
// done; see the function Keep.
func (l *Lease) Keep(ctx context.Context) (held context.Context, stop func()) {
	l.mu.Lock()
	sent := l.sent
	l.mu.Unlock()
	return Keep(ctx, l, l.opts, sent)
}

// Renewer is a lease Keep can renew: a Lease, or one kept elsewhere than
// in a key of its own (the queue's pending entries).
type Renewer interface {
	// Renew extends the lease by its TTL. An error wrapping ErrLost says
	// the lease is no longer the holder's; any other error is taken to
	// pass (Redis unreachable), and the renewal is tried again.
	Renew(ctx context.Context) error
}

// Keep renews r every opts.Renew until stop is called or ctx is done; from
// is when the request that took or last renewed the lease was sent. The
// returned context is cancelled with a cause wrapping ErrLost when r
// reports the lease lost, or when no renewal succeeded for
// TTL-Grace-Margin after the last one sent (Redis unreachable): the holder
// must then stop its work, which has Grace to end before the lease can
// pass to another. stop ends the renewals, waits for them, and cancels
// the returned context.
func Keep(ctx context.Context, r Renewer, opts Options, from time.Time) (held context.Context, stop func()) {
	held, cancel := context.WithCancelCause(ctx)
	stopped := make(chan struct{})
	done := make(chan struct{})
	type renewal struct {
		sent time.Time
		err  error
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(opts.Renew)
		defer tick.Stop()
		giveUp := time.NewTimer(time.Until(from.Add(opts.giveUp())))
		defer giveUp.Stop()
		renewed := make(chan renewal, 1)
		renewing := false
		defer func() {
			if renewing {
				<-renewed
			}
		}()
		for {
			select {
			case <-held.Done():
				return
			case <-stopped:
				return
			case <-giveUp.C:
				cancel(fmt.Errorf("%w: not renewed for %v", ErrLost, opts.giveUp()))
				return
			case <-tick.C:
				// A renewal that hangs on a dead connection must not hold
				// up giving up: it runs beside this loop.
				if !renewing {
					renewing = true
					go func() {
						sent := time.Now()
						renewed <- renewal{sent, r.Renew(held)}
					}()
				}
			case got := <-renewed:
				renewing = false
				switch {
				case errors.Is(got.err, ErrLost):
					cancel(got.err)
					return
				case got.err == nil:
					giveUp.Reset(time.Until(got.sent.Add(opts.giveUp())))
				case held.Err() == nil:
					zerolog.Ctx(ctx).Warn().Err(got.err).Msg("Could not renew a lease; trying again.")
				}
			}
		}
	}()
	var once sync.Once
	return held, func() {
		once.Do(func() { close(stopped) })
		<-done
		cancel(context.Canceled)
	}
}

var (
	// takeScript sets KEYS[1] to "<token>:<ARGV[2]>" for ARGV[1] ms unless
	// it exists, the token being the next value of the counter KEYS[2],
	// which then lives ARGV[3] ms.
	takeScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then return false end
local v = redis.call("INCR", KEYS[2]) .. ":" .. ARGV[2]
redis.call("PEXPIRE", KEYS[2], ARGV[3])
redis.call("SET", KEYS[1], v, "PX", ARGV[1])
return v`)
	renewScript   = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)
