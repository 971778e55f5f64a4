package runner

import (
	"strings"
	"testing"
)

func TestTailMemoryStaysBounded(t *testing.T) {
	tl := newTail(1000, []string{"secret"})
	chunk := []byte(strings.Repeat("x", 32<<10))
	for range 10 << 20 / len(chunk) {
		if _, err := tl.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if c := cap(tl.buf); c > 2*tl.max+len(chunk) {
			t.Fatalf("buffer grew to %d bytes", c)
		}
	}
	if out := tl.String(); len(out) != len("…\n")+1000 {
		t.Errorf("tail is %d bytes", len(out))
	}
}

// Every way of cutting through secrets leaves no piece of them.
func TestTailRedactsAcrossEveryCut(t *testing.T) {
	secrets := []string{"ZQ9-SECRET", "TOKEN-77-ZZ-LONGER"} // no lowercase: the filler is lowercase
	const keep = 40
	for _, first := range secrets {
		for _, second := range secrets {
			for gap := range keep + 20 {
				for after := range 25 {
					tl := newTail(keep, secrets)
					for _, s := range []string{strings.Repeat("a", 30), first, strings.Repeat("b", gap), second, strings.Repeat("c", after)} {
						_, _ = tl.Write([]byte(s))
					}
					out := tl.String()
					shown := strings.TrimPrefix(strings.ReplaceAll(out, "***", ""), "…\n")
					if strings.ContainsAny(shown, "ZQ9-SECRETOKN7LG") || len(shown) > keep {
						t.Fatalf("%s, %d, %s, %d: tail %q", first, gap, second, after, out)
					}
				}
			}
		}
	}
}
