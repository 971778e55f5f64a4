package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/internal/redistest"
)

func TestOpenEmbedded(t *testing.T) {
	s := embeddedForTest(t)
	if !s.Embedded() {
		t.Error("empty URL should give the embedded store")
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("ping embedded store: %v", err)
	}
}

// TestEmbeddedPortIsClosedToOthers: miniredis also listens on loopback;
// another local user connecting there must not reach Railyard's state.
func TestEmbeddedPortIsClosedToOthers(t *testing.T) {
	s := embeddedForTest(t)
	if err := s.Redis.Set(t.Context(), "railyard:secret", "state", 0).Err(); err != nil {
		t.Fatalf("write through the store: %v", err)
	}
	other := redis.NewClient(&redis.Options{Addr: s.embedded.Addr()})
	defer other.Close()
	if v, err := other.Get(t.Context(), "railyard:secret").Result(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("a client on the embedded store's port read %q, %v; want NOAUTH", v, err)
	}
}

// TestEmbeddedLargeValuesAndPipelines: large values, and go-redis pipelines
// whose commands and replies are both megabytes, get through the in-memory
// connections. go-redis writes a whole pipeline before reading a reply and
// miniredis replies while it reads: over pipes whose writes wait for the
// reader (net.Pipe, or a full buffer) the GETs below deadlock.
func TestEmbeddedLargeValuesAndPipelines(t *testing.T) {
	s := embeddedForTest(t)
	ctx := t.Context()
	big := strings.Repeat("x", 4<<20)
	if err := s.Redis.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Redis.Get(ctx, "big").Result(); err != nil || got != big {
		t.Fatalf("GET of a %d-byte value: %d bytes, %v", len(big), len(got), err)
	}

	// 10,000 GETs are ~450 KB of commands and 20 MB of replies.
	const n = 10_000
	key := func(i int) string { return fmt.Sprintf("railyard:pipelined:%05d", i) }
	value := func(i int) string { return fmt.Sprintf("%05d%s", i, strings.Repeat("v", 2000)) }
	cmds, err := s.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Set(ctx, key(i), value(i), 0)
		}
		return nil
	})
	if err != nil || len(cmds) != n {
		t.Fatalf("pipeline of %d SETs: %d replies, %v", n, len(cmds), err)
	}
	gets := make([]*redis.StringCmd, n)
	if _, err := s.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			gets[i] = p.Get(ctx, key(i))
		}
		return nil
	}); err != nil {
		t.Fatalf("pipeline of %d GETs: %v", n, err)
	}
	for i, g := range gets {
		if g.Val() != value(i) {
			t.Fatalf("GET %s in the pipeline = %.10q..., want %.10q...", key(i), g.Val(), value(i))
		}
	}
}

// TestEmbeddedKeysExpire: keys with a TTL (deliveries remembered for a
// day, stage locks, leases) expire on the embedded store as on Redis.
func TestEmbeddedKeysExpire(t *testing.T) {
	s := embeddedForTest(t)
	ctx := t.Context()
	if err := s.Redis.Set(ctx, "lease", "mine", 50*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Redis.Set(ctx, "kept", "forever", 0).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * EmbeddedExpiry)
	for s.Redis.Exists(ctx, "lease").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatalf("a key with a 50 ms TTL still exists after %v", 5*EmbeddedExpiry)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := s.Redis.Get(ctx, "kept").Val(); v != "forever" {
		t.Errorf("a key without TTL = %q, want it kept", v)
	}
}

func TestCloseTwice(t *testing.T) {
	s := embeddedForTest(t)
	s.Close()
	s.Close() // a second Close (and the cleanup's third) must not panic
}

// embeddedForTest opens an embedded store that the test closes.
func embeddedForTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenBadURLDoesNotLeakPassword(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		_, err := Open(context.Background(), "http://user:hunter2@example", cluster)
		if err == nil {
			t.Fatalf("cluster=%t: expected an error for a non-redis URL", cluster)
		}
		if got := err.Error(); strings.Contains(got, "hunter2") {
			t.Errorf("cluster=%t: error leaks the password: %q", cluster, got)
		}
	}
}

// A cluster URL with addr= opens a cluster client that finds all masters.
func TestOpenCluster(t *testing.T) {
	c := redistest.Cluster(t)
	s, err := Open(context.Background(), c.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Cluster() {
		t.Error("Cluster() = false for a cluster URL")
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping of a healthy cluster: %v", err)
	}
	var seen atomic.Int64
	err = s.Redis.(*redis.ClusterClient).ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		seen.Add(1)
		return m.Ping(ctx).Err()
	})
	if err != nil || seen.Load() != redistest.Masters {
		t.Errorf("the client knows %d masters (%v), want %d", seen.Load(), err, redistest.Masters)
	}
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func TestPingUnreachable(t *testing.T) {
	s, err := Open(context.Background(), "redis://127.0.0.1:1/0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ping of a closed port = %v, want ErrUnavailable", err)
	}
}

func TestKeysShareRepoHashTag(t *testing.T) {
	a, b := RepoKey("Octo/App", "state"), RepoKey("octo/app", "audit")
	tag := func(k string) string { return k[strings.IndexByte(k, '{') : strings.IndexByte(k, '}')+1] }
	if tag(a) != "{octo/app}" || tag(a) != tag(b) {
		t.Errorf("keys %q and %q should share the tag {octo/app}", a, b)
	}
}
