package report

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// BenchmarkPace measures one budget check of a write, as a sender makes
// before each request: conversation against its minute and hour windows
// with the hour's log full (500 requests), status against its minute's
// points. The clock moves 7.2 s a check, an hour's budget spread over the
// hour, so nearly every check lets its write go.
func BenchmarkPace(b *testing.B) {
	for _, c := range []class{conversation, status} {
		b.Run(string(c), func(b *testing.B) {
			rdb := benchRedis(b)
			ns := "pace-bench-" + strings.ToLower(rand.Text()[:8])
			now := time.Now()
			r := New(rdb, nil, Options{Now: func() time.Time { return now }})
			r.keys = newGlobalKeys(ns)
			b.Cleanup(func() { cleanKeys(rdb, ns, nil) })
			ctx := context.Background()
			for b.Loop() {
				if _, err := r.pace(ctx, 1, c, now); err != nil {
					b.Fatal(err)
				}
				now = now.Add(7200 * time.Millisecond)
			}
		})
	}
}
