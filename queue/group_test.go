package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// gate holds the first enqueue script call in Redis's hands until opened,
// and records the size of every pipeline, so that a test can line calls up
// behind it.
type gate struct {
	held, open chan struct{}
	first      atomic.Bool

	mu        sync.Mutex
	failWith  error // returned for script pipelines instead of sending them
	pipelines []int // sizes of the script pipelines sent
}

func (g *gate) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.pipelines)
}

func (g *gate) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failWith = err
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && g.first.CompareAndSwap(false, true) {
			g.held <- struct{}{}
			<-g.open
		}
		return next(ctx, cmd)
	}
}

func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds) // not the group's (Depth's MULTI, say)
		}
		g.mu.Lock()
		g.pipelines = append(g.pipelines, len(cmds))
		fail := g.failWith
		g.mu.Unlock()
		if fail != nil {
			return fail
		}
		return next(ctx, cmds)
	}
}

type enqueued struct {
	id  string
	dup bool
	err error
}

// lineUp has one EnqueueOnce held in Redis and n more waiting behind it,
// then runs between (while they wait) and lets them go. It returns each
// call's outcome, the held one first.
func lineUp(t *testing.T, h *harness, q *Queue, g *gate, n int, between func()) []enqueued {
	t.Helper()
	h.rdb.AddHook(g)
	out := make([]enqueued, n+1)
	var wg sync.WaitGroup
	call := func(i int) {
		id, dup, err := q.EnqueueOnce(t.Context(), fmt.Sprint("delivery-", i), time.Minute, Job{Kind: "push", Data: []byte(fmt.Sprint(i))})
		out[i] = enqueued{id, dup, err}
	}
	wg.Go(func() { call(0) })
	<-g.held
	for i := 1; i <= n; i++ {
		wg.Go(func() { call(i) })
	}
	deadline := time.Now().Add(long)
	for {
		q.group.mu.Lock()
		waiting := len(q.group.pending)
		q.group.mu.Unlock()
		if waiting == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls waiting behind the held one, want %d", waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
	if between != nil {
		between()
	}
	close(g.open)
	wg.Wait()
	return out
}

// redisBackends are the backends where EnqueueOnce runs the script (not
// the single-process path).
func redisBackends(t *testing.T, fn func(t *testing.T, h *harness)) {
	eachBackend(t, func(t *testing.T, h *harness) {
		if h.single {
			t.Skip("single-process queues enqueue without the script")
		}
		fn(t, h)
	})
}

// TestConcurrentEnqueuesShareARoundTrip: webhooks arriving while one
// enqueue is in flight go to Redis together, in one pipeline, and each is
// queued as if alone.
func TestConcurrentEnqueuesShareARoundTrip(t *testing.T) {
	t.Parallel()
	const waiting = 8
	redisBackends(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		g := &gate{held: make(chan struct{}), open: make(chan struct{})}
		out := lineUp(t, h, q, g, waiting, nil)
		ids := map[string]bool{}
		for i, o := range out {
			if o.err != nil || o.dup || o.id == "" {
				t.Errorf("call %d = %+v, want a new job", i, o)
			}
			ids[o.id] = true
		}
		if len(ids) != waiting+1 {
			t.Errorf("%d distinct job ids for %d calls", len(ids), waiting+1)
		}
		if got, want := g.sizes(), []int{waiting}; !slices.Equal(got, want) {
			t.Errorf("pipelines of sizes %v, want %v: the waiting calls in one", got, want)
		}
		wantDepth(t, q, Depth{Ready: waiting + 1})
		// Their dedupe keys hold: a redelivery of any of them is refused.
		if _, dup, err := q.EnqueueOnce(t.Context(), "delivery-3", time.Minute, Job{Kind: "push"}); err != nil || !dup {
			t.Errorf("redelivery of a grouped call: duplicate = %v, %v; want true", dup, err)
		}
	})
}

// TestFailedRoundTripFailsEveryCallInIt: when the shared round trip fails,
// every webhook in it gets the error (and so a 503 and a redelivery), and
// the queue goes on working.
func TestFailedRoundTripFailsEveryCallInIt(t *testing.T) {
	t.Parallel()
	const waiting = 5
	redisBackends(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		g := &gate{held: make(chan struct{}), open: make(chan struct{})}
		g.fail(&net.OpError{Op: "write", Err: errors.New("connection reset")})
		out := lineUp(t, h, q, g, waiting, nil)
		g.fail(nil)
		if out[0].err != nil {
			t.Errorf("held call = %v, want it queued", out[0].err)
		}
		for i, o := range out[1:] {
			if o.err == nil || !strings.Contains(o.err.Error(), "connection reset") {
				t.Errorf("call %d in the failed round trip = %+v, want its error", i+1, o)
			}
		}
		wantDepth(t, q, Depth{Ready: 1})
		if _, dup, err := q.EnqueueOnce(t.Context(), "delivery-2", time.Minute, Job{Kind: "push"}); err != nil || dup {
			t.Errorf("redelivery after the failure: duplicate = %v, %v; want it queued", dup, err)
		}
		wantDepth(t, q, Depth{Ready: 2})
	})
}

// TestGroupSurvivesLostScripts: after Redis lost its scripts (a restart,
// SCRIPT FLUSH) a shared round trip answers NOSCRIPT, and every call in it
// is still queued.
func TestGroupSurvivesLostScripts(t *testing.T) {
	t.Parallel()
	const waiting = 4
	redisBackends(t, func(t *testing.T, h *harness) {
		q := h.queue(t, Options{})
		// A queue of its own on real Redis would still share the script
		// cache with parallel tests: flushing it must not fail them, and
		// does not, since Run reloads it (which this test shows).
		g := &gate{held: make(chan struct{}), open: make(chan struct{})}
		out := lineUp(t, h, q, g, waiting, func() {
			if err := h.rdb.ScriptFlush(t.Context()).Err(); err != nil {
				t.Fatalf("SCRIPT FLUSH: %v", err)
			}
		})
		for i, o := range out {
			if o.err != nil || o.dup {
				t.Errorf("call %d = %+v, want a new job", i, o)
			}
		}
		wantDepth(t, q, Depth{Ready: waiting + 1})
	})
}
