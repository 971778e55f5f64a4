package server

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/railyard/railyard/internal/webhooktest"
)

// BenchmarkReadBody is the intake's read of a 9 KB push body, budget taken
// and given back.
func BenchmarkReadBody(b *testing.B) {
	payload := webhooktest.Payload(b, "push/with-new-branch.payload.json")
	budget := newBodyBudget(64 << 20)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := &http.Request{ContentLength: int64(len(payload)), Body: io.NopCloser(bytes.NewReader(payload))}
			_, held, err := budget.read(r)
			if err != nil {
				b.Fatal(err)
			}
			budget.give(held)
		}
	})
}
