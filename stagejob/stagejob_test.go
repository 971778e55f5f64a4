package stagejob_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/internal/awaittest"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/source"
	"github.com/railyard/railyard/stagejob"
	"github.com/railyard/railyard/transient"
)

// fixture is a Runner reading octo/app from the fake GitHub.
type fixture struct {
	t          *testing.T
	gh         *githubtest.Server
	repo       *githubtest.Repo
	secretsDir string
	opts       stagejob.Options
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	gh := githubtest.New(t)
	return &fixture{
		t: t, gh: gh, repo: gh.AddRepo("octo/app", "main"), secretsDir: t.TempDir(),
		opts: stagejob.Options{Grace: time.Second},
	}
}

// commit commits pipeline as the pipeline file, beside a README and a
// workflow, and returns the commit.
func (f *fixture) commit(pipeline string) string {
	return f.repo.Commit("main", map[string]githubtest.File{
		config.PipelinePath:              {Content: pipeline},
		"README":                         {Content: "hello from the revision\n"},
		".github/workflows/deploy.yml":   {Content: "on: workflow_dispatch\n"},
		".github/workflows/migrate.yml":  {Content: "on: workflow_dispatch\n"},
		".github/workflows/teardown.yml": {Content: "on: workflow_dispatch\n"},
	})
}

// job is a deploy of sha, read at sha, to stage.
func (f *fixture) job(sha, stage, op string) stagejob.Job {
	return stagejob.Job{
		Repo: report.Repo{InstallationID: githubtest.DefaultInstallationID, Owner: "octo", Name: "app"},
		ID:   "job1", Stage: stage, SHA: sha, ConfigSHA: sha, Operation: op, Actor: "alice", Reason: "because",
	}
}

func (f *fixture) run(ctx context.Context, j stagejob.Job) stagejob.Result {
	f.t.Helper()
	opts := f.opts
	opts.SecretsDir = f.secretsDir
	src := source.New(f.gh.ClientCreator(), config.NewLoader(0), 0, 0)
	return stagejob.New(src, runner.NewWorkspace(f.t.TempDir()), opts).Run(ctx, j)
}

// results is "name: result" per step, in order.
func results(r stagejob.Result) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name+": "+s.Result)
	}
	return out
}

func expectSteps(t *testing.T, r stagejob.Result, want ...string) {
	t.Helper()
	if got := results(r); !slices.Equal(got, want) {
		t.Errorf("steps\n  %q\nwant\n  %q", got, want)
	}
}

func TestStepsRunInTheRevisionWithTheJobsVariables(t *testing.T) {
	f := newFixture(t)
	sha := f.commit(`
stages:
  - name: build
    steps:
      - name: show
        run: cat README; echo "$RAILYARD_STAGE $RAILYARD_OPERATION $RAILYARD_SHA $RAILYARD_PREVIOUS_SHA $RAILYARD_CACHE $RAILYARD_ACTOR $RAILYARD_REPOSITORY $GREETING"
        env: { GREETING: hi }
`)
	j := f.job(sha, "build", "deploy")
	j.Previous = strings.Repeat("a", 40)
	r := f.run(t.Context(), j)
	if !r.OK || r.Failed != "" || r.Problem != "" || r.Waiting != "" || r.Cancelled {
		t.Fatalf("result %+v, want OK", r)
	}
	expectSteps(t, r, "show: success")
	want := fmt.Sprintf("### show (success)\n\n```\nhello from the revision\nbuild deploy %s %s use alice octo/app hi\n", sha, j.Previous)
	if !strings.Contains(r.Log, want) {
		t.Errorf("log\n%s\nwant it to contain\n%s", r.Log, want)
	}
	if r.File == nil || r.File.Stages[0].Name != "build" {
		t.Errorf("File %+v, want the pipeline file read at the job's config commit", r.File)
	}
	if r.Health != stagejob.HealthNotRun {
		t.Errorf("health %q without a verify, want not run", r.Health)
	}
}

// A secret granted to the stage reaches its run steps as a variable and
// never the log, in any of the forms a step may print it in.
func TestGrantedSecretsReachStepsButNotTheLog(t *testing.T) {
	f := newFixture(t)
	const value = "s3cr3t-t0ken-value"
	path := filepath.Join(f.secretsDir, "octo", "app", "build.env")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("TOKEN="+value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sha := f.commit(`
stages:
  - name: build
    secrets: [TOKEN]
    steps:
      - name: use
        run: test "$TOKEN" = ` + value + ` && echo "plain $TOKEN" && printf %s "$TOKEN" | base64
`)
	r := f.run(t.Context(), f.job(sha, "build", "deploy"))
	expectSteps(t, r, "use: success")
	if strings.Contains(r.Log, value) || strings.Contains(r.Log, "czNjcjN0LXQwa2VuLXZhbHVl") || !strings.Contains(r.Log, "plain ") {
		t.Errorf("log shows the secret, or not the step's output:\n%s", r.Log)
	}
}

func TestMissingSecretRunsNoStep(t *testing.T) {
	f := newFixture(t)
	sha := f.commit(`
stages:
  - name: build
    secrets: [TOKEN]
    steps:
      - name: use
        run: "true"
`)
	r := f.run(t.Context(), f.job(sha, "build", "deploy"))
	if r.OK || !strings.HasPrefix(r.Problem, "Missing ") || !strings.Contains(r.Problem, "No step ran.") || len(r.Steps) != 0 {
		t.Errorf("result %+v, want a problem naming the missing secret and no step", r)
	}
}

func TestStageGoneFromTheFileRunsNoStep(t *testing.T) {
	f := newFixture(t)
	sha := f.commit("stages:\n  - name: build\n    steps:\n      - name: a\n        run: \"true\"\n")
	r := f.run(t.Context(), f.job(sha, "staging", "deploy"))
	if r.OK || r.Problem != "Stage staging is no longer in .github/railyard.yml." || r.File == nil || len(r.Steps) != 0 {
		t.Errorf("result %+v, want the stage reported missing, with the file", r)
	}
}

// skipPipeline has an infra step, restart and shutdown steps, and a verify
// that shutdown does not run.
const skipPipeline = `
stages:
  - name: prod
    steps:
      - name: terraform
        infra: true
        run: "true"
      - name: migrate
        run: "true"
      - name: deploy
        run: "true"
    verify:
      run: "true"
    restart:
      - name: bounce
        run: "true"
    shutdown:
      - name: stop
        run: "true"
`

func TestSkipRules(t *testing.T) {
	for _, c := range []struct {
		name  string
		op    string
		skip  []string
		infra bool
		want  []string
	}{
		{"deploy runs every step", "deploy", nil, false,
			[]string{"terraform: success", "migrate: success", "deploy: success", "verify (attempt 1 of 1): success"}},
		{"skip= names a step", "deploy", []string{"migrate"}, false,
			[]string{"terraform: success", "migrate: skipped (skip=migrate)", "deploy: success", "verify (attempt 1 of 1): success"}},
		{"rollback skips infra", "rollback", nil, false,
			[]string{"terraform: skipped (infra)", "migrate: success", "deploy: success", "verify (attempt 1 of 1): success"}},
		{"roll forward skips infra", "rollforward", nil, false,
			[]string{"terraform: skipped (infra)", "migrate: success", "deploy: success", "verify (attempt 1 of 1): success"}},
		{"auto-rollback skips infra", "auto-rollback", nil, false,
			[]string{"terraform: skipped (infra)", "migrate: success", "deploy: success", "verify (attempt 1 of 1): success"}},
		{"infra=true runs infra in a rollback", "rollback", nil, true,
			[]string{"terraform: success", "migrate: success", "deploy: success", "verify (attempt 1 of 1): success"}},
		{"skip= wins over infra=true", "rollback", []string{"terraform"}, true,
			[]string{"terraform: skipped (skip=terraform)", "migrate: success", "deploy: success", "verify (attempt 1 of 1): success"}},
		{"restart runs the restart steps", "restart", nil, false,
			[]string{"bounce: success", "verify (attempt 1 of 1): success"}},
		{"shutdown runs the shutdown steps, no verify", "shutdown", nil, false,
			[]string{"stop: success"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			j := f.job(f.commit(skipPipeline), "prod", c.op)
			j.Skip, j.Infra = c.skip, c.infra
			r := f.run(t.Context(), j)
			if !r.OK {
				t.Errorf("result %+v, want OK", r)
			}
			expectSteps(t, r, c.want...)
		})
	}
}

func TestFailedStepSkipsTheRestAndVerify(t *testing.T) {
	f := newFixture(t)
	sha := f.commit(`
stages:
  - name: prod
    steps:
      - name: migrate
        run: echo broken; exit 3
      - name: deploy
        run: "true"
    verify:
      run: "true"
`)
	r := f.run(t.Context(), f.job(sha, "prod", "deploy"))
	if r.OK || r.Failed != "migrate" || r.Cancelled || r.Health != stagejob.HealthNotRun {
		t.Errorf("result %+v, want migrate failed and no health check", r)
	}
	expectSteps(t, r, "migrate: failure (exit 3)", "deploy: skipped (earlier step failed)")
	if !strings.Contains(r.Log, "### migrate (failure (exit 3))\n\n```\nbroken\n") {
		t.Errorf("log\n%s\nwant migrate's output tail", r.Log)
	}
}

func TestVerifyFailureFailsTheJob(t *testing.T) {
	f := newFixture(t)
	sha := f.commit(`
stages:
  - name: prod
    steps:
      - name: deploy
        run: "true"
    verify:
      run: echo unhealthy; exit 1
      retries: 2
      interval: 10ms
`)
	r := f.run(t.Context(), f.job(sha, "prod", "deploy"))
	if r.OK || r.Failed != stagejob.FailedVerify || r.Health != stagejob.HealthFailed {
		t.Errorf("result %+v, want verify failed", r)
	}
	expectSteps(t, r, "deploy: success",
		"verify (attempt 1 of 3): failure (exit 1)", "verify (attempt 2 of 3): failure (exit 1)", "verify (attempt 3 of 3): failure (exit 1)")
	if !strings.Contains(r.Log, "### verify (attempt 3 of 3) (failure (exit 1))\n\n```\nunhealthy\n") {
		t.Errorf("log\n%s\nwant the last attempt's output", r.Log)
	}
}

func TestVerifyPassingOnARetryPasses(t *testing.T) {
	f := newFixture(t)
	count := filepath.Join(t.TempDir(), "n")
	sha := f.commit(fmt.Sprintf(`
stages:
  - name: prod
    steps:
      - name: deploy
        run: "true"
    verify:
      run: n=$(cat %[1]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s; [ $n -ge 2 ]
      retries: 3
      interval: 10ms
`, count))
	r := f.run(t.Context(), f.job(sha, "prod", "deploy"))
	if !r.OK || r.Health != stagejob.HealthPassed {
		t.Errorf("result %+v, want OK and healthy", r)
	}
	expectSteps(t, r, "deploy: success", "verify (attempt 1 of 4): failure (exit 1)", "verify (attempt 2 of 4): success")
}

// Cancelling stops the running step and runs nothing after it.
func TestCancelStopsTheStepAndRunsNoMore(t *testing.T) {
	f := newFixture(t)
	started := filepath.Join(t.TempDir(), "started")
	sha := f.commit(fmt.Sprintf(`
stages:
  - name: prod
    steps:
      - name: deploy
        run: touch %s; sleep 60
      - name: announce
        run: "true"
    verify:
      run: "true"
`, started))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan stagejob.Result)
	go func() { done <- f.run(ctx, f.job(sha, "prod", "deploy")) }()
	awaittest.Until(t, 10*time.Second, "the step to start", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	cancel()
	var r stagejob.Result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not stop after its cancel")
	}
	if r.OK || !r.Cancelled || r.Health != stagejob.HealthNotRun {
		t.Errorf("result %+v, want cancelled without a health check", r)
	}
	expectSteps(t, r, "deploy: cancelled", "announce: skipped (cancelled)")
}

// workflowPipeline runs two workflow steps on the pipeline branch.
const workflowPipeline = `
branch: main
stages:
  - name: prod
    steps:
      - name: migrate
        workflow: migrate.yml
        inputs: { region: eu }
      - name: deploy
        workflow: deploy.yml
`

// withWorkflows lets workflow steps run on the fake GitHub, whose runs
// complete with the conclusion conclude gives their workflow.
func (f *fixture) withWorkflows(conclude func(path string) string) {
	f.t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(f.t).Addr()})
	f.t.Cleanup(func() { rdb.Close() })
	f.opts.Workflows = actions.New(f.gh.ClientCreator(), rdb, actions.Options{Poll: 5 * time.Millisecond, Fallback: 20 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	f.t.Cleanup(func() { stop(); <-done })
	go func() {
		defer close(done)
		completed := map[int64]bool{}
		for ctx.Err() == nil {
			for _, r := range f.repo.WorkflowRuns() {
				if !completed[r.ID] {
					completed[r.ID] = true
					f.repo.CompleteRun(r.ID, conclude(r.Path))
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
}

func TestWorkflowStepsRunOnThePipelineBranch(t *testing.T) {
	f := newFixture(t)
	f.withWorkflows(func(string) string { return "success" })
	sha := f.commit(workflowPipeline)
	r := f.run(t.Context(), f.job(sha, "prod", "deploy"))
	if !r.OK {
		t.Fatalf("result %+v, want OK", r)
	}
	expectSteps(t, r, "migrate: success", "deploy: success")
	runs := f.repo.WorkflowRuns()
	if len(runs) != 2 {
		t.Fatalf("%d workflow runs, want 2", len(runs))
	}
	in := runs[0].Inputs
	if runs[0].HeadBranch != "main" || in["sha"] != sha || in["stage"] != "prod" || in["operation"] != "deploy" || in["region"] != "eu" {
		t.Errorf("first run on %s with inputs %v, want main with sha, stage, operation and region", runs[0].HeadBranch, in)
	}
	for i, s := range r.Steps {
		if s.URL != runs[i].HTMLURL || !strings.Contains(r.Log, "Workflow run: "+runs[i].HTMLURL) {
			t.Errorf("step %s links %q, want its run %q in the step and the log", s.Name, s.URL, runs[i].HTMLURL)
		}
	}
}

func TestFailedWorkflowRunFailsTheStep(t *testing.T) {
	f := newFixture(t)
	f.withWorkflows(func(path string) string {
		if strings.HasSuffix(path, "migrate.yml") {
			return "timed_out"
		}
		return "success"
	})
	r := f.run(t.Context(), f.job(f.commit(workflowPipeline), "prod", "deploy"))
	if r.OK || r.Failed != "migrate" {
		t.Errorf("result %+v, want migrate failed", r)
	}
	expectSteps(t, r, "migrate: failure (run timed out)", "deploy: skipped (earlier step failed)")
	if n := len(f.repo.WorkflowRuns()); n != 1 {
		t.Errorf("%d workflow runs, want only migrate's", n)
	}
}

func TestWorkflowStepWithoutActionsAccessFails(t *testing.T) {
	f := newFixture(t)
	r := f.run(t.Context(), f.job(f.commit(workflowPipeline), "prod", "deploy"))
	if r.OK || r.Failed != "migrate" {
		t.Errorf("result %+v, want migrate failed", r)
	}
	expectSteps(t, r, "migrate: failure: workflow steps are not available", "deploy: skipped (earlier step failed)")
	if !strings.Contains(r.Log, "built without GitHub Actions access") {
		t.Errorf("log\n%s\nwant it to say why", r.Log)
	}
}

const onePipeline = "stages:\n  - name: build\n    steps:\n      - name: compile\n        run: \"true\"\n"

// A GitHub failure that can pass is no failure of the job: no step runs,
// and the result says what to wait for.
func TestPassingGitHubFailureWaits(t *testing.T) {
	for _, c := range []struct {
		name, path, want string
	}{
		{"pipeline file 502", "/repos/octo/app/contents/", "reading .github/railyard.yml failed (502)"},
		{"archive 502", "/repos/octo/app/tarball/", "downloading the revision failed (502)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			sha := f.commit(onePipeline)
			f.gh.FailNext(http.MethodGet, c.path, 1, http.StatusBadGateway, nil)
			r := f.run(t.Context(), f.job(sha, "build", "deploy"))
			if r.Waiting != c.want || !transient.Is(r.WaitErr) || r.OK || r.Problem != "" || len(r.Steps) != 0 {
				t.Errorf("result %+v, want waiting for %q, no step run", r, c.want)
			}
		})
	}
}

// A failure that cannot pass ends the job with a problem, no step run.
func TestDefiniteGitHubFailureIsAProblem(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault func(f *fixture, sha string)
		want  string
	}{
		{"no pipeline file", func(f *fixture, _ string) {
			f.gh.FailNext(http.MethodGet, "/repos/octo/app/contents/", 1, http.StatusNotFound, nil)
		}, "Could not read .github/railyard.yml at "},
		{"404 of the revision", func(f *fixture, _ string) {
			f.gh.FailNext(http.MethodGet, "/repos/octo/app/tarball/", 1, http.StatusNotFound, nil)
		}, "Could not unpack "},
		{"403 refusal", func(f *fixture, _ string) {
			f.gh.FailNext(http.MethodGet, "/repos/octo/app/tarball/", 1, http.StatusForbidden, nil)
		}, "Could not unpack "},
		{"hostile archive", func(f *fixture, sha string) { f.repo.SetTarball(sha, hostileTarball(t)) }, "Could not unpack "},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			sha := f.commit(onePipeline)
			c.fault(f, sha)
			r := f.run(t.Context(), f.job(sha, "build", "deploy"))
			if !strings.HasPrefix(r.Problem, c.want) || r.Waiting != "" || r.OK || r.Failed != "" || len(r.Steps) != 0 {
				t.Errorf("result %+v, want a problem %q…, no step run", r, c.want)
			}
		})
	}
}

// hostileTarball tries to write outside the work directory.
func hostileTarball(t *testing.T) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "octo-app-1a2b3c4/../../x", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hi"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}
