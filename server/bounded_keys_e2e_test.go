package server_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/engine"
)

// storeSample is what the store holds at one moment.
type storeSample struct {
	keys, persistent int64 // all keys; keys without an expiry
	bytes, kept      int64 // MEMORY USAGE of all keys; of keys without an expiry
	persistentNames  []string
}

// idLike is what varies between keys of one family: ids, SHAs, numbers.
var idLike = regexp.MustCompile(`[0-9a-f]{7,}|\d+`)

// sampleStore reads every key's expiry and memory.
func sampleStore(t *testing.T, rdb redis.UniversalClient) storeSample {
	t.Helper()
	ctx := t.Context()
	var s storeSample
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		size, err := rdb.MemoryUsage(ctx, key).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		s.keys++
		s.bytes += size
		if ttl == -1 { // no expiry (go-redis gives Redis's -1 as is)
			s.persistent++
			s.kept += size
			s.persistentNames = append(s.persistentNames, key)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(s.persistentNames)
	return s
}

// families names keys by their pattern, ids replaced by *.
func families(keys []string) map[string]int {
	out := map[string]int{}
	for _, k := range keys {
		out[idLike.ReplaceAllString(k, "*")]++
	}
	return out
}

// TestBusyHourKeepsTheStoreBounded runs a busy hour on the embedded store,
// in six rounds of ten simulated minutes (the store's clock is moved on;
// the work is real): pushes through two stages, each push delivered twice
// (the second refused as seen), commands answered, every report sent to
// the fake GitHub. After a round of warm-up, the keys that never expire
// stay the same keys; every other key has an expiry, and once the longest
// has passed the store holds the never-expiring keys alone.
func TestBusyHourKeepsTheStoreBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s`, markStep("compile"), markStep("deploy")))
	st := h.srv.Store()
	if !st.Embedded() {
		t.Skip("the busy hour moves the embedded store's clock")
	}
	const rounds, pushes, commands = 6, 5, 2
	var samples []storeSample
	for round := range rounds + 1 { // round 0 warms up
		for i := range pushes {
			sha := h.commit()
			delivery := fmt.Sprintf("busy-%d-%d", round, i)
			for range 2 {
				if code := h.deliverAs("push", delivery, pushBody(t, sha)); code >= 300 {
					t.Fatalf("push answered %d", code)
				}
			}
			h.awaitStage("staging", engine.Succeeded, sha)
			h.awaitCheckRun("railyard/staging", sha, "success")
		}
		for range commands {
			if reply := h.comment("/status"); !strings.Contains(reply, "staging") {
				t.Fatalf("/status replied %q", reply)
			}
		}
		h.await("every outbox sent", func() bool {
			n := 0
			for _, pattern := range []string{"*:outbox", "*:outbox:conversation"} {
				keys, _ := st.Redis.Keys(t.Context(), pattern).Result()
				n += len(keys)
			}
			return n == 0
		})
		st.FastForward(10 * time.Minute)
		s := sampleStore(t, st.Redis)
		t.Logf("after %3d simulated minutes: %4d keys (%d never expire), %7d bytes (%d in keys that never expire)",
			10*(round+1), s.keys, s.persistent, s.bytes, s.kept)
		samples = append(samples, s)
	}

	warm := samples[0]
	for i, s := range samples[1:] {
		if !slices.Equal(lasting(s.persistentNames), lasting(warm.persistentNames)) {
			t.Errorf("after %d simulated minutes the keys that never expire are %v, after warm-up %v",
				10*(i+2), families(s.persistentNames), families(warm.persistentNames))
		}
	}

	all, err := st.Redis.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keys after the hour: %v", families(all))
	// Longer than every expiry Railyard sets (30 days).
	st.FastForward(31 * 24 * time.Hour)
	end := sampleStore(t, st.Redis)
	t.Logf("31 days later: %d keys, %d bytes", end.keys, end.bytes)
	if end.keys != end.persistent || !slices.Equal(lasting(end.persistentNames), lasting(warm.persistentNames)) {
		t.Errorf("31 days later the store holds %v, want only the keys that never expire, %v",
			families(end.persistentNames), families(warm.persistentNames))
	}
	last := samples[len(samples)-1]
	if end.bytes > last.kept {
		t.Errorf("31 days later the store holds %d bytes, more than the %d of the keys that never expire an hour in", end.bytes, last.kept)
	}
}

// whileWaiting names the shared indexes of outboxes with work waiting (a
// ready set, the index of marked repositories): one key each, which
// exists only while some outbox has work, so it comes and goes between
// samples without growing.
var whileWaiting = regexp.MustCompile(`:outbox:(ready|marked)(:[a-z]+)?$`)

// lasting is names without the keys whileWaiting names.
func lasting(names []string) []string {
	return slices.DeleteFunc(slices.Clone(names), whileWaiting.MatchString)
}
