package server

import (
	"fmt"
	"testing"
)

// TestStageLabels: the first names seen keep their own label for good;
// every later one shares stageOther.
func TestStageLabels(t *testing.T) {
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
