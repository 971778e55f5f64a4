package report

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/githubtest"
)

// testRepo is a repository of the test's installation, on the fake and
// as Railyard names it, with a commit.
type testRepo struct {
	Repo
	fake *githubtest.Repo
	sha  string
}

// repos returns the test's repository and n more of its installation.
func (e *env) repos(n int) []testRepo {
	repos := []testRepo{{e.repo, e.fake, e.sha}}
	for i := range n {
		name := fmt.Sprintf("%s-%d", e.repo.Name, i)
		f := e.gh.AddRepo(e.repo.Owner+"/"+name, "main")
		sha := f.Commit("main", map[string]githubtest.File{"README.md": {Content: "hello"}})
		repos = append(repos, testRepo{Repo{InstallationID: e.repo.InstallationID, Owner: e.repo.Owner, Name: name}, f, sha})
	}
	return repos
}

// TestPeopleFirst: a person's 👀 is sent while thousands of status writes
// of the installation are queued, including some in the command's own
// repository ahead of it. The clock stands still, so status can spend
// only one minute's points budget (180 writes): the reaction cannot have
// waited for the backlog.
func TestPeopleFirst(t *testing.T) {
	const backlog = 3000
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		repos := e.repos(29)
		for i := range backlog {
			repo := repos[i%len(repos)]
			must(t, r.CheckRun(ctx, repo.Repo, fmt.Sprint("job-", i), CheckRun{Name: fmt.Sprint("railyard/stage-", i), HeadSHA: repo.sha, Status: "queued"}))
		}
		run(t, r)
		await(t, "status traffic", func() bool { return e.gh.Count("checks/create") > 0 })
		must(t, r.Reaction(ctx, e.repo, 42, "eyes"))
		await(t, "the 👀", func() bool { return len(e.fake.Reactions(42)) == 1 })

		if n := e.gh.Count("checks/create"); n > 180 {
			t.Errorf("%d check runs created before the 👀, want at most a minute's budget, 180", n)
		}
		pending, err := r.Pending(ctx)
		must(t, err)
		if pending < backlog-180 {
			t.Errorf("%d writes still queued after the 👀, want at least %d", pending, backlog-180)
		}
	})
}

// TestPeopleFirstWhileGitHubHoldsStatus: GitHub asking the installation's
// check runs to wait does not hold its replies.
func TestPeopleFirstWhileGitHubHoldsStatus(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		e.gh.FailNext("POST", "/repos/", 1, http.StatusForbidden, http.Header{"Retry-After": {"60"}})
		for i := range 20 {
			must(t, r.CheckRun(ctx, e.repo, fmt.Sprint("job-", i), CheckRun{Name: fmt.Sprint("railyard/stage-", i), HeadSHA: e.sha}))
		}
		run(t, r)
		await(t, "GitHub's answer", func() bool { return r.Stats().Limited == 1 })
		must(t, r.Comment(ctx, e.repo, 1, "✅ `/promote prod`"))
		await(t, "the reply", func() bool { return len(e.comments()) == 1 })
		if n := len(e.requests("POST", "/check-runs")); n != 1 {
			t.Errorf("%d check runs tried while GitHub asked to wait, want the 1 it refused", n)
		}
	})
}

func TestBacklogByClass(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		first := e.clock.Now()
		must(t, r.Comment(ctx, e.repo, 1, "one"))
		e.clock.Advance(time.Second)
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Name: "railyard/build", HeadSHA: e.sha}))
		must(t, r.Reaction(ctx, e.repo, 7, "eyes"))
		got, err := r.Backlog(ctx)
		must(t, err)
		want := []Backlog{
			{Class: "conversation", Pending: 2, Oldest: first.Truncate(time.Millisecond)},
			{Class: "status", Pending: 1, Oldest: first.Add(time.Second).Truncate(time.Millisecond)},
		}
		if !slices.EqualFunc(got, want, func(a, b Backlog) bool {
			return a.Class == b.Class && a.Pending == b.Pending && a.Oldest.Equal(b.Oldest)
		}) {
			t.Errorf("backlog = %+v, want %+v", got, want)
		}
		run(t, r)
		awaitEmpty(t, r)
		got, err = r.Backlog(ctx)
		must(t, err)
		for _, b := range got {
			if b.Pending != 0 || !b.Oldest.IsZero() {
				t.Errorf("backlog once sent = %+v, want nothing", b)
			}
		}
	})
}

// TestReplyWaitsLittleForTheCheckRunItLinks: a reply linking a check run
// whose creation GitHub holds waits 15 s for it, then names it rather
// than wait out the hold.
func TestReplyWaitsLittleForTheCheckRunItLinks(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		r := e.reporter(Options{})
		ctx := t.Context()
		e.gh.FailNext("POST", "/repos/"+e.repo.FullName()+"/check-runs", 1, http.StatusForbidden, http.Header{"Retry-After": {"600"}})
		must(t, r.CheckRun(ctx, e.repo, "job", CheckRun{Name: "railyard/build", HeadSHA: e.sha}))
		run(t, r)
		await(t, "GitHub's answer", func() bool { return r.Stats().Limited == 1 })
		start := e.clock.Now()
		must(t, r.Comment(ctx, e.repo, 1, "✅ `/retry build` ([check run]({{checkrun:job}}))"))
		await(t, "the reply", func() bool { e.clock.Advance(100 * time.Millisecond); return len(e.comments()) == 1 })

		if got, want := e.comments()[0], "✅ `/retry build` ([check run](railyard/build))"; got != want {
			t.Errorf("reply = %q, want %q", got, want)
		}
		if waited := e.clock.Now().Sub(start); waited < 15*time.Second || waited > time.Minute {
			t.Errorf("reply waited %v, want 15 s or a little more", waited)
		}
	})
}
