package engine

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/transient"
)

// TestStageWaitsOutAPassingGitHubFailure answers the revision's download
// with a 502: the job is handed back to be tried again (not failed), its
// check run says it waits for GitHub, and the next try runs the steps and
// succeeds as one run, not a takeover.
func TestStageWaitsOutAPassingGitHubFailure(t *testing.T) {
	w := newWorld(t)
	w.src.archiveFails = []error{&transient.StatusError{Code: http.StatusBadGateway}}
	res, job := w.deployC(2)

	err := w.e.RunJob(w.ctx, job)
	if !transient.Is(err) {
		t.Fatalf("RunJob = %v, want the passing failure, so that the queue tries again", err)
	}
	w.expectSteps()
	s := w.pipeline().Stage("build")
	if s.State != InProgress {
		t.Errorf("build is %s while waiting for GitHub, want in_progress", s.State)
	}
	id := jobOf(t, res)
	cr, _ := w.rep.checkRun(id)
	want := "Waiting for GitHub: downloading the revision failed (502); trying again."
	if cr.Status != "in_progress" || !strings.Contains(cr.Summary, want) {
		t.Errorf("check run %s:\n%s\nwant in_progress saying %q", cr.Status, cr.Summary, want)
	}

	if err := w.e.RunJob(w.ctx, job); err != nil {
		t.Fatal(err)
	}
	w.expectSteps("build:compile:ccccccc:deploy")
	if s := w.pipeline().Stage("build"); s.State != Succeeded || s.Job.WaitingFor != "" {
		t.Errorf("build ends %s, waiting for %q; want succeeded, waiting for nothing", s.State, s.Job.WaitingFor)
	}
	if got := w.rep.deploymentStates(id); !slices.Equal(got, []string{"queued", "in_progress", "success"}) {
		t.Errorf("deployment statuses %v, want queued, in_progress, success: waiting adds none", got)
	}
	cr, _ = w.rep.checkRun(id)
	if cr.Conclusion != "success" || strings.Contains(cr.Summary, "took it over") || strings.Contains(cr.Summary, "Waiting") {
		t.Errorf("check run ends %s:\n%s\nwant success, neither a takeover nor waiting", cr.Conclusion, cr.Summary)
	}
}

// TestDefiniteFetchFailureFailsTheStage answers the download with a 404:
// that cannot pass, so the stage fails at once, as before. Which failures
// can pass is package stagejob's to say (its tests).
func TestDefiniteFetchFailureFailsTheStage(t *testing.T) {
	w := newWorld(t)
	p := settled()
	p.Stages = p.Stages[:1]
	w.seed(p)
	w.src.archiveFails = []error{&transient.StatusError{Code: http.StatusNotFound}}
	res, err := w.e.Deploy(w.ctx, w.req(), shaC, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.e.RunJob(w.ctx, w.claimAll()[0].lease.Job); err != nil {
		t.Fatalf("RunJob = %v, want the stage failed and the job done", err)
	}
	if s := w.pipeline().Stage("build"); s.State != Failed {
		t.Errorf("build ends %s, want failed", s.State)
	}
	if cr, _ := w.rep.checkRun(jobOf(t, res)); cr.Conclusion != "failure" || !strings.Contains(cr.Summary, "Could not unpack") {
		t.Errorf("check run ends %s:\n%s\nwant failure saying it could not unpack", cr.Conclusion, cr.Summary)
	}
}
