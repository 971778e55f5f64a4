package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/server"
)

func hostileTarball(t *testing.T, sha string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	top := "Codertocat-Hello-World-" + sha[:7] + "/"
	for _, e := range []tar.Header{
		{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": sha}},
		{Name: top, Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: top + "../../escaped", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
	} {
		if err := tw.WriteHeader(&e); err != nil {
			t.Fatal(err)
		}
		if e.Size > 0 {
			tw.Write([]byte("pwn"))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestHostileArchiveFailsTheStage(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	work := filepath.Join(root, "a", "work")
	h := newHarness(t, fmt.Sprintf("stages:\n  - name: build\n    steps:\n%s", markStep("compile")),
		func(e *config.Env, _ *server.Options) { e.WorkDir = work })
	sha := h.commit()
	h.repo.SetTarball(sha, hostileTarball(t, sha))
	h.push(sha)
	cr := h.awaitCheckRun("railyard/build", sha, "failure")
	if !strings.Contains(cr.Summary, "unsafe archive") {
		t.Errorf("check run does not say the archive is unsafe:\n%s", cr.Summary)
	}
	if len(h.marks()) != 0 {
		t.Errorf("steps ran from a hostile archive: %v", h.marks())
	}
	filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasPrefix(path, work+string(filepath.Separator)) {
			t.Errorf("file written outside the work directory: %s", path)
		}
		return nil
	})
}

// TestRefusalsChangeNothing sends commands the state does not allow and
// checks each is refused with a reason and leaves state and audit alone.
func TestRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline3())
	a := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, a)
	unbuilt := h.commit()

	snapshot := func() string {
		p := h.pipeline()
		audit, _ := h.srv.Engine().Audit(context.Background(), repoName, 100)
		data, _ := json.Marshal(struct {
			P *engine.Pipeline
			N int
		}{p, len(audit)})
		return string(data)
	}
	cases := []struct{ cmd, want string }{
		{"/retry stage=prod", "cannot retry prod: it is succeeded, not failed or cancelled"},
		{"/cancel stage=build", "cannot cancel build: it is succeeded, not running"},
		{"/unblock stage=staging", "cannot unblock staging: it is not blocked"},
		{"/resume", "cannot resume: the pipeline is not stopped"},
		{"/release", "cannot release: the pipeline is not in patch mode"},
		{"/rollback stage=prod to=" + unbuilt + " reason=x", "never passed build"},
		{"/rollforward stage=staging to=" + unbuilt + " reason=x", "never passed build"},
		{"/promote stage=prod to=" + unbuilt, "has not succeeded in staging"},
		{"/promote stage=build", "it is the first stage"},
		{"/retry stage=nope", `there is no stage "nope"`},
		{"/rollback stage=prod to=deadbeef0 reason=x", "names no single commit"},
		{"/rollback stage=prod to=" + a, "needs reason="},
		{"/frobnicate stage=prod", "unknown command"},
		{"/retry stage=prod color=red", "color"},
		{"/rollback stage=prod to=$(rm -rf /) reason=x", "to="},
		{"/rollback stage=../x to=" + a + " reason=x", "stage="},
		{"/restart stage=build", "build has no restart steps"},
	}
	for _, c := range cases {
		before := snapshot()
		reply := h.comment(c.cmd)
		if !strings.Contains(reply, "❌") || !strings.Contains(reply, c.want) {
			t.Errorf("%s: reply %q, want a refusal containing %q", c.cmd, reply, c.want)
		}
		if after := snapshot(); after != before {
			t.Errorf("%s changed the state:\nbefore %s\nafter  %s", c.cmd, before, after)
		}
	}
	if n := len(h.marks()); n != 4 {
		t.Errorf("refused commands ran steps: %v", h.marks())
	}
}

// TestTwoServersNeverRunOneStageTwice runs two Railyards on one store; a
// step that notices a second copy of itself running leaves a mark.
func TestTwoServersNeverRunOneStageTwice(t *testing.T) {
	url := os.Getenv("RAILYARD_TEST_REDIS_URL")
	prefix := fmt.Sprintf("railyard:{railyard}:test%d:", os.Getpid())
	if url == "" {
		mr := miniredis.RunT(t)
		url = "redis://" + mr.Addr()
	} else {
		cleanRepoKeys(t, url, prefix+"*")
	}
	shared := func(e *config.Env, o *server.Options) {
		e.RedisURL = url
		o.Queue.Prefix = prefix
	}
	pipeline := `
stages:
  - name: build
    steps:
      - name: exclusive
        run: mkdir $DIR/running-$RAILYARD_STAGE || echo overlap >> $DIR/log; sleep 0.1; rmdir $DIR/running-$RAILYARD_STAGE; echo "$RAILYARD_STAGE:ran" >> $DIR/log
  - name: staging
    steps:
      - name: exclusive
        run: mkdir $DIR/running-$RAILYARD_STAGE || echo overlap >> $DIR/log; sleep 0.1; rmdir $DIR/running-$RAILYARD_STAGE; echo "$RAILYARD_STAGE:ran" >> $DIR/log
`
	h := newHarness(t, pipeline, shared)
	h.another() // a second process on the same store
	var last string
	for range 4 {
		last = h.commitAndPush()
	}
	h.awaitStage("staging", engine.Succeeded, last)
	if h.hasMark("overlap") {
		t.Fatalf("two jobs of one stage ran at once: %v", h.marks())
	}
}

// cleanRepoKeys deletes the test repository's keys, and those matching
// the patterns in more, from the Redis at url before and after t.
func cleanRepoKeys(t *testing.T, url string, more ...string) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	clean := func() {
		for _, pattern := range append([]string{"railyard:{codertocat/hello-world}:*"}, more...) {
			keys, _ := rdb.Keys(context.Background(), pattern).Result()
			if len(keys) > 0 {
				rdb.Del(context.Background(), keys...)
			}
		}
	}
	clean()
	t.Cleanup(clean)
}
