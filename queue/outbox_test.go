package queue

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/store"
)

// outboxQueue is h.queue taking the Redis Cluster path on any backend:
// AddTx leaves jobs in the repository's outbox.
func outboxQueue(t *testing.T, h *harness, opts Options) *Queue {
	q := h.queue(t, opts)
	q.viaOutbox = true
	return q
}

// commitJobs runs a transaction on repo's keys that sets its state and
// queues jobs with AddTx, as the engine does, and returns EXEC's error.
func commitJobs(t *testing.T, h *harness, q *Queue, repo string, jobs ...Job) error {
	t.Helper()
	ctx := t.Context()
	state := store.RepoKey(repo, "state")
	t.Cleanup(func() { h.rdb.Del(context.Background(), state) })
	return h.rdb.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, state, "changed", 0)
			for _, j := range jobs {
				q.AddTx(pipe, j)
			}
			return nil
		})
		return err
	}, state)
}

// Forwarding the same outbox again, or from many processes at once, adds
// each job to the stream once, in the order the transaction queued them.
func TestForwardAddsEachJobOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := outboxQueue(t, h, Options{})
		ctx := t.Context()
		repo := "octo/app-" + rand.Text()
		if err := commitJobs(t, h, q, repo, Job{Kind: "stage", Repo: repo, Data: []byte("1")}, Job{Kind: "stage", Repo: repo, Data: []byte("2")}); err != nil {
			t.Fatalf("transaction: %v", err)
		}
		// A mover that died after adding the jobs but before removing them
		// from the outbox: the jobs are still there, and already queued.
		items := h.rdb.LRange(ctx, q.outbox(repo), 0, -1).Val()
		for _, item := range items {
			e, _ := decode(item)
			if _, _, err := q.EnqueueOnce(ctx, "forwarded:"+e.Nonce, forwardedTTL, e.job("")); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := q.Forward(ctx, repo); err != nil {
					t.Errorf("Forward: %v", err)
				}
			})
		}
		wg.Wait()
		wantDepth(t, q, Depth{Ready: 2})
		for _, want := range []string{"1", "2"} {
			if l := mustClaim(t, q, "a"); string(l.Job.Data) != want {
				t.Errorf("claimed job %q, want %q", l.Job.Data, want)
			}
		}
		if n := h.rdb.LLen(ctx, q.outbox(repo)).Val(); n != 0 {
			t.Errorf("outbox holds %d jobs after forwarding, want 0", n)
		}
	})
}

// A process that committed a transaction and died before Forward leaves
// its job in the outbox: a claim's sweep forwards it once the mark is due.
func TestSweepForwardsWhatACrashLeft(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := outboxQueue(t, h, Options{OutboxGrace: 200 * time.Millisecond})
		ctx := t.Context()
		repo := "octo/app-" + rand.Text()
		if err := commitJobs(t, h, q, repo, Job{Kind: "stage", Repo: repo}); err != nil {
			t.Fatalf("transaction: %v", err)
		}
		wantDepth(t, q, Depth{})
		h.advance(200 * time.Millisecond)
		l := mustClaim(t, q, "survivor")
		if l.Job.Repo != repo {
			t.Errorf("claimed %+v, want the job of %s", l.Job, repo)
		}
		if n, err := q.pending.Len(ctx); err != nil || n != 0 {
			t.Errorf("pending marks = %d, %v after the sweep; want 0", n, err)
		}
	})
}

// When the global mark cannot be written, the transaction fails: a job no
// sweep could find is never committed.
func TestAddTxFailsTheTransactionWithoutItsMark(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := outboxQueue(t, h, Options{})
		ctx := t.Context()
		// The index's key holding a string makes every mark fail.
		if err := h.rdb.Set(ctx, q.opts.Prefix+"outboxes", "not a sorted set", 0).Err(); err != nil {
			t.Fatal(err)
		}
		repo := "octo/app-" + rand.Text()
		if err := commitJobs(t, h, q, repo, Job{Kind: "stage", Repo: repo}); err == nil {
			t.Fatal("transaction committed a job without its mark")
		}
		if got := h.rdb.Exists(ctx, store.RepoKey(repo, "state"), q.outbox(repo)).Val(); got != 0 {
			t.Errorf("%d of the transaction's keys exist, want none", got)
		}
	})
}
