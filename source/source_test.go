package source_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/internal/awaittest"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/source"
)

const permissionOp = "repos/get-collaborator-permission-level"

func newSource(t *testing.T, ttl time.Duration, size int) (*githubtest.Server, *githubtest.Repo, *source.GitHub, report.Repo) {
	t.Helper()
	gh := githubtest.New(t)
	r := gh.AddRepo("octo/app", "main")
	src := source.New(gh.ClientCreator(), config.NewLoader(0), ttl, size)
	return gh, r, src, report.Repo{InstallationID: githubtest.DefaultInstallationID, Owner: "octo", Name: "app"}
}

func permission(t *testing.T, src *source.GitHub, repo report.Repo, user string) config.Level {
	t.Helper()
	level, err := src.Permission(t.Context(), repo, user)
	if err != nil {
		t.Fatalf("Permission(%s): %v", user, err)
	}
	return level
}

// TestRevokedPermissionTakesEffectAfterTheTTL: a person whose access is
// removed on GitHub keeps it for at most the cache's TTL, and no less.
func TestRevokedPermissionTakesEffectAfterTheTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	gh, r, src, repo := newSource(t, ttl, 100)
	r.SetPermission("mona", "admin", "admin")
	cachedSince := time.Now()
	if got := permission(t, src, repo, "mona"); got != config.LevelAdmin {
		t.Fatalf("permission = %q, want admin", got)
	}

	r.SetPermission("mona", "none", "none")
	got := permission(t, src, repo, "mona")
	if time.Since(cachedSince) < ttl && (got != config.LevelAdmin || gh.Count(permissionOp) != 1) {
		t.Errorf("within the TTL: permission = %q after %d requests; want the cached admin, 1 request", got, gh.Count(permissionOp))
	}

	if !awaittest.Poll(20*ttl, func() bool { return permission(t, src, repo, "mona") == "" }) {
		t.Fatalf("the revoked permission still counts %v after it was cached (TTL %v)", time.Since(cachedSince), ttl)
	}
	if since := time.Since(cachedSince); since < ttl {
		t.Errorf("the revocation took effect after %v, before the TTL of %v", since, ttl)
	}
}

// TestPermissionCacheIsBounded: the cache holds at most its size; the
// least recently asked person is asked of GitHub again.
func TestPermissionCacheIsBounded(t *testing.T) {
	gh, _, src, repo := newSource(t, time.Hour, 2)
	for _, user := range []string{"ann", "bob", "cat", "cat", "bob"} {
		permission(t, src, repo, user)
	}
	if n := gh.Count(permissionOp); n != 3 {
		t.Fatalf("%d requests for three people asked about twice, want 3", n)
	}
	permission(t, src, repo, "ann") // evicted when cat came
	if n := gh.Count(permissionOp); n != 4 {
		t.Errorf("%d requests after asking again for the evicted person, want 4", n)
	}
}

func TestPermissionWithoutCache(t *testing.T) {
	gh, r, src, repo := newSource(t, 0, 100)
	r.SetPermission("mona", "write", "maintain")
	for range 2 {
		if got := permission(t, src, repo, "mona"); got != config.LevelMaintain {
			t.Errorf("permission = %q, want maintain", got)
		}
	}
	if n := gh.Count(permissionOp); n != 2 {
		t.Errorf("%d requests for two questions without a cache, want 2", n)
	}
}

// TestNewLeavesNoGoroutine makes many readers, as tests and benchmarks
// that build servers do: none leaves a goroutine behind (golang-lru's
// expirable LRU did, one per reader, for the life of the process).
func TestNewLeavesNoGoroutine(t *testing.T) {
	gh, r, _, repo := newSource(t, time.Hour, 10)
	r.SetPermission("mona", "write", "write")
	before := runtime.NumGoroutine()
	for range 100 {
		src := source.New(gh.ClientCreator(), config.NewLoader(0), time.Hour, 10)
		permission(t, src, repo, "mona")
	}
	// Goroutines of the HTTP clients end in their own time: await them.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after making 100 readers, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
