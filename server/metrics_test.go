package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/githubmetrics"
)

// TestStageLabels: the first names seen keep their own label for good;
// every later one shares stageOther.
func TestStageLabels(t *testing.T) {
	t.Parallel()
	l := stageLabels{max: 3, seen: map[string]bool{}}
	for i, c := range []struct{ stage, want string }{
		{"build", "build"},
		{"staging", "staging"},
		{"build", "build"},
		{"prod", "prod"},
		{"canary", stageOther},
		{"staging", "staging"},
		{"eu-prod", stageOther},
	} {
		if got := l.label(c.stage); got != c.want {
			t.Errorf("%d: label(%q) = %q, want %q", i, c.stage, got, c.want)
		}
	}
	for i := range 100 {
		if got := l.label(fmt.Sprint("stage-", i)); got != stageOther {
			t.Fatalf("label of new stage %d = %q, want %q", i, got, stageOther)
		}
	}
}

// BenchmarkWebhookMetrics is what each delivery adds to the intake path
// for its metrics (BENCHMARKS.md).
func BenchmarkWebhookMetrics(b *testing.B) {
	gh, err := githubmetrics.New("https://api.github.com/")
	if err != nil {
		b.Fatal(err)
	}
	m := newMetrics(gh, []string{"push"})
	b.ReportAllocs()
	for b.Loop() {
		m.observeWebhook(m.event("push"), http.StatusAccepted, time.Millisecond)
	}
}
