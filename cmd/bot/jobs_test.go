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

// TestJobsListsAndReplaysDeadJobs: `bot jobs` shows a job Railyard gave up
// on, `bot jobs replay` queues it again, and afterwards the list is empty.
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
	intake, _ := server.Queues(rdb, queue.Options{MaxDeliveries: 1})
	if err := intake.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	id, err := intake.Enqueue(t.Context(), queue.Job{Kind: "push", Repo: "octo/app"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := intake.Claim(t.Context(), "bot-1", 0)
	if err != nil || l == nil {
		t.Fatalf("Claim = %v, %v", l, err)
	}
	l.Release(t.Context())
	if l, err := intake.Claim(t.Context(), "bot-1", 0); l != nil || err != nil { // buries it
		t.Fatalf("Claim after release = %v, %v; want the job dead-lettered", l, err)
	}

	exec := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := exec("jobs")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "octo/app") || !strings.Contains(out, "1 dead-lettered job") {
		t.Fatalf("bot jobs = %d:\n%s\nwant job %s of octo/app listed", code, out, id)
	}
	if code, out := exec("jobs", "replay", id); code != 0 || !strings.Contains(out, "queued push job "+id) {
		t.Fatalf("bot jobs replay = %d:\n%s", code, out)
	}
	if d, _ := intake.Depth(t.Context()); d != (queue.Depth{Ready: 1}) {
		t.Errorf("after replay the intake queue holds %+v, want one ready job", d)
	}
	if code, out := exec("jobs"); code != 0 || !strings.Contains(out, "0 dead-lettered job") {
		t.Errorf("bot jobs after replay = %d:\n%s", code, out)
	}
	if code, out := exec("jobs", "replay", id); code != 1 || !strings.Contains(out, "no dead-lettered job") {
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
