package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/internal/redistest"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/server"
)

// TestJobsListsAndReplaysDeadJobs: `bot jobs` shows the jobs Railyard gave
// up on in every queue, `bot jobs replay` queues one again, and afterwards
// the list no longer holds it.
func TestJobsListsAndReplaysDeadJobs(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		t.Setenv("RAILYARD_REDIS_URL", "redis://"+m.Addr())
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { rdb.Close() })
		testJobs(t, rdb)
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.Cluster(t)
		t.Setenv("RAILYARD_REDIS_URL", c.URL())
		t.Setenv("RAILYARD_REDIS_CLUSTER", "on")
		testJobs(t, c.Emptied(t))
	})
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func testJobs(t *testing.T, rdb redis.UniversalClient) {
	t.Chdir(t.TempDir()) // no .env
	queues := server.NewQueues(rdb, queue.Options{MaxDeliveries: 1})
	bury := func(q *queue.Queue, j queue.Job) string {
		t.Helper()
		if err := q.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		id, err := q.Enqueue(t.Context(), j)
		if err != nil {
			t.Fatal(err)
		}
		l, err := q.Claim(t.Context(), "bot-1", 0)
		if err != nil || l == nil {
			t.Fatalf("Claim = %v, %v", l, err)
		}
		l.Release(t.Context())
		if l, err := q.Claim(t.Context(), "bot-1", 0); l != nil || err != nil { // buries it
			t.Fatalf("Claim after release = %v, %v; want the job dead-lettered", l, err)
		}
		return id
	}
	push := bury(queues.Intake, queue.Job{Kind: "push", Repo: "octo/app"})
	comment := bury(queues.People, queue.Job{Kind: "comment", Repo: "octo/web"})

	exec := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := exec("jobs")
	listed := func(out, queueName, id, repo string) bool {
		for line := range strings.Lines(out) {
			if f := strings.Fields(line); len(f) > 3 && f[0] == queueName && f[1] == id && f[3] == repo {
				return true
			}
		}
		return false
	}
	if code != 0 || !listed(out, "intake", push, "octo/app") || !listed(out, "people", comment, "octo/web") || !strings.Contains(out, "2 dead-lettered job") {
		t.Fatalf("bot jobs = %d:\n%s\nwant push %s of octo/app (intake) and comment %s of octo/web (people) listed", code, out, push, comment)
	}
	if code, out := exec("jobs", "replay", comment); code != 0 || !strings.Contains(out, "queued comment job "+comment) {
		t.Fatalf("bot jobs replay = %d:\n%s", code, out)
	}
	if d, _ := queues.People.Depth(t.Context()); d != (queue.Depth{Ready: 1}) {
		t.Errorf("after replay the people queue holds %+v, want one ready job", d)
	}
	if code, out := exec("jobs", "replay", push); code != 0 || !strings.Contains(out, "queued push job "+push) {
		t.Fatalf("bot jobs replay = %d:\n%s", code, out)
	}
	if d, _ := queues.Intake.Depth(t.Context()); d != (queue.Depth{Ready: 1}) {
		t.Errorf("after replay the intake queue holds %+v, want one ready job", d)
	}
	if code, out := exec("jobs"); code != 0 || !strings.Contains(out, "0 dead-lettered job") {
		t.Errorf("bot jobs after replay = %d:\n%s", code, out)
	}
	if code, out := exec("jobs", "replay", push); code != 1 || !strings.Contains(out, "no dead-lettered job") {
		t.Errorf("second replay = %d:\n%s", code, out)
	}
	if code, _ := exec("jobs", "frobnicate"); code != 2 {
		t.Errorf("bot jobs frobnicate exited %d, want 2", code)
	}
}

func TestJobsNeedsRedis(t *testing.T) {
	t.Setenv("RAILYARD_REDIS_URL", "")
	t.Chdir(t.TempDir())
	var out, errOut bytes.Buffer
	if code := run([]string{"jobs"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "RAILYARD_REDIS_URL is not set") {
		t.Errorf("bot jobs without Redis = %d, %q", code, errOut.String())
	}
}
