package engine

import (
	"testing"
	"time"
)

// TestOptionsCheck: the stage lock must outlive a renewal, the step's
// grace and a margin, or a run cut off from Redis would still be stopping
// its step when another process takes the stage over.
func TestOptionsCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"the tests' quick poll", Options{Poll: 10 * time.Millisecond, Grace: time.Second}, true},
		{"grace as long as the lock", Options{Grace: 30 * time.Second}, false},
		{"lock shorter than poll+grace+margin", Options{LockTTL: 12 * time.Second, Poll: time.Second, Grace: 10 * time.Second}, false},
		{"wide margin", Options{LockMargin: 20 * time.Second}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.o.Check(); (err == nil) != c.ok {
				t.Errorf("Check() = %v, want ok %v", err, c.ok)
			}
		})
	}
}
