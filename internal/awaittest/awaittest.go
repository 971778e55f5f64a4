// Package awaittest waits, in tests, for something another goroutine or
// process does: it polls a condition until it holds or a deadline passes,
// so that no test sleeps for a guessed time.
package awaittest

import (
	"testing"
	"time"
)

// interval is how long a poll waits before asking again: short against
// the deadlines, long enough to leave the other side the CPU.
const interval = time.Millisecond

// Poll calls cond until it returns true or within has passed, and reports
// whether it held. Callers that must act before failing use it; others use
// Until.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// Until polls cond and fails the test, saying it waited for what, if cond
// does not hold within.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatalf("timed out after %v waiting for %s", within, what)
	}
}
