package report

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/githubtest"
)

// BenchmarkWritesPerStageJobUnderBacklog counts the writes GitHub receives
// per stage job when they queue up before they can be sent: 20
// repositories of one installation, 10 stage jobs each, every job's writes
// queued as the engine queues them (check run queued, deployment, queued
// status; check run in progress, in_progress status; check run completed,
// success) and the jobs interleaved, phase by phase, as concurrent jobs
// are. Then the senders run until every outbox is empty. Each outbox
// holds 70 writes, more than a sender looks ahead. One iteration is one
// such backlog; run it with -benchtime=1x.
func BenchmarkWritesPerStageJobUnderBacklog(b *testing.B) {
	const repos, jobsPerRepo = 20, 10
	for range b.N {
		b.StopTimer()
		gh := githubtest.New(b)
		rdb := benchRedis(b)
		id := strings.ToLower(rand.Text()[:8])
		ns := "outbox-bench-" + id
		var list []Repo
		var fakes []*githubtest.Repo
		var shas []string
		for i := range repos {
			name := fmt.Sprintf("app-%s-%d", id, i)
			f := gh.AddRepo("octo/"+name, "main")
			fakes = append(fakes, f)
			shas = append(shas, f.Commit("main", map[string]githubtest.File{"README.md": {Content: "hello"}}))
			list = append(list, Repo{InstallationID: githubtest.DefaultInstallationID, Owner: "octo", Name: name})
		}
		// GitHub's budgets would only make this slower; every write is
		// still sent and counted.
		r := New(rdb, gh.ClientCreator(), Options{Poll: 10 * time.Millisecond, PointsPerMinute: -1, PerMinute: -1, PerHour: -1})
		r.keys = newGlobalKeys(ns)
		ctx := b.Context()
		each := func(fn func(repo Repo, sha, key, env string)) {
			for j := range jobsPerRepo {
				for i, repo := range list {
					fn(repo, shas[i], fmt.Sprint("job-", j), fmt.Sprint("stage-", j))
				}
			}
		}
		status := func(repo Repo, key, env, state string) {
			must(b, r.DeploymentStatus(ctx, repo, key, DeploymentStatus{State: state, LogURLCheckRun: key, Environment: env}))
		}
		each(func(repo Repo, sha, key, env string) {
			must(b, r.CheckRun(ctx, repo, key, CheckRun{Name: "railyard/" + env, HeadSHA: sha, Status: "queued", Title: "Queued"}))
			must(b, r.Deployment(ctx, repo, key, Deployment{Ref: sha, Environment: env}))
			status(repo, key, env, "queued")
		})
		each(func(repo Repo, sha, key, env string) {
			must(b, r.CheckRun(ctx, repo, key, CheckRun{Name: "railyard/" + env, HeadSHA: sha, Status: "in_progress", Title: "Deploying"}))
			status(repo, key, env, "in_progress")
		})
		each(func(repo Repo, sha, key, env string) {
			must(b, r.CheckRun(ctx, repo, key, CheckRun{Name: "railyard/" + env, HeadSHA: sha, Status: "completed", Conclusion: "success", Title: "Deployed"}))
			status(repo, key, env, "success")
		})

		b.StartTimer()
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(runCtx) }()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			n, err := r.Pending(ctx)
			must(b, err)
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d writes still queued after 3 minutes", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		stop()
		<-done

		byOp := map[string]int{}
		writes := 0
		for _, q := range gh.Requests() {
			if q.Method != "GET" && q.OperationID != "apps/create-installation-access-token" {
				byOp[q.OperationID]++
				writes++
			}
		}
		jobs := float64(repos * jobsPerRepo)
		var per []string
		for _, op := range slices.Sorted(maps.Keys(byOp)) {
			per = append(per, fmt.Sprintf("%s %.2f", op, float64(byOp[op])/jobs))
		}
		b.Logf("writes per stage job: %s", strings.Join(per, ", "))
		b.ReportMetric(float64(writes)/jobs, "gh-writes/stage-job")
		for _, f := range fakes {
			for _, d := range f.Deployments() {
				if n := len(d.Statuses); n == 0 || d.Statuses[n-1].State != "success" {
					b.Fatalf("%s: statuses %+v, want success last", d.Environment, d.Statuses)
				}
			}
		}
		cleanKeys(rdb, ns, list)
	}
}
