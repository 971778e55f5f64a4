package awaittest

import (
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	calls := 0
	if !Poll(10*time.Second, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Errorf("Poll asked %d times and gave up or went on; want it to stop at the third, which held", calls)
	}
	start := time.Now()
	if Poll(20*time.Millisecond, func() bool { return false }) {
		t.Error("Poll reported a condition that never held")
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("Poll gave up after %v, before its deadline of 20ms", waited)
	}
}
