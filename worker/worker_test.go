package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/queue"
)

func TestBackoff(t *testing.T) {
	prev := time.Duration(0)
	for retries := range 40 {
		full := min(time.Second<<min(retries, 16), maxBackoff)
		for range 50 {
			d := backoff(retries)
			if d > full || d < full-full/5 {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", retries, d, full-full/5, full)
			}
		}
		if full < prev {
			t.Fatalf("backoff(%d) shrinks: %v after %v", retries, full, prev)
		}
		prev = full
	}
	if prev != maxBackoff {
		t.Errorf("backoff settles at %v, want the cap %v", prev, maxBackoff)
	}
}

// TestFailingJobIsRetriedThenGivenUp: a processor that keeps failing has its
// job retried, past the queue's MaxDeliveries, until RetryFor has passed
// since the first failure; then the job is dead-lettered and the observer
// hears "given-up" once.
func TestFailingJobIsRetriedThenGivenUp(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	q := queue.New(rdb, queue.Options{MaxDeliveries: 2, RetryFor: 100 * time.Millisecond})
	if err := q.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(t.Context(), queue.Job{Kind: "push", Repo: "o/r"}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	outcomes := map[string]int{}
	gaveUp := make(chan struct{})
	pool := &Pool{
		Queue:    q,
		Workers:  1,
		Consumer: "test",
		Wait:     10 * time.Millisecond,
		Processors: map[string]Processor{"push": func(context.Context, queue.Job) error {
			return errors.New("GitHub answered 502")
		}},
		Backoff: func(int) time.Duration { return 0 },
		Observe: func(_, outcome string, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			outcomes[outcome]++
			if outcome == "given-up" {
				close(gaveUp)
			}
		},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); pool.Run(ctx) }()
	select {
	case <-gaveUp:
	case <-time.After(10 * time.Second):
		t.Fatal("the failing job was never given up")
	}
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	if outcomes["retried"] <= 2 {
		t.Errorf("retried %d times before giving up; retries must not stop at MaxDeliveries (2)", outcomes["retried"])
	}
	if outcomes["given-up"] != 1 {
		t.Errorf("given up %d times, want once", outcomes["given-up"])
	}
	d, err := q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d != (queue.Depth{Dead: 1}) {
		t.Errorf("depth = %+v, want the job dead-lettered and nothing else", d)
	}
}
