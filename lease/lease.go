// Package lease is a fenced lease on one Redis key: one holder at a time,
// told apart from every earlier and later holder by a token that only
// grows. The holder renews it while it works, stops its work before the
// lease can pass to another when it cannot renew, and checks it in the
// same transaction as each write it makes, so that a holder that lost it
// changes nothing.
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

// Take takes the lease on key for opts.TTL, or returns ErrHeld. The fencing
// counter lives beside the key, at key+":fence", and never expires.
func Take(ctx context.Context, rdb redis.UniversalClient, key string, opts Options) (*Lease, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	sent := time.Now()
	v, err := takeScript.Run(ctx, rdb, []string{key, fenceKey(key)}, opts.TTL.Milliseconds(), rand.Text()).Text()
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
// done. The returned context is cancelled with a cause wrapping ErrLost
// when another holder took the lease, or when no renewal succeeded for
// TTL-Grace-Margin (Redis unreachable): the holder must then stop its work,
// which has Grace to end before the lease can pass to another. stop ends
// the renewals, waits for them, and cancels the returned context.
func (l *Lease) Keep(ctx context.Context) (held context.Context, stop func()) {
	held, cancel := context.WithCancelCause(ctx)
	stopped := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(l.opts.Renew)
		defer tick.Stop()
		giveUp := time.NewTimer(time.Until(l.deadline()))
		defer giveUp.Stop()
		renewed := make(chan error, 1)
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
				cancel(fmt.Errorf("%w: not renewed for %v", ErrLost, l.opts.giveUp()))
				return
			case <-tick.C:
				// A renewal that hangs on a dead connection must not hold
				// up giving up: it runs beside this loop.
				if !renewing {
					renewing = true
					go func() { renewed <- l.Renew(held) }()
				}
			case err := <-renewed:
				renewing = false
				if errors.Is(err, ErrLost) {
					cancel(err)
					return
				}
				if err == nil {
					giveUp.Reset(time.Until(l.deadline()))
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

// deadline is when the holder gives up unless a renewal succeeds first.
func (l *Lease) deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent.Add(l.opts.giveUp())
}

var (
	// takeScript sets KEYS[1] to "<token>:<ARGV[2]>" for ARGV[1] ms unless
	// it exists, the token being the next value of the counter KEYS[2].
	takeScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then return false end
local v = redis.call("INCR", KEYS[2]) .. ":" .. ARGV[2]
redis.call("SET", KEYS[1], v, "PX", ARGV[1])
return v`)
	renewScript   = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)
