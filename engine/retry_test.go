package engine

import (
	"os"
	"slices"
	"testing"

	"github.com/railyard/railyard/report"
)

// TestRetryRepeatsAFailedRollback fails a rollback of staging and retries
// it: the retry is a rollback again (RAILYARD_OPERATION, the infra step
// skipped), keeps the blocks, and promotes nothing to prod.
func TestRetryRepeatsAFailedRollback(t *testing.T) {
	w := newWorldWith(t, `
stages:
  - name: build
    steps:
      - name: compile
        run: echo "$RAILYARD_STAGE:compile:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
  - name: staging
    steps:
      - name: terraform
        infra: true
        run: echo "$RAILYARD_STAGE:terraform:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
      - name: deploy
        run: echo "$RAILYARD_STAGE:deploy:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS; test ! -f MARKS.fail
  - name: prod
    steps:
      - name: deploy
        run: echo "$RAILYARD_STAGE:deploy:$(echo $RAILYARD_SHA | cut -c1-7):$RAILYARD_OPERATION" >> MARKS
`)
	w.seed(settled())
	fail := w.marks + ".fail"
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.Rollback(w.ctx, w.req(), Move{Stage: "staging", SHA: shaA}); err != nil {
		t.Fatal(err)
	}
	w.runQueued()
	if s := w.pipeline().Stage("staging"); s.State != Failed {
		t.Fatalf("staging is %s after a failing rollback, want failed", s.State)
	}
	os.Remove(fail)
	res, err := w.e.Retry(w.ctx, w.reqBy("bob", ""), "staging")
	if err != nil {
		t.Fatal(err)
	}
	w.runQueued()
	w.expectSteps("staging:deploy:aaaaaaa:rollback", "staging:deploy:aaaaaaa:rollback")

	p := w.pipeline()
	staging, prod := p.Stage("staging"), p.Stage("prod")
	if staging.State != RolledBack || staging.Current != shaA || staging.Job.Operation != OpRollback || staging.Job.Actor != "bob" {
		t.Errorf("staging ends %s at %.7s by %s's %s; want rolled_back at aaaaaaa by bob's rollback", staging.State, staging.Current, staging.Job.Actor, staging.Job.Operation)
	}
	if !staging.Blocked || !prod.Blocked {
		t.Errorf("the retry lifted the rollback's blocks: staging %v, prod %v", staging.Blocked, prod.Blocked)
	}
	if prod.Waiting != nil || prod.Job.ID != "job-prod" {
		t.Errorf("the retried rollback promoted to prod: job %+v, waiting %+v", prod.Job, prod.Waiting)
	}
	if d, ok := w.rep.deployment(jobOf(t, res)); !ok || d.Task != "deploy:rollback" {
		t.Errorf("the retry's deployment %+v, want task deploy:rollback", d)
	}
	// staging stays blocked: its check run offers to unblock it.
	if cr, _ := w.rep.checkRun(jobOf(t, res)); cr.Conclusion != "success" || !slices.ContainsFunc(cr.Buttons, func(a report.Button) bool { return a.Identifier == "unblock" }) {
		t.Errorf("the retried rollback's check run ends %s with buttons %+v, want success with unblock", cr.Conclusion, cr.Buttons)
	}
}
