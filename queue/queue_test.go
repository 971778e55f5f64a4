package queue

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/internal/redistest"
	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/store"
)

const (
	testLease = time.Second           // short, so that real Redis lets it pass quickly, yet long beside a loaded machine's scheduling delays
	short     = 30 * time.Millisecond // how long a Claim that must find nothing waits
	long      = 5 * time.Second       // how long a Claim that must find a job may wait
)

// harness is one Redis backend under test.
type harness struct {
	rdb     redis.UniversalClient
	advance func(d time.Duration) // lets d pass on the server's clock
	single  bool                  // queues take the Options.SingleProcess paths
	// ttlSlack is how late keys may expire after their TTL.
	ttlSlack time.Duration
}

type backend struct {
	name string
	open func(t testing.TB) *harness
}

// backends is miniredis always, plus real Redis when RAILYARD_TEST_REDIS_URL is set.
func backends(t testing.TB) []backend {
	bs := []backend{{"miniredis", openMiniredis}, {"miniredis/single-process", func(t testing.TB) *harness {
		h := openMiniredis(t)
		h.single = true
		return h
	}}, {"embedded-store", openEmbeddedStore}}
	if url := os.Getenv("RAILYARD_TEST_REDIS_URL"); url != "" {
		bs = append(bs, backend{"redis", func(t testing.TB) *harness { return openRedis(t, url) }})
	} else {
		t.Log("RAILYARD_TEST_REDIS_URL not set: testing on miniredis only")
	}
	return append(bs, backend{"cluster", func(t testing.TB) *harness {
		rdb := redistest.Cluster(t).Client(t)
		return &harness{rdb: rdb, advance: func(d time.Duration) { time.Sleep(d + 5*time.Millisecond) }}
	}})
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func openMiniredis(t testing.TB) *harness {
	m := miniredis.RunT(t)
	// A clock that moves only when told: stream idle times and TTLs follow it
	// (FastForward moves TTLs only, not the PEL idle times leases are made of).
	var mu sync.Mutex
	now := time.Now()
	m.SetTime(now)
	m.ClockTTL(true)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return &harness{rdb: rdb, advance: func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
		m.SetTime(now)
	}}
}

// openEmbeddedStore is the store Railyard runs on without Redis, as the
// server configures the queue for it: real time, single-process paths.
func openEmbeddedStore(t testing.TB) *harness {
	st, err := store.Open(context.Background(), "", false)
	if err != nil {
		t.Fatalf("embedded store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return &harness{rdb: st.Redis, single: true, ttlSlack: store.EmbeddedExpiry,
		advance: func(d time.Duration) { time.Sleep(d + 5*time.Millisecond) }}
}

func openRedis(t testing.TB, url string) *harness {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("RAILYARD_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("real Redis: %v", err)
	}
	// Real Redis keeps real time: the test has to let it pass (plus a margin for ms rounding).
	return &harness{rdb: rdb, advance: func(d time.Duration) { time.Sleep(d + 5*time.Millisecond) }}
}

// eachBackend runs fn as a parallel subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.open(t))
		})
	}
}

// queue returns an initialised queue under a prefix of its own, removed after the test.
func (h *harness) queue(t testing.TB, opts Options) *Queue {
	t.Helper()
	opts.Prefix = "railyard-test:{" + rand.Text() + "}:"
	opts.SingleProcess = h.single
	if opts.Lease == 0 {
		opts.Lease = testLease
	}
	q := New(h.rdb, opts)
	for range 2 { // Init must be idempotent
		if err := q.Init(t.Context()); err != nil {
			t.Fatalf("Init: %v", err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background() // the test's context is gone by now
		keys, err := h.rdb.Keys(ctx, opts.Prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = h.rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("clean up %s: %v", opts.Prefix, err)
		}
	})
	return q
}

func enqueue(t *testing.T, q *Queue, j Job) string {
	t.Helper()
	id, err := q.Enqueue(t.Context(), j)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id
}

// claim claims with the given wait and fails the test on an error.
func claim(t *testing.T, q *Queue, consumer string, wait time.Duration) *Lease {
	t.Helper()
	l, err := q.Claim(t.Context(), consumer, wait)
	if err != nil {
		t.Fatalf("Claim(%s): %v", consumer, err)
	}
	return l
}

func mustClaim(t *testing.T, q *Queue, consumer string) *Lease {
	t.Helper()
	l := claim(t, q, consumer, long)
	if l == nil {
		t.Fatalf("Claim(%s) found no job", consumer)
	}
	return l
}

func claimNothing(t *testing.T, q *Queue, consumer string) {
	t.Helper()
	if l := claim(t, q, consumer, short); l != nil {
		t.Fatalf("Claim(%s) = job %s (deliveries %d), want none", consumer, l.Job.ID, l.Job.Deliveries)
	}
}

func wantDepth(t *testing.T, q *Queue, want Depth) {
	t.Helper()
	got, err := q.Depth(t.Context())
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	if got != want {
		t.Errorf("Depth = %+v, want %+v", got, want)
	}
}

func TestEnqueueClaimAck(t *testing.T) {
	t.Parallel()
	jobs := []Job{
		{Kind: "push", Repo: "octo/app", Data: []byte(`{"sha":"1a2b3c4"}`)},
		{Kind: "comment", Repo: "octo/app"},
		{Kind: "stage", Repo: "octo/lib", Data: []byte{0, 0xff, '\n', '"'}},
	}
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		var ids []string
		for _, j := range jobs {
			ids = append(ids, enqueue(t, q, j))
		}
		wantDepth(t, q, Depth{Ready: int64(len(jobs))})
		for i, j := range jobs {
			l := mustClaim(t, q, "a")
			want := j
			want.ID, want.Deliveries, want.First = ids[i], 1, ids[i]
			if !reflect.DeepEqual(l.Job, want) {
				t.Errorf("claim %d = %+v, want %+v (in enqueue order)", i, l.Job, want)
			}
			if err := l.Ack(t.Context()); err != nil {
				t.Fatalf("Ack: %v", err)
			}
			if err := l.Ack(t.Context()); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("second Ack = %v, want ErrLeaseLost", err)
			}
		}
		h.advance(testLease)
		claimNothing(t, q, "b")
		wantDepth(t, q, Depth{})
	})
}

func TestClaimWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		wait   time.Duration
		before func(t *testing.T, q *Queue)                                  // before Claim starts
		during func(t *testing.T, h *harness, q *Queue, reads blockingReads) // while Claim waits; nil: nothing arrives
	}{
		{name: "no wait, nothing ready", wait: 0},
		{name: "nothing within wait", wait: 100 * time.Millisecond},
		{name: "job arrives during wait", wait: long, during: func(t *testing.T, _ *harness, q *Queue, reads blockingReads) {
			awaitBlockingRead(t, reads)
			enqueue(t, q, Job{Kind: "push"})
		}},
		{
			name: "delayed job comes due during wait", wait: long,
			before: func(t *testing.T, q *Queue) {
				if err := q.EnqueueIn(t.Context(), Job{Kind: "push"}, testLease); err != nil {
					t.Fatalf("EnqueueIn: %v", err)
				}
			},
			during: func(t *testing.T, h *harness, _ *Queue, reads blockingReads) {
				awaitBlockingRead(t, reads)
				h.advance(testLease)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachBackend(t, func(t *testing.T, h *harness) {
				q := h.queue(t, Options{})
				if tt.before != nil {
					tt.before(t, q)
				}
				reads := make(blockingReads, 1)
				h.rdb.AddHook(reads)
				type result struct {
					l       *Lease
					err     error
					elapsed time.Duration
				}
				res := make(chan result, 1)
				go func() {
					start := time.Now()
					l, err := q.Claim(t.Context(), "a", tt.wait)
					res <- result{l, err, time.Since(start)}
				}()
				arriving := tt.during != nil
				if arriving {
					tt.during(t, h, q, reads)
				}
				r := <-res
				if r.err != nil {
					t.Fatalf("Claim: %v", r.err)
				}
				if got := r.l != nil; got != arriving {
					t.Fatalf("Claim found a job: %v, want %v", got, arriving)
				}
				if arriving && r.elapsed >= tt.wait {
					t.Errorf("Claim took %v: it did not wake up for the job", r.elapsed)
				}
				// Redis rounds timeouts to ms, hence the tolerance.
				if !arriving && r.elapsed < tt.wait*9/10 {
					t.Errorf("Claim returned nothing after %v, want it to wait %v", r.elapsed, tt.wait)
				}
			})
		})
	}
}

// blockingReads receives a value each time its client sends a blocking
// XREADGROUP, so a test can act while Claim waits.
type blockingReads chan struct{}

func (r blockingReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xreadgroup" && slices.Contains(cmd.Args(), any("block")) {
			select {
			case r <- struct{}{}:
			default:
			}
		}
		return next(ctx, cmd)
	}
}
func (blockingReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (blockingReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// awaitBlockingRead waits until Claim sends its blocking read.
func awaitBlockingRead(t *testing.T, reads blockingReads) {
	t.Helper()
	select {
	case <-reads:
	case <-time.After(long):
		t.Fatal("Claim never started a blocking read")
	}
}

func TestEnqueueOnce(t *testing.T) {
	t.Parallel()
	const ttl = testLease
	steps := []struct {
		name    string
		key     string
		advance time.Duration // before this step
		wantDup bool
		sameAs  int // index of the step whose id a duplicate returns
	}{
		{name: "first", key: "delivery-1"},
		{name: "repeat", key: "delivery-1", wantDup: true, sameAs: 0},
		{name: "other key", key: "delivery-2"},
		{name: "repeat after ttl", key: "delivery-1", advance: ttl},
		{name: "repeat of the new one", key: "delivery-1", wantDup: true, sameAs: 3},
	}
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		ids := make([]string, len(steps))
		for i, s := range steps {
			if s.advance > 0 {
				h.advance(s.advance + h.ttlSlack)
			}
			id, dup, err := q.EnqueueOnce(t.Context(), s.key, ttl, Job{Kind: "comment", Data: []byte(s.name)})
			if err != nil {
				t.Fatalf("%s: EnqueueOnce: %v", s.name, err)
			}
			ids[i] = id
			if dup != s.wantDup {
				t.Errorf("%s: duplicate = %v, want %v", s.name, dup, s.wantDup)
			}
			if s.wantDup && id != ids[s.sameAs] {
				t.Errorf("%s: id = %q, want the first job's %q", s.name, id, ids[s.sameAs])
			}
		}
		wantDepth(t, q, Depth{Ready: 3})
		for _, want := range []string{"first", "other key", "repeat after ttl"} {
			if l := mustClaim(t, q, "a"); string(l.Job.Data) != want {
				t.Errorf("claimed job %q, want %q", l.Job.Data, want)
			}
		}
	})
	t.Run("ttl below 1ms", func(t *testing.T) {
		q := openMiniredis(t).queue(t, Options{})
		if _, _, err := q.EnqueueOnce(t.Context(), "k", 0, Job{Kind: "push"}); err == nil {
			t.Error("EnqueueOnce with ttl 0 succeeded, want an error")
		}
	})
}

// TestEnqueueOnceConcurrently: deliveries of one key racing each other,
// as GitHub's redeliveries can, queue one job between them.
func TestEnqueueOnceConcurrently(t *testing.T) {
	t.Parallel()
	const racers = 16
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		var fresh atomic.Int64
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() {
				_, dup, err := q.EnqueueOnce(t.Context(), "delivery-1", time.Minute, Job{Kind: "push"})
				if err != nil {
					t.Errorf("EnqueueOnce: %v", err)
				}
				if !dup {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if n := fresh.Load(); n != 1 {
			t.Errorf("%d of %d racing deliveries were queued, want 1", n, racers)
		}
		wantDepth(t, q, Depth{Ready: 1})
	})
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	for _, second := range []string{"b", "a"} { // another consumer, or the same one restarted
		t.Run("by "+second, func(t *testing.T) {
			t.Parallel()
			eachBackend(t, func(t *testing.T, h *harness) {
				q := h.queue(t, Options{})
				ctx := t.Context()
				id := enqueue(t, q, Job{Kind: "stage", Repo: "octo/app"})
				first := mustClaim(t, q, "a")
				claimNothing(t, q, "b") // the lease is live

				h.advance(testLease)
				again := mustClaim(t, q, second)
				if again.Job.ID != id || again.Job.Deliveries != 2 {
					t.Errorf("taken over job %s with %d deliveries, want %s with 2", again.Job.ID, again.Job.Deliveries, id)
				}
				for name, op := range map[string]func(context.Context) error{
					"Renew":   first.Renew,
					"Ack":     first.Ack,
					"Release": first.Release,
					"Retry":   func(ctx context.Context) error { return first.Retry(ctx, 0) },
				} {
					if err := op(ctx); !errors.Is(err, ErrLeaseLost) {
						t.Errorf("old lease's %s = %v, want ErrLeaseLost", name, err)
					}
				}
				if err := again.Ack(ctx); err != nil {
					t.Fatalf("new lease's Ack: %v", err)
				}
				h.advance(testLease)
				claimNothing(t, q, "c")
				wantDepth(t, q, Depth{})
			})
		})
	}
}

func TestRenewKeepsJob(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		enqueue(t, q, Job{Kind: "stage"})
		l := mustClaim(t, q, "a")
		for range 2 { // more than a lease in all
			h.advance(testLease * 2 / 3)
			if err := l.Renew(t.Context()); err != nil {
				t.Fatalf("Renew: %v", err)
			}
		}
		h.advance(testLease * 2 / 3)
		claimNothing(t, q, "b")
		if err := l.Ack(t.Context()); err != nil {
			t.Errorf("Ack after extending: %v", err)
		}
	})
}

func TestReleaseHandsBackAtOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		id := enqueue(t, q, Job{Kind: "stage"})
		a := mustClaim(t, q, "a")
		if err := a.Release(t.Context()); err != nil {
			t.Fatalf("Release: %v", err)
		}
		b := claim(t, q, "b", 0) // no time passes
		if b == nil || b.Job.ID != id || b.Job.Deliveries != 2 {
			t.Fatalf("Claim after Release = %+v, want job %s with 2 deliveries", b, id)
		}
		if err := a.Ack(t.Context()); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("released lease's Ack = %v, want ErrLeaseLost", err)
		}
		if err := b.Ack(t.Context()); err != nil {
			t.Errorf("Ack: %v", err)
		}
	})
}

func TestDelayed(t *testing.T) {
	t.Parallel()
	job := Job{Kind: "stage", Repo: "octo/app", Data: []byte(`{"stage":"prod"}`)}
	tests := []struct {
		name  string
		delay time.Duration
		// add queues the job and returns the id of its first entry, or ""
		// when that is the entry claimed below.
		add            func(t *testing.T, q *Queue, delay time.Duration) string
		wantDeliveries int
		wantRetries    int
	}{
		{name: "EnqueueIn", delay: testLease, wantDeliveries: 1, add: func(t *testing.T, q *Queue, delay time.Duration) string {
			if err := q.EnqueueIn(t.Context(), job, delay); err != nil {
				t.Fatalf("EnqueueIn: %v", err)
			}
			return ""
		}},
		{name: "Retry", delay: testLease, wantDeliveries: 2, wantRetries: 1, add: func(t *testing.T, q *Queue, delay time.Duration) string {
			first := enqueue(t, q, job)
			if err := mustClaim(t, q, "a").Retry(t.Context(), delay); err != nil {
				t.Fatalf("Retry: %v", err)
			}
			return first
		}},
		{name: "Retry without delay", wantDeliveries: 2, wantRetries: 1, add: func(t *testing.T, q *Queue, delay time.Duration) string {
			first := enqueue(t, q, job)
			if err := mustClaim(t, q, "a").Retry(t.Context(), delay); err != nil {
				t.Fatalf("Retry: %v", err)
			}
			return first
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachBackend(t, func(t *testing.T, h *harness) {
				q := h.queue(t, Options{})
				first := tt.add(t, q, tt.delay)
				if tt.delay > 0 {
					wantDepth(t, q, Depth{Delayed: 1})
					claimNothing(t, q, "b")
					h.advance(tt.delay)
				}
				l := mustClaim(t, q, "b")
				got := l.Job
				want := job
				want.Deliveries, want.Retries = tt.wantDeliveries, tt.wantRetries
				want.First = cmp.Or(first, got.ID)
				if (tt.wantRetries > 0) == got.FailingSince.IsZero() {
					t.Errorf("FailingSince = %v after %d retries", got.FailingSince, tt.wantRetries)
				}
				got.FailingSince = time.Time{}
				if Order(got.First) == 0 || (first != "" && Order(got.ID) <= Order(got.First)) {
					t.Errorf("entry %s, first %s: a retry's entry must order after its first", got.ID, got.First)
				}
				got.ID = ""
				if !reflect.DeepEqual(got, want) {
					t.Errorf("claimed %+v, want %+v", got, want)
				}
				if err := l.Ack(t.Context()); err != nil {
					t.Fatalf("Ack: %v", err)
				}
				wantDepth(t, q, Depth{})
			})
		})
	}
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	const maxDeliveries = 2
	failures := []struct {
		name string
		fail func(t *testing.T, h *harness, l *Lease)
	}{
		{"released", func(t *testing.T, _ *harness, l *Lease) {
			if err := l.Release(t.Context()); err != nil {
				t.Fatalf("Release: %v", err)
			}
		}},
		{"lease expired", func(_ *testing.T, h *harness, _ *Lease) { h.advance(testLease) }},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			eachBackend(t, func(t *testing.T, h *harness) {
				q := h.queue(t, Options{MaxDeliveries: maxDeliveries})
				job := Job{Kind: "stage", Repo: "octo/app", Data: []byte(`{"n":1}`)}
				enqueue(t, q, job)
				var first, last string // Retry re-enqueues the job under a new id
				for i := 1; i <= maxDeliveries; i++ {
					l := mustClaim(t, q, "a")
					last = l.Job.ID
					if i == 1 {
						first = last
					}
					if l.Job.Deliveries != i {
						t.Fatalf("delivery %d has Deliveries %d", i, l.Job.Deliveries)
					}
					f.fail(t, h, l)
				}
				claimNothing(t, q, "a")
				wantDepth(t, q, Depth{Dead: 1})
				dead, err := q.Dead(t.Context(), 10)
				if err != nil {
					t.Fatalf("Dead: %v", err)
				}
				want := job
				want.ID, want.Deliveries, want.First = last, maxDeliveries, first
				if len(dead) != 1 || !reflect.DeepEqual(dead[0], want) {
					t.Errorf("dead jobs = %+v, want [%+v]", dead, want)
				}
			})
		})
	}
}

func TestUnreadableJobIsDeadLettered(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		bad, err := h.rdb.XAdd(t.Context(), q.xadd("not json")).Result()
		if err != nil {
			t.Fatal(err)
		}
		good := enqueue(t, q, Job{Kind: "push"})
		if l := mustClaim(t, q, "a"); l.Job.ID != good {
			t.Errorf("claimed %s, want the readable job %s", l.Job.ID, good)
		}
		wantDepth(t, q, Depth{Leased: 1, Dead: 1})
		dead, err := q.Dead(t.Context(), 10)
		if err != nil {
			t.Fatalf("Dead: %v", err)
		}
		if len(dead) != 1 || dead[0].ID != bad {
			t.Errorf("dead jobs = %+v, want the unreadable entry %s", dead, bad)
		}
	})
}

func TestAddTx(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		interfere bool // another client changes the watched key before EXEC
		wantState string
		wantJobs  int64
	}{
		{name: "commits with the caller's SET", wantState: "queued", wantJobs: 1},
		{name: "aborted transaction adds no job", interfere: true, wantState: "changed elsewhere", wantJobs: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachBackend(t, func(t *testing.T, h *harness) {
				q := h.queue(t, Options{})
				ctx := t.Context()
				repo := "octo/app-" + rand.Text()
				state := store.RepoKey(repo, "state")
				t.Cleanup(func() { h.rdb.Del(context.Background(), state) })
				err := h.rdb.Watch(ctx, func(tx *redis.Tx) error {
					if tt.interfere {
						if err := h.rdb.Set(ctx, state, "changed elsewhere", 0).Err(); err != nil {
							return err
						}
					}
					_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
						pipe.Set(ctx, state, "queued", 0)
						q.AddTx(pipe, Job{Kind: "stage", Repo: repo})
						return nil
					})
					return err
				}, state)
				if tt.interfere != errors.Is(err, redis.TxFailedErr) {
					t.Fatalf("transaction: %v", err)
				}
				// On one Redis the job is queued at EXEC; on a Cluster it
				// waits in the repository's outbox for Committed.
				before := tt.wantJobs
				if q.viaOutbox {
					before = 0
				}
				wantDepth(t, q, Depth{Ready: before})
				if err := q.Committed(ctx, repo); err != nil {
					t.Errorf("Committed: %v", err)
				}
				if got := h.rdb.Get(ctx, state).Val(); got != tt.wantState {
					t.Errorf("state = %q, want %q", got, tt.wantState)
				}
				wantDepth(t, q, Depth{Ready: tt.wantJobs})
				if tt.wantJobs > 0 {
					if l := mustClaim(t, q, "a"); l.Job.Kind != "stage" || l.Job.Repo != repo {
						t.Errorf("claimed %+v, want the stage job", l.Job)
					}
				}
			})
		})
	}
}

func TestDepth(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{MaxDeliveries: 1})
		ctx := t.Context()
		wantDepth(t, q, Depth{})
		for range 4 {
			enqueue(t, q, Job{Kind: "push"})
		}
		if err := q.EnqueueIn(ctx, Job{Kind: "push"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		wantDepth(t, q, Depth{Ready: 4, Delayed: 1})
		if err := mustClaim(t, q, "a").Release(ctx); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, q, "a") // the released job is dead-lettered on the way
		wantDepth(t, q, Depth{Ready: 2, Leased: 1, Delayed: 1, Dead: 1})
	})
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		takenOver bool
		wantCause error
	}{
		// Stalled past its give-up time, or told by a renewal: lost either way.
		{name: "lost when taken over", takenOver: true, wantCause: lease.ErrLost},
		{name: "stopped while held", wantCause: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachBackend(t, func(t *testing.T, h *harness) {
				q := h.queue(t, Options{})
				enqueue(t, q, Job{Kind: "stage"})
				a := mustClaim(t, q, "a")
				var b *Lease
				if tt.takenOver {
					// a stalled (say, a long GC pause) and b took over before a's keep-alive ran.
					h.advance(testLease)
					b = mustClaim(t, q, "b")
				}
				lost, stop := a.KeepAlive(t.Context())
				if tt.takenOver {
					select {
					case <-lost.Done():
					case <-time.After(long):
						t.Fatal("lost context not cancelled after the job was taken over")
					}
				}
				stop()
				stop() // safe to call again
				if err := lost.Err(); err == nil {
					t.Fatal("lost context still live after stop")
				}
				if got := context.Cause(lost); !errors.Is(got, tt.wantCause) {
					t.Errorf("cause = %v, want %v", got, tt.wantCause)
				}
				if err := cmp.Or(b, a).Ack(t.Context()); err != nil {
					t.Errorf("current owner's Ack: %v", err)
				}
			})
		})
	}
}

func TestConcurrentConsumersAckEachJobOnce(t *testing.T) {
	t.Parallel()
	const consumers, jobs = 8, 200
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{Lease: long})
		// Half the jobs wait in the delayed set, so that consumers race to
		// move them too; each is known by its data, which a doubled move
		// would repeat.
		for i := range jobs {
			j := Job{Kind: "push", Data: []byte(strconv.Itoa(i))}
			if i%2 == 0 {
				enqueue(t, q, j)
			} else if err := q.EnqueueIn(t.Context(), j, 0); err != nil {
				t.Fatalf("EnqueueIn: %v", err)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		var (
			mu   sync.Mutex
			acks = map[string]int{}
			wg   sync.WaitGroup
		)
		for i := range consumers {
			wg.Go(func() {
				name := string(rune('a' + i))
				for {
					mu.Lock()
					done := len(acks) == jobs
					mu.Unlock()
					if done || ctx.Err() != nil {
						return
					}
					l, err := q.Claim(ctx, name, short)
					if err != nil && ctx.Err() == nil {
						t.Errorf("%s: Claim: %v", name, err)
					}
					if l == nil {
						continue
					}
					if err := l.Ack(ctx); err != nil {
						t.Errorf("%s: Ack: %v", name, err)
						continue
					}
					mu.Lock()
					acks[string(l.Job.Data)]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(acks) != jobs {
			t.Errorf("%d distinct jobs acked, want %d", len(acks), jobs)
		}
		for data, n := range acks {
			if n != 1 {
				t.Errorf("job %s acked %d times", data, n)
			}
		}
		wantDepth(t, q, Depth{})
	})
}

func BenchmarkEnqueueClaimAck(b *testing.B) {
	for _, be := range backends(b) {
		b.Run(be.name, func(b *testing.B) {
			q := be.open(b).queue(b, Options{})
			ctx := b.Context()
			job := Job{Kind: "push", Repo: "octo/app", Data: []byte(`{"sha":"1a2b3c4"}`)}
			for b.Loop() {
				if _, err := q.Enqueue(ctx, job); err != nil {
					b.Fatal(err)
				}
				l, err := q.Claim(ctx, "bench", time.Second)
				if err != nil || l == nil {
					b.Fatalf("Claim = %v, %v", l, err)
				}
				if err := l.Ack(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestQueueHealsAfterDataLoss: when the store comes back empty (a restart
// without persistence, FLUSHALL), Check says so, and the next Claim
// recreates the stream and group instead of failing until a restart. Jobs
// enqueued after the loss are handed out, whether they came before or
// after the heal.
func TestQueueHealsAfterDataLoss(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		if err := q.Check(t.Context()); err != nil {
			t.Fatalf("Check on a fresh queue: %v", err)
		}
		enqueue(t, q, Job{Kind: "push", Repo: "o/r", Data: []byte("lost")})

		// The store loses everything of this queue.
		if err := h.rdb.Del(t.Context(), q.stream, q.delayed, q.dead).Err(); err != nil {
			t.Fatal(err)
		}
		if err := q.Check(t.Context()); !errors.Is(err, ErrNotReady) {
			t.Fatalf("Check after the loss = %v, want ErrNotReady", err)
		}
		// Intake goes on: XADD makes a stream without the group.
		before := enqueue(t, q, Job{Kind: "push", Repo: "o/r", Data: []byte("before heal")})
		if err := q.Check(t.Context()); !errors.Is(err, ErrNotReady) {
			t.Fatalf("Check with the stream but no group = %v, want ErrNotReady", err)
		}

		l := mustClaim(t, q, "c1")
		if l.Job.ID != before || string(l.Job.Data) != "before heal" {
			t.Fatalf("first claim after the loss = %s %q, want %s %q", l.Job.ID, l.Job.Data, before, "before heal")
		}
		if err := l.Ack(t.Context()); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := q.Check(t.Context()); err != nil {
			t.Fatalf("Check after the heal: %v", err)
		}
		after := enqueue(t, q, Job{Kind: "push", Repo: "o/r", Data: []byte("after heal")})
		if l := mustClaim(t, q, "c1"); l.Job.ID != after {
			t.Fatalf("claim after the heal = %s, want %s", l.Job.ID, after)
		}
		claimNothing(t, q, "c2")
	})
}

// TestDeadLetteredDeliveryIsTakenAgain: a job enqueued once under a
// delivery id and then given up no longer blocks that delivery: GitHub's
// redelivery of it is queued, not refused as seen before.
func TestDeadLetteredDeliveryIsTakenAgain(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{MaxDeliveries: 1})
		job := Job{Kind: "push", Repo: "octo/app", Data: []byte(`{"n":1}`)}
		// Released with MaxDeliveries 1: the next claim buries it.
		if _, dup, err := q.EnqueueOnce(t.Context(), "delivery-1", time.Hour, job); err != nil || dup {
			t.Fatalf("EnqueueOnce = dup %v, %v", dup, err)
		}
		if _, dup, err := q.EnqueueOnce(t.Context(), "delivery-1", time.Hour, job); err != nil || !dup {
			t.Fatalf("EnqueueOnce while queued = dup %v, %v; want a duplicate", dup, err)
		}
		if err := mustClaim(t, q, "a").Release(t.Context()); err != nil {
			t.Fatalf("Release: %v", err)
		}
		claimNothing(t, q, "a")
		wantDepth(t, q, Depth{Dead: 1})

		id, dup, err := q.EnqueueOnce(t.Context(), "delivery-1", time.Hour, job)
		if err != nil || dup {
			t.Fatalf("EnqueueOnce after the job was given up = dup %v, %v; want it queued", dup, err)
		}
		if l := mustClaim(t, q, "a"); l.Job.ID != id {
			t.Errorf("claimed %s, want the redelivery %s", l.Job.ID, id)
		}
	})
}

// TestDeadLetterStreamIsTrimmed: the dead-letter stream keeps the newest
// Options.DeadKept jobs, so a long outage cannot grow it without bound.
func TestDeadLetterStreamIsTrimmed(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{MaxDeliveries: 1, DeadKept: 2})
		for i := range 4 {
			enqueue(t, q, Job{Kind: "stage", Repo: "octo/app", Data: []byte(strconv.Itoa(i))})
			if err := mustClaim(t, q, "a").Release(t.Context()); err != nil {
				t.Fatalf("Release: %v", err)
			}
			claimNothing(t, q, "a") // buries it
		}
		dead, err := q.Dead(t.Context(), 10)
		if err != nil {
			t.Fatalf("Dead: %v", err)
		}
		var got []string
		for _, j := range dead {
			got = append(got, string(j.Data))
		}
		if !slices.Equal(got, []string{"3", "2"}) {
			t.Errorf("dead jobs = %v, want the newest two [3 2]", got)
		}
	})
}

// TestRetryGivesUpAfterRetryFor: a job whose processor keeps failing is
// retried past MaxDeliveries, for as long as Options.RetryFor from its first
// failure, and only then dead-lettered, with Retry saying so.
func TestRetryGivesUpAfterRetryFor(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		const retryFor = 100 * time.Millisecond
		q := h.queue(t, Options{MaxDeliveries: 2, RetryFor: retryFor})
		enqueue(t, q, Job{Kind: "push", Repo: "octo/app", Data: []byte("x")})
		var first, since time.Time // just before the first failure; FailingSince as first carried
		for retries := 0; ; retries++ {
			l := mustClaim(t, q, "a")
			if l.Job.Retries != retries {
				t.Fatalf("delivery %d has Retries %d, want %d", l.Job.Deliveries, l.Job.Retries, retries)
			}
			switch {
			case retries == 0:
				first = time.Now()
			case retries == 1:
				// Kept to the millisecond, of the first failure.
				since = l.Job.FailingSince
				if since.Before(first.Truncate(time.Millisecond)) || since.After(time.Now()) {
					t.Fatalf("FailingSince %v, want the first failure's time (after %v)", since, first)
				}
			case !l.Job.FailingSince.Equal(since):
				t.Fatalf("FailingSince moved from %v to %v", since, l.Job.FailingSince)
			}
			err := l.Retry(t.Context(), 0)
			if errors.Is(err, ErrGivenUp) {
				// FailingSince is kept to the millisecond.
				if waited := time.Since(first); waited < retryFor-time.Millisecond {
					t.Errorf("given up %v after the first failure, before RetryFor %v", waited, retryFor)
				}
				if retries <= 2 {
					t.Errorf("given up after %d retries; retries must not count towards MaxDeliveries", retries)
				}
				break
			}
			if err != nil {
				t.Fatalf("Retry: %v", err)
			}
		}
		claimNothing(t, q, "a")
		wantDepth(t, q, Depth{Dead: 1})
	})
}

// TestReplay: a dead-lettered job, replayed by the id it had, is claimable
// again with fresh counts and leaves the dead-letter stream; replaying it
// twice, or an unknown id, says there is no such job.
func TestReplay(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{MaxDeliveries: 1})
		id := enqueue(t, q, Job{Kind: "push", Repo: "octo/app", Data: []byte("lost push")})
		if err := mustClaim(t, q, "a").Release(t.Context()); err != nil {
			t.Fatalf("Release: %v", err)
		}
		claimNothing(t, q, "a") // buries it
		wantDepth(t, q, Depth{Dead: 1})

		replayed, err := q.Replay(t.Context(), id)
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		wantDepth(t, q, Depth{Ready: 1})
		l := mustClaim(t, q, "a")
		if l.Job.ID != replayed.ID || string(l.Job.Data) != "lost push" || l.Job.Deliveries != 1 || l.Job.Retries != 0 {
			t.Errorf("claimed %+v after replay, want the job as new under %s", l.Job, replayed.ID)
		}
		for _, again := range []string{id, "0-1"} {
			if _, err := q.Replay(t.Context(), again); !errors.Is(err, ErrNoSuchJob) {
				t.Errorf("Replay(%s) = %v, want ErrNoSuchJob", again, err)
			}
		}
	})
}
