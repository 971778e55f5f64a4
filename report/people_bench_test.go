package report

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkCommandReaction measures how long a person waits for the 👀 on
// a command: from the reaction being queued to the fake GitHub receiving
// it, with an idle outbox and behind a backlog of check runs queued for
// 100 repositories of the person's installation (50 each, the command's
// repository among them). Each iteration is one command; the backlog is
// queued once and drains, at Railyard's pace, while they are measured.
// p50 and p99 are reported, in ms.
func BenchmarkCommandReaction(b *testing.B) {
	for _, backlog := range []int{0, 5000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			const repos = 100
			gh := githubtest.New(b)
			rdb := benchRedis(b)
			id := strings.ToLower(rand.Text()[:8])
			ns := "outbox-bench-" + id
			var fakes []*githubtest.Repo
			var repoList []Repo
			for i := range repos {
				name := fmt.Sprintf("app-%s-%d", id, i)
				fakes = append(fakes, gh.AddRepo("octo/"+name, "main"))
				repoList = append(repoList, Repo{InstallationID: githubtest.DefaultInstallationID, Owner: "octo", Name: name})
			}
			sha := fakes[0].Commit("main", map[string]githubtest.File{"README.md": {Content: "hello"}})
			for _, f := range fakes[1:] {
				f.Commit("main", map[string]githubtest.File{"README.md": {Content: "hello"}})
			}
			r := New(rdb, gh.ClientCreator(), Options{Poll: 10 * time.Millisecond})
			r.keys = newGlobalKeys(ns)
			ctx := b.Context()
			for i := range backlog {
				repo := repoList[i%repos]
				must(b, r.CheckRun(ctx, repo, fmt.Sprintf("job-%d", i), CheckRun{Name: fmt.Sprintf("stage %d", i), HeadSHA: sha, Status: "queued"}))
			}
			runCtx, stop := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- r.Run(runCtx) }()
			defer func() { stop(); <-done }()

			var waits []time.Duration
			b.ResetTimer()
			for i := range b.N {
				comment := int64(1_000_000 + i)
				start := time.Now()
				must(b, r.Reaction(ctx, repoList[0], comment, "eyes"))
				deadline := start.Add(3 * time.Minute)
				for len(fakes[0].Reactions(comment)) == 0 {
					if time.Now().After(deadline) {
						b.Fatalf("no 👀 within 3 minutes behind a backlog of %d", backlog)
					}
					time.Sleep(200 * time.Microsecond)
				}
				waits = append(waits, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(waits)
			q := func(p float64) float64 {
				return float64(waits[int(p*float64(len(waits)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
			b.Cleanup(func() { cleanKeys(rdb, ns, repoList) })
		})
	}
}

// benchRedis is real Redis when RAILYARD_TEST_REDIS_URL is set, else
// miniredis.
func benchRedis(b *testing.B) redis.UniversalClient {
	url := os.Getenv("RAILYARD_TEST_REDIS_URL")
	if url == "" {
		rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(b).Addr()})
		b.Cleanup(func() { rdb.Close() })
		return rdb
	}
	opts, err := redis.ParseURL(url)
	must(b, err)
	rdb := redis.NewClient(opts)
	b.Cleanup(func() { rdb.Close() })
	return rdb
}

func cleanKeys(rdb redis.UniversalClient, ns string, repos []Repo) {
	ctx := context.Background()
	patterns := []string{"railyard:{railyard}:" + ns + ":*"}
	for _, r := range repos {
		patterns = append(patterns, "railyard:{"+strings.ToLower(r.FullName())+"}:*")
	}
	for _, p := range patterns {
		if keys, err := rdb.Keys(ctx, p).Result(); err == nil && len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	}
}
