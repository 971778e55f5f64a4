package server_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/proxytest"
	"github.com/railyard/railyard/store"
)

// fencingPipeline's compile step writes when it starts and ends, with the
// time and its process id. Its first run sleeps far longer than the test
// and, like a deploy tool wrapping up, takes 5 s to stop after SIGTERM
// (within the 10 s grace); a later run works for 8 s.
const fencingPipeline = `
stages:
  - name: build
    steps:
` + "%s" + `      - name: compile
        run: |
          echo "start $(date +%%s.%%N) $$" >> $DIR/runs
          trap 'sleep 5; echo "end $(date +%%s.%%N) $$ stopped" >> $DIR/runs; exit 143' TERM
          if mkdir $DIR/first-run 2>/dev/null; then
            sleep 600 & wait $!
          else
            sleep 8
          fi
          echo "end $(date +%%s.%%N) $$" >> $DIR/runs
  - name: staging
    steps:
` + "%s"

// TestCutOffProcessNeverRunsAStageBesideItsSuccessor runs two real bot
// processes. Bot A runs the build stage's long step and is then cut off
// from Redis (a proxy between them stops carrying anything); bot B takes
// the job over once A's queue lease runs out. A must stop its step before
// B's run of the stage starts, and what A would still write must not
// change the stage: the two runs never overlap, and the stage ends as B's
// run left it.
//
//	RAILYARD_TEST_REDIS_URL=redis://127.0.0.1:6379/9 go test -count=1 -v -run TestCutOffProcess ./server
func TestCutOffProcessNeverRunsAStageBesideItsSuccessor(t *testing.T) {
	redisURL := takeoverRedis(t)
	bin := buildBot(t)
	direct, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := proxytest.New(t, direct.Host)
	viaProxy := *direct
	viaProxy.Host = proxy.Addr()

	// Both bots run with the defaults: A gives up its 30 s stage lock 18 s
	// after its last renewal; B claims the job once A's 30 s queue lease
	// runs out and waits for the lock.
	h := childHarness(t, fencingPipeline, viaProxy.String())
	h.patience = 2 * time.Minute
	rdb := redisClient(t, redisURL)

	a := startBot(t, bin, h)
	sha := h.commit()
	a.push(sha)
	h.await("A's compile step to run and GitHub to show the job running", func() bool {
		ds := h.deployments("build")
		return len(readRuns(t, h)) == 1 && len(ds) == 1 && lastState(ds[0]) == "in_progress" && outboxIdle(rdb)
	})

	proxy.Cut()
	cut := time.Now()
	h.env.RedisURL = redisURL
	b := startBot(t, bin, h)

	h.await("B's run of compile to start", func() bool { return len(readRuns(t, h)) == 2 })
	t.Logf("B's run started %v after A was cut off", time.Since(cut).Round(time.Millisecond))
	// A may now reach Redis again: whatever it still tries to write meets
	// the fence.
	proxy.Restore()

	h.await("staging to succeed", func() bool {
		s := storedStage(t, rdb, "staging")
		return s != nil && s.State == engine.Succeeded && s.Job != nil && s.Job.SHA == sha
	})

	h.await("both runs of compile to end", func() bool {
		runs := readRuns(t, h)
		return len(runs) == 2 && !runs[0].end.IsZero() && !runs[1].end.IsZero()
	})
	runs := readRuns(t, h)
	first, second := runs[0], runs[1]
	if !first.stopped {
		t.Errorf("A's run ended by itself, not by SIGTERM")
	}
	ended := first.end
	if second.end.Before(ended) {
		ended = second.end
	}
	overlap := max(0, ended.Sub(second.start))
	t.Logf("A's run stopped %v after the cut; B's ran from %v to %v after the cut; runs at once for %v",
		first.end.Sub(cut).Round(time.Millisecond), second.start.Sub(cut).Round(time.Millisecond),
		second.end.Sub(cut).Round(time.Millisecond), overlap.Round(time.Millisecond))
	if overlap > 0 {
		t.Errorf("two runs of build at once for %v", overlap.Round(time.Millisecond))
	}

	// The stage is as B's run left it: one check run and one deployment,
	// ending in success with B's steps.
	if s := storedStage(t, rdb, "build"); s.State != engine.Succeeded || s.Current != sha {
		t.Errorf("build ends %s at %.7s, want succeeded at %.7s", s.State, s.Current, sha)
	}
	cr := h.awaitCheckRun("railyard/build", sha, "success")
	if !strings.Contains(cr.Summary, "| compile | success |") {
		t.Errorf("build check run summary lacks B's compile step:\n%s", cr.Summary)
	}
	if n := countCheckRuns(h, "railyard/build", sha); n != 1 {
		t.Errorf("%d railyard/build check runs, want 1", n)
	}
	h.await("build deployment to succeed", func() bool {
		ds := h.deployments("build")
		return len(ds) == 1 && ds[0].Statuses[len(ds[0].Statuses)-1].State == "success"
	})
	for _, st := range h.deployments("build")[0].Statuses {
		if st.State == "failure" || st.State == "error" {
			t.Errorf("build deployment got a %s status from the run that was cut off", st.State)
		}
	}
	if !strings.Contains(a.logs.String(), "Stage lock lost") {
		t.Errorf("A's log does not say it lost the stage lock:\n%s", a.logs)
	}
	_ = b
}

// run is one run of the compile step, from its marks.
type run struct {
	pid        int
	start, end time.Time
	stopped    bool // ended by SIGTERM
}

// readRuns returns the compile step's runs in the order they started.
func readRuns(t *testing.T, h *harness) []run {
	data, err := os.ReadFile(filepath.Join(h.dir, "runs"))
	if err != nil {
		return nil
	}
	var runs []run
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		secs, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatalf("bad mark %q", line)
		}
		at := time.Unix(0, int64(secs*1e9))
		pid, _ := strconv.Atoi(f[2])
		switch f[0] {
		case "start":
			runs = append(runs, run{pid: pid, start: at})
		case "end":
			i := slices.IndexFunc(runs, func(r run) bool { return r.pid == pid && r.end.IsZero() })
			if i < 0 {
				t.Fatalf("end without a start: %q", line)
			}
			runs[i].end, runs[i].stopped = at, len(f) > 3 && f[3] == "stopped"
		}
	}
	return runs
}

// storedStage reads a stage's state straight from Redis: no Railyard runs
// inside the test.
func storedStage(t *testing.T, rdb *redis.Client, name string) *engine.StageState {
	raw, err := rdb.Get(context.Background(), store.RepoKey(repoName, "pipeline")).Bytes()
	if err != nil {
		return nil
	}
	var p engine.Pipeline
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p.Stage(name)
}
