package runner

import (
	"strings"
	"testing"

	"github.com/railyard/railyard/secrets"
)

// BenchmarkRedactTail is the redaction of a full output tail (60 KiB of
// log lines, a secret on some): "value" hides a secret as written only,
// "forms" every form secrets.Forms lists (what a job's steps get).
func BenchmarkRedactTail(b *testing.B) {
	const secret = "Zq9-tok3n/v+lue x&y=1"
	var out strings.Builder
	for i := 0; out.Len() < DefaultTailBytes; i++ {
		if i%50 == 0 {
			out.WriteString("deploying with token " + secret + "\n")
		}
		out.WriteString("2026-12-03T12:00:00Z INFO step progress: applied resource 42 of 1000 in 13ms\n")
	}
	for _, c := range []struct {
		name   string
		redact []string
	}{
		{"value", []string{secret}},
		{"forms", secrets.Forms(secret)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t := newTail(DefaultTailBytes, c.redact)
				t.Write([]byte(out.String()))
				if s := t.String(); strings.Contains(s, secret) {
					b.Fatal("secret not redacted")
				}
			}
		})
	}
}
