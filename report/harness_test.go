package report

import (
	"cmp"
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// backends is miniredis always, plus real Redis when RAILYARD_TEST_REDIS_URL
// is set.
func backends(t *testing.T) map[string]func(t *testing.T) redis.UniversalClient {
	bs := map[string]func(t *testing.T) redis.UniversalClient{"miniredis": func(t *testing.T) redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}}
	if url := os.Getenv("RAILYARD_TEST_REDIS_URL"); url != "" {
		bs["redis"] = func(t *testing.T) redis.UniversalClient {
			opts, err := redis.ParseURL(url)
			if err != nil {
				t.Fatalf("RAILYARD_TEST_REDIS_URL: %v", err)
			}
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { rdb.Close() })
			if err := rdb.Ping(t.Context()).Err(); err != nil {
				t.Fatalf("real Redis: %v", err)
			}
			return rdb
		}
	}
	bs["cluster"] = func(t *testing.T) redis.UniversalClient { return redistest.Cluster(t).Client(t) }
	return bs
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// env is one test's world: a fake GitHub with one repository, a Redis, a
// clock that moves only when told, and key names no other test uses.
type env struct {
	gh    *githubtest.Server
	fake  *githubtest.Repo
	repo  Repo
	rdb   redis.UniversalClient
	clock *clock
	ns    string
	sha   string // a commit of the repository
}

// eachBackend runs fn as a parallel subtest per Redis backend.
func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, open(t)))
		})
	}
}

func newEnv(t *testing.T, rdb redis.UniversalClient) *env {
	id := strings.ToLower(rand.Text()[:10])
	gh := githubtest.New(t)
	e := &env{
		gh:   gh,
		fake: gh.AddRepo("octo/app-"+id, "main"),
		repo: Repo{InstallationID: githubtest.DefaultInstallationID, Owner: "octo", Name: "app-" + id},
		rdb:  rdb,
		// A minute boundary plus a little, so pacing windows are predictable.
		clock: &clock{now: time.Now().Truncate(time.Minute).Add(10 * time.Second)},
		ns:    "outbox-test-" + id,
	}
	e.sha = e.fake.Commit("main", map[string]githubtest.File{"README.md": {Content: "hello"}})
	t.Cleanup(func() {
		ctx := context.Background() // the test's context is gone by now
		for _, pattern := range []string{"railyard:{" + strings.ToLower(e.repo.FullName()) + "}:*", "railyard:{railyard}:" + e.ns + ":*"} {
			keys, err := rdb.Keys(ctx, pattern).Result()
			if err == nil && len(keys) > 0 {
				err = rdb.Del(ctx, keys...).Err()
			}
			if err != nil {
				t.Logf("clean up %s: %v", pattern, err)
			}
		}
	})
	return e
}

// reporter returns a Reporter on the test's keys and clock, polling fast.
func (e *env) reporter(opts Options) *Reporter {
	opts.Now = e.clock.Now
	opts.Poll = cmp.Or(opts.Poll, 2*time.Millisecond)
	// On a clock that moves only when told, provisional writes would be
	// held for ever: tests of the hold set it.
	opts.ProvisionalHold = cmp.Or(opts.ProvisionalHold, -1)
	r := New(e.rdb, e.gh.ClientCreator(), opts)
	r.keys = newGlobalKeys(e.ns)
	return r
}

// run runs r until the test ends or stop is called, and checks that Run
// returns.
func run(t *testing.T, r *Reporter) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	t.Cleanup(stop)
	return stop
}

// await polls cond until it holds, failing the test after a deadline.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitEmpty waits until r has nothing left to send, so that its stats
// are final.
func awaitEmpty(t *testing.T, r *Reporter) {
	t.Helper()
	await(t, "empty outboxes", func() bool {
		n, err := r.Pending(t.Context())
		return err == nil && n == 0
	})
}

// requests returns the requests to GitHub for method (any if "") and a
// path under the repository ("/check-runs").
func (e *env) requests(method, under string) []githubtest.Request {
	var out []githubtest.Request
	prefix := "/repos/" + e.repo.FullName() + under
	for _, r := range e.gh.Requests() {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// readyAt is when the repository's outbox of class c may be sent next.
func (e *env) readyAt(t *testing.T, r *Reporter, c class) time.Time {
	score, err := e.rdb.ZScore(t.Context(), r.keys.readySet(c), keysFor(e.repo, c).member).Result()
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(score))
}

// looked waits until r's senders have looked for work twice more, so that
// whatever they were going to send now, they have sent. Only meaningful
// with one sender.
func looked(t *testing.T, r *Reporter) {
	t.Helper()
	n := r.looks.Load()
	await(t, "the sender to look for work", func() bool { return r.looks.Load() >= n+2 })
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
