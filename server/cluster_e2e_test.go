package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/redistest"
	"github.com/railyard/railyard/internal/webhooktest"
	"github.com/railyard/railyard/server"
	"github.com/railyard/railyard/store"
)

// TestPushesDeployOnRedisCluster: a bot on a real three-master Redis
// Cluster takes pushes to two repositories whose keys live on two masters,
// the queues on the third, and deploys each through build, staging and
// prod; readiness and the queue metrics answer.
func TestPushesDeployOnRedisCluster(t *testing.T) {
	c := redistest.Cluster(t)
	rdb := c.Emptied(t)
	h := newHarness(t, pipeline3(), func(e *config.Env, _ *server.Options) { e.RedisURL, e.RedisCluster = c.URL(), true })
	const otherName = "Codertocat/Api"
	other := h.gh.AddRepo(otherName, defaultBranch)
	other.SetPermission(user, "admin", "admin")
	masters := map[string]bool{}
	for _, key := range []string{store.RepoKey(repoName, "pipeline"), store.RepoKey(otherName, "pipeline"), store.GlobalKey("stage", "jobs")} {
		masters[c.MasterOf(t, rdb, key)] = true
	}
	if len(masters) != redistest.Masters {
		t.Fatalf("the two repositories and the queues use %d masters, want %d", len(masters), redistest.Masters)
	}

	sha := h.commitAndPush()
	files := map[string]githubtest.File{"README": {Content: "the other repository"}}
	for k, v := range h.files {
		files[k] = v
	}
	otherSHA := other.Commit(defaultBranch, files)
	push := webhooktest.Payload(t, "push/with-new-branch.payload.json",
		webhooktest.Set("after", otherSHA), webhooktest.Set("created", false), webhooktest.SetRepo(otherName))
	if code := h.deliver("push", push); code != http.StatusAccepted {
		t.Fatalf("push to %s answered %d, want 202", otherName, code)
	}

	h.awaitStage("prod", engine.Succeeded, sha)
	h.await(otherName+" prod at "+short(otherSHA), func() bool {
		p, err := h.srv.Engine().Pipeline(t.Context(), otherName)
		s := p.Stage("prod")
		return err == nil && s != nil && s.State == engine.Succeeded && s.Current == otherSHA
	})
	for _, stage := range []string{"build", "staging", "prod"} {
		h.awaitCheckRun("railyard/"+stage, sha, "success")
		h.await(otherName+" check run railyard/"+stage, func() bool {
			for _, cr := range other.CheckRuns() {
				if cr.Name == "railyard/"+stage && cr.HeadSHA == otherSHA && cr.Conclusion == "success" {
					return true
				}
			}
			return false
		})
	}
	for _, s7 := range []string{short(sha), short(otherSHA)} {
		for _, mark := range []string{"build:compile:", "staging:deploy:", "prod:deploy:"} {
			if n := countMarks(h, mark+s7+":deploy"); n != 1 {
				t.Errorf("%s%s ran %d times, want once", mark, s7, n)
			}
		}
	}

	for path, want := range map[string]*regexp.Regexp{
		"/readyz":  regexp.MustCompile(`^ready\n$`),
		"/metrics": regexp.MustCompile(`(?m)^railyard_queue_ready\{queue="stage"\} 0$`),
	} {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != http.StatusOK || !want.Match(body) {
			t.Errorf("GET %s = %d, want 200 matching %s; body:\n%.2000s", path, rec.Code, want, body)
		}
	}
}
