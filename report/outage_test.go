package report

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestLeaseLeftOverByAnOutageIsReleasedWhenRedisIsBack has a sender lose
// Redis in the middle of an outbox: it cannot release the outbox's lease
// or reschedule the outbox. Once Redis is back the write reaches GitHub at
// once, not when the lease runs out (leaseTTL; on this clock, never).
func TestLeaseLeftOverByAnOutageIsReleasedWhenRedisIsBack(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	e := newEnv(t, rdb)
	r := e.reporter(Options{Senders: 1, TalkSenders: 1})
	must(t, r.CheckRun(t.Context(), e.repo, "job-1", CheckRun{Name: "railyard/build", HeadSHA: e.sha, Status: "queued"}))

	// What a sender that was draining the outbox leaves when Redis goes.
	k, held, err := r.claim(t.Context(), status)
	if err != nil || held == nil {
		t.Fatalf("claim = %v, %v; want the outbox", held, err)
	}
	must(t, held.Renew(t.Context())) // hidden for leaseTTL, as while sending
	m.Close()
	r.release(t.Context(), k, held)
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if held, err := rdb.Exists(t.Context(), k.lease).Result(); err != nil || held != 1 {
		t.Fatalf("the lease is not left over after the failed release (%d, %v)", held, err)
	}

	run(t, r)
	await(t, "the check run on GitHub", func() bool { return len(e.fake.CheckRuns()) == 1 })
	awaitEmpty(t, r)
}

// TestOutboxTriesAgainWithinAMinuteOfALongOutage has GitHub answer 502
// to every attempt of an outbox, the clock a minute on after each: the
// outbox is tried again each time, its backoff capped at a minute, and
// its write goes once GitHub answers.
func TestOutboxTriesAgainWithinAMinuteOfALongOutage(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{Senders: 1, TalkSenders: 1})
		restore := e.gh.FailAll(http.StatusBadGateway)
		must(t, r.CheckRun(t.Context(), e.repo, "job-1", CheckRun{Name: "railyard/build", HeadSHA: e.sha, Status: "queued"}))
		run(t, r)
		// Doubling from 1 s, the 8th wait would be 128 s uncapped.
		for i := range 10 {
			// Any request: the installation's token is refused too.
			n := len(e.gh.Requests())
			await(t, fmt.Sprintf("attempt %d and its backoff", i+1), func() bool {
				// Once the sender let go of the outbox, it is rescheduled.
				leased := e.rdb.Exists(t.Context(), keysFor(e.repo, status).lease).Val() > 0
				return len(e.gh.Requests()) > n && !leased && e.readyAt(t, r, status).After(e.clock.Now())
			})
			if wait := e.readyAt(t, r, status).Sub(e.clock.Now()); wait > time.Minute {
				t.Fatalf("after attempt %d the outbox waits %v, want at most a minute", i+1, wait)
			}
			e.clock.Advance(time.Minute)
		}
		restore()
		e.clock.Advance(time.Minute)
		await(t, "the check run on GitHub", func() bool { return len(e.fake.CheckRuns()) == 1 })
	})
}
