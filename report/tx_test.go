package report

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/store"
)

// commitCheckRun queues a check run inside a transaction on the
// repository's own keys, as the engine does, and returns EXEC's error.
func (e *env) commitCheckRun(t *testing.T, r *Reporter) error {
	t.Helper()
	ctx := t.Context()
	state := store.RepoKey(e.repo.FullName(), "state")
	return e.rdb.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, state, "changed", 0)
			return r.AddTx(ctx, pipe, e.repo, Write{Key: "job-1", CheckRun: &CheckRun{Name: "railyard/build", HeadSHA: e.sha, Status: "in_progress"}})
		})
		return err
	}, state)
}

// clusterPath makes r take Redis Cluster's path on any backend: a write in
// a transaction is marked in its class's index before the push and ready
// only once the caller says it committed.
func clusterPath(r *Reporter) *Reporter {
	r.viaIndex = true
	return r
}

// On one Redis, a write committed in a caller's transaction is ready to
// send at EXEC, and leaves no mark behind.
func TestTransactionWritesAreReadyAtExecOnOneRedis(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{Grace: time.Hour})
		if r.viaIndex {
			t.Skip("a Redis Cluster: see TestTransactionWritesAreSentOnceCommitted")
		}
		must(t, e.commitCheckRun(t, r))
		if at := e.readyAt(t, r, status); at.IsZero() {
			t.Fatal("outbox not ready after EXEC")
		}
		if n, err := r.pending(status).Len(t.Context()); err != nil || n != 0 {
			t.Errorf("%d marks in the index (%v), want none", n, err)
		}
		run(t, r)
		await(t, "the check run on GitHub", func() bool { return len(e.fake.CheckRuns()) == 1 })
	})
}

// On Redis Cluster, a write committed in a caller's transaction is sent
// once the caller says it committed, not before.
func TestTransactionWritesAreSentOnceCommitted(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := clusterPath(e.reporter(Options{Grace: time.Hour}))
		must(t, e.commitCheckRun(t, r))
		if at := e.readyAt(t, r, status); !at.IsZero() {
			t.Fatalf("outbox ready at %v before Committed, want not ready", at)
		}
		r.Committed(t.Context(), e.repo.FullName())
		if at := e.readyAt(t, r, conversation); !at.IsZero() {
			t.Errorf("conversation outbox ready at %v, want not ready: nothing was queued there", at)
		}
		run(t, r)
		await(t, "the check run on GitHub", func() bool { return len(e.fake.CheckRuns()) == 1 })
	})
}

// On Redis Cluster, a committer that died between its EXEC and Committed
// loses nothing: the sweep sends the write once its mark is due.
func TestTransactionWritesOfADeadCommitterAreSent(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := clusterPath(e.reporter(Options{Grace: 100 * time.Millisecond}))
		must(t, e.commitCheckRun(t, r))
		run(t, r)
		await(t, "the check run on GitHub", func() bool { return len(e.fake.CheckRuns()) == 1 })
		await(t, "the mark to go", func() bool {
			n, err := r.pending(status).Len(context.Background())
			return err == nil && n == 0
		})
	})
}

// On Redis Cluster, a write whose mark cannot be stored fails its
// caller's transaction.
func TestTransactionFailsWithoutItsMark(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := clusterPath(e.reporter(Options{}))
		must(t, e.rdb.Set(t.Context(), r.keys.markedSet(status), "not a sorted set", 0).Err())
		if err := e.commitCheckRun(t, r); err == nil {
			t.Fatal("the transaction committed a write without its mark")
		}
		if n := e.rdb.LLen(t.Context(), keysFor(e.repo, status).outbox).Val(); n != 0 {
			t.Errorf("outbox holds %d writes, want 0", n)
		}
	})
}
