package report

import (
	"errors"
	"testing"

	"github.com/railyard/railyard/lease"
)

// TestLostOutboxLeaseRecordsNothing cuts a sender off after it sent the
// head of the outbox; its lease runs out and another sender takes the
// outbox over. What the first then records of GitHub's answer is refused
// in the same script that would have popped the operation: the outbox
// keeps it for the new holder, and no object entry appears.
func TestLostOutboxLeaseRecordsNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		r := e.reporter(Options{})
		must(t, r.Comment(ctx, e.repo, 1, "hello"))
		k, cut, err := r.claim(ctx, conversation)
		must(t, err)
		if cut == nil {
			t.Fatal("no outbox to claim")
		}
		items, err := e.rdb.LRange(ctx, k.outbox, 0, 0).Result()
		must(t, err)
		if len(items) != 1 {
			t.Fatalf("outbox holds %d operations, want 1", len(items))
		}

		must(t, e.rdb.Del(ctx, k.lease).Err()) // as Redis does when it runs out
		next, err := lease.Take(ctx, e.rdb, k.lease, outboxTimings)
		must(t, err)
		if next.Token <= cut.Token {
			t.Errorf("the new holder's token %d is not above the old one's %d", next.Token, cut.Token)
		}

		rec := record{field: "comment:lost", entry: entry{ID: 42}}
		var head taken
		head.add(0, items[0])
		if err := r.pop(ctx, k, cut, head, rec, true); !errors.Is(err, errLeaseLost) {
			t.Fatalf("pop by the holder that lost the lease = %v, want errLeaseLost", err)
		}
		if n, _ := e.rdb.LLen(ctx, k.outbox).Result(); n != 1 {
			t.Errorf("outbox holds %d operations after the refused pop, want 1", n)
		}
		if n, _ := e.rdb.Exists(ctx, k.object(rec.field)).Result(); n != 0 {
			t.Error("the holder that lost the lease recorded an object entry")
		}

		must(t, r.pop(ctx, k, &outboxLease{Lease: next, r: r, k: k}, head, rec, true))
		if n, _ := e.rdb.LLen(ctx, k.outbox).Result(); n != 0 {
			t.Errorf("outbox holds %d operations after the holder's pop, want 0", n)
		}
	})
}
