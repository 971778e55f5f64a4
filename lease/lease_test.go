package lease

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/internal/proxytest"
)

// quick keeps leases short so that expiry is awaited in milliseconds.
var quick = Options{TTL: 400 * time.Millisecond, Renew: 20 * time.Millisecond, Grace: 100 * time.Millisecond, Margin: 50 * time.Millisecond}

// backend is a Redis to test on and a way to make a key expire now.
type backend struct {
	name   string
	rdb    redis.UniversalClient
	expire func(key string)
}

// backends is miniredis always, and real Redis when RAILYARD_TEST_REDIS_URL
// is set.
func backends(t *testing.T) []backend {
	m := miniredis.RunT(t)
	mr := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { mr.Close() })
	bs := []backend{{"miniredis", mr, func(key string) { m.Del(key) }}}
	url := os.Getenv("RAILYARD_TEST_REDIS_URL")
	if url == "" {
		t.Log("RAILYARD_TEST_REDIS_URL not set: testing on miniredis only")
		return bs
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rr := redis.NewClient(opts)
	t.Cleanup(func() { rr.Close() })
	return append(bs, backend{"redis", rr, func(key string) { rr.Del(context.Background(), key) }})
}

// testKey is a key no other test run uses, removed with its counter after.
func testKey(t *testing.T, rdb redis.UniversalClient) string {
	key := "test:{lease}:" + t.Name() + ":" + rand.Text()
	t.Cleanup(func() { rdb.Del(context.Background(), key, key+":fence") })
	return key
}

func TestOptionsCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"the engine's defaults", Options{TTL: 30 * time.Second, Renew: 500 * time.Millisecond, Grace: 10 * time.Second, Margin: 2 * time.Second}, true},
		{"TTL just covers the sum", Options{TTL: 13 * time.Second, Renew: time.Second, Grace: 10 * time.Second, Margin: 2 * time.Second}, false},
		{"grace longer than TTL", Options{TTL: 5 * time.Second, Renew: time.Second, Grace: 10 * time.Second}, false},
		{"renewal slower than TTL", Options{TTL: 5 * time.Second, Renew: 6 * time.Second}, false},
		{"no TTL", Options{Renew: time.Second}, false},
		{"no renewal", Options{TTL: time.Second}, false},
		{"negative grace", Options{TTL: time.Second, Renew: 100 * time.Millisecond, Grace: -time.Second}, false},
		{"no grace or margin", Options{TTL: time.Second, Renew: 100 * time.Millisecond}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.o.Check(); (err == nil) != c.ok {
				t.Errorf("Check() = %v, want ok %v", err, c.ok)
			}
		})
	}
}

func TestTakeRenewRelease(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			key := testKey(t, b.rdb)
			a, err := Take(ctx, b.rdb, key, quick)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Take(ctx, b.rdb, key, quick); !errors.Is(err, ErrHeld) {
				t.Fatalf("second Take = %v, want ErrHeld", err)
			}
			if err := a.Renew(ctx); err != nil {
				t.Fatalf("Renew by the holder = %v", err)
			}
			if ttl := b.rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > quick.TTL {
				t.Errorf("TTL after renewal %v, want (0, %v]", ttl, quick.TTL)
			}
			if err := a.Release(ctx); err != nil {
				t.Fatal(err)
			}
			c, err := Take(ctx, b.rdb, key, quick)
			if err != nil {
				t.Fatalf("Take after Release = %v", err)
			}
			if c.Token <= a.Token {
				t.Errorf("the next holder's token %d is not above %d", c.Token, a.Token)
			}
		})
	}
}

// TestLostLeaseIsFenced lets a lease expire and another holder take it:
// the first holder can neither renew nor free it, and its writes are
// refused while the new holder's commit.
func TestLostLeaseIsFenced(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			key := testKey(t, b.rdb)
			state := key + ":state"
			t.Cleanup(func() { b.rdb.Del(context.Background(), state) })
			old, err := Take(ctx, b.rdb, key, quick)
			if err != nil {
				t.Fatal(err)
			}
			if err := fencedSet(ctx, b.rdb, old, state, "old"); err != nil {
				t.Fatalf("the holder's write = %v", err)
			}
			b.expire(key)
			cur, err := Take(ctx, b.rdb, key, quick)
			if err != nil {
				t.Fatal(err)
			}
			if cur.Token <= old.Token {
				t.Errorf("the new holder's token %d is not above %d", cur.Token, old.Token)
			}
			if err := old.Renew(ctx); !errors.Is(err, ErrLost) {
				t.Errorf("Renew by the old holder = %v, want ErrLost", err)
			}
			if err := old.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if err := fencedSet(ctx, b.rdb, old, state, "late"); !errors.Is(err, ErrLost) {
				t.Errorf("the old holder's late write = %v, want ErrLost", err)
			}
			if err := fencedSet(ctx, b.rdb, cur, state, "new"); err != nil {
				t.Errorf("the new holder's write = %v", err)
			}
			if v := b.rdb.Get(ctx, state).Val(); v != "new" {
				t.Errorf("state %q, want the new holder's", v)
			}
			if err := cur.Check(ctx, b.rdb); err != nil {
				t.Errorf("the old holder's Release freed the new holder's lease: %v", err)
			}
		})
	}
}

// fencedSet writes key=value in a transaction that holds only with l.
func fencedSet(ctx context.Context, rdb redis.UniversalClient, l *Lease, key, value string) error {
	return rdb.Watch(ctx, func(tx *redis.Tx) error {
		if err := l.Check(ctx, tx); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, value, 0)
			return nil
		})
		return err
	}, l.Fence())
}

// kept takes a lease on a fresh key and keeps it.
func kept(t *testing.T, b backend) (key string, l *Lease, held context.Context, stop func()) {
	key = testKey(t, b.rdb)
	l, err := Take(t.Context(), b.rdb, key, quick)
	if err != nil {
		t.Fatal(err)
	}
	held, stop = l.Keep(t.Context())
	return key, l, held, stop
}

// TestKeepStopsWorkWhenTakenOver takes the kept lease away: the holder is
// told at its next renewal.
func TestKeepStopsWorkWhenTakenOver(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			key, _, held, stop := kept(t, b)
			defer stop()
			b.expire(key)
			if _, err := Take(ctx, b.rdb, key, quick); err != nil {
				t.Fatal(err)
			}
			<-held.Done()
			if !errors.Is(context.Cause(held), ErrLost) {
				t.Errorf("cause %v, want ErrLost", context.Cause(held))
			}
		})
	}
}

// TestKeepRenewsWhileWorking keeps a lease for several TTLs: it stays held.
func TestKeepRenewsWhileWorking(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			_, l, held, stop := kept(t, b)
			// Wall time here is the point: renewals must outlast TTLs passing.
			time.Sleep(3 * quick.TTL)
			if held.Err() != nil {
				t.Errorf("lease given up while Redis answered: %v", context.Cause(held))
			}
			if err := l.Check(ctx, b.rdb); err != nil {
				t.Errorf("lease not held after three TTLs of renewals: %v", err)
			}
			stop()
			if !errors.Is(context.Cause(held), context.Canceled) || errors.Is(context.Cause(held), ErrLost) {
				t.Errorf("after stop the cause is %v, want context.Canceled", context.Cause(held))
			}
		})
	}
}

// TestKeepGivesUpBeforeExpiryWhenCutOff cuts the holder off from Redis (a
// proxy that stops forwarding): it gives up while the lease still has
// Grace+Margin to live in Redis, so the work can stop before anyone else
// may take the lease.
func TestKeepGivesUpBeforeExpiryWhenCutOff(t *testing.T) {
	m := miniredis.RunT(t)
	proxy := proxytest.New(t, m.Addr())
	// The store's timeouts: a renewal on the dead connection hangs 2 s.
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	direct := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { direct.Close() })

	l, err := Take(t.Context(), rdb, "test:{lease}:cut", quick)
	if err != nil {
		t.Fatal(err)
	}
	held, stop := l.Keep(t.Context())
	defer stop()
	proxy.Cut()
	<-held.Done()
	if cause := context.Cause(held); !errors.Is(cause, ErrLost) || !strings.Contains(cause.Error(), "not renewed") {
		t.Fatalf("cause %v, want ErrLost for want of renewal", cause)
	}
	// It gave up on its own clock: Redis still holds the lease for it
	// (miniredis's clock stands still), and nobody else can have it yet.
	if err := l.Check(t.Context(), direct); err != nil {
		t.Errorf("the lease was not the holder's when it gave up: %v", err)
	}
}

// TestRenewalDoesNotAbortAFencedWrite renews the lease in the middle of a
// fenced write, as the holder's keep-alive does at any moment: the write
// still commits, where a takeover in the same place would abort it.
func TestRenewalDoesNotAbortAFencedWrite(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			key := testKey(t, b.rdb)
			state := key + ":state"
			t.Cleanup(func() { b.rdb.Del(context.Background(), state) })
			l, err := Take(ctx, b.rdb, key, quick)
			if err != nil {
				t.Fatal(err)
			}
			write := func(between func()) error {
				return b.rdb.Watch(ctx, func(tx *redis.Tx) error {
					if err := l.Check(ctx, tx); err != nil {
						return err
					}
					between()
					_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, state, "written", 0)
						return nil
					})
					return err
				}, l.Fence())
			}
			if err := write(func() { l.Renew(ctx) }); err != nil {
				t.Errorf("a write with a renewal in its midst = %v, want it committed", err)
			}
			err = write(func() {
				b.expire(key)
				if _, err := Take(ctx, b.rdb, key, quick); err != nil {
					t.Fatal(err)
				}
			})
			if !errors.Is(err, redis.TxFailedErr) {
				t.Errorf("a write with a takeover in its midst = %v, want it aborted", err)
			}
		})
	}
}

// TestFenceCounterExpires shows the fencing counter is bounded: it lives
// FenceTTL after the last Take, and a holder after it expired is still
// told apart from the one before.
func TestFenceCounterExpires(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := t.Context()
	first, err := Take(ctx, rdb, "test:{lease}:fence", quick)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := m.TTL(first.Fence()); ttl <= 0 || ttl > FenceTTL {
		t.Fatalf("fencing counter TTL %v, want up to %v", ttl, FenceTTL)
	}
	m.FastForward(FenceTTL + time.Second)
	if m.Exists(first.Fence()) || m.Exists(first.Key()) {
		t.Fatal("fencing counter or lease still there after FenceTTL")
	}
	second, err := Take(ctx, rdb, "test:{lease}:fence", quick)
	if err != nil {
		t.Fatal(err)
	}
	if second.Value() == first.Value() {
		t.Errorf("the holders before and after the counter expired share value %q", first.Value())
	}
	if err := first.Check(ctx, rdb); !errors.Is(err, ErrLost) {
		t.Errorf("the first holder's Check = %v, want ErrLost", err)
	}
}

// renewer is a Renewer whose renewals answer err.
type renewer struct{ err error }

func (r renewer) Renew(context.Context) error { return r.err }

// TestKeepAnyRenewer keeps leases that are not keys (the queue's): a
// renewal that fails is retried until TTL-Grace-Margin after the lease was
// taken, a lost one stops the work at once.
func TestKeepAnyRenewer(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		from := time.Now()
		held, stop := Keep(t.Context(), renewer{errors.New("connection refused")}, quick, from)
		defer stop()
		<-held.Done()
		if cause := context.Cause(held); !errors.Is(cause, ErrLost) || !strings.Contains(cause.Error(), "not renewed") {
			t.Fatalf("cause %v, want ErrLost for want of renewal", cause)
		}
		if gave := time.Since(from); gave < quick.giveUp() {
			t.Errorf("gave up %v after the take, want no sooner than %v", gave, quick.giveUp())
		}
	})
	t.Run("lost", func(t *testing.T) {
		lost := fmt.Errorf("queue: %w", ErrLost)
		held, stop := Keep(t.Context(), renewer{lost}, quick, time.Now())
		defer stop()
		<-held.Done()
		if cause := context.Cause(held); cause != lost {
			t.Errorf("cause %v, want %v", cause, lost)
		}
	})
}
