package store

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// BenchmarkEmbeddedCommand is the cost of one command on the embedded
// store as Railyard reaches it (in-memory pipes), beside the same miniredis
// reached over loopback TCP. RunParallel: one client per core, as workers
// and webhooks share the store.
func BenchmarkEmbeddedCommand(b *testing.B) {
	b.Run("pipe", func(b *testing.B) {
		s, err := Open(b.Context(), "", false)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		benchSet(b, s.Redis)
	})
	b.Run("tcp", func(b *testing.B) {
		m := miniredis.RunT(b)
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
		b.Cleanup(func() { rdb.Close() })
		benchSet(b, rdb)
	})
}

func benchSet(b *testing.B, rdb redis.UniversalClient) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := b.Context()
		for pb.Next() {
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
