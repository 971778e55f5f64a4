package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/webhooktest"
)

// askOnPull posts a comment as user on pull request #1 and waits for
// Railyard's reply and final reaction.
func (h *harness) askOnPull(body string) answer {
	h.t.Helper()
	a := answer{id: 900000 + commentIDs.Add(1)}
	before := len(h.repo.Comments(1))
	h.deliverComment(a.id, user, body, webhooktest.Set("issue.pull_request", map[string]any{
		"url":      "https://api.github.com/repos/" + repoName + "/pulls/1",
		"html_url": "https://github.com/" + repoName + "/pull/1", "diff_url": nil, "patch_url": nil, "merged_at": nil,
	}))
	h.awaitAnswer(&a, before, body)
	return a
}

// refused requires a refusal that names each of want, and that changed nothing.
func (h *harness) refused(a answer, before string, want ...string) {
	h.t.Helper()
	if !strings.Contains(a.reply, "❌") || !slices.Equal(a.reactions, []string{"eyes", "confused"}) {
		h.t.Errorf("reply %q reactions %v, want a refusal", a.reply, a.reactions)
	}
	for _, w := range want {
		if !strings.Contains(a.reply, w) {
			h.t.Errorf("refusal does not say %q:\n%s", w, a.reply)
		}
	}
	if after := h.snapshot(); after != before {
		h.t.Errorf("a refused command changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

func accepted(t *testing.T, a answer, want string) {
	t.Helper()
	if !strings.Contains(a.reply, "✅") || !strings.Contains(a.reply, want) || !slices.Equal(a.reactions, []string{"eyes", "rocket"}) {
		t.Errorf("reply %q reactions %v, want it accepted saying %q", a.reply, a.reactions, want)
	}
}

const gatedPipeline = `
require:
  checks: [ci/e2e]
  approvals: 1
stages:
  - name: build
    steps:
%s  - name: prod
    production: true
    steps:
%s`

// TestProductionDeployIsGated: a revision does not enter a gated
// production stage by itself; /promote is refused, naming each check the
// branch's protection and rulesets and the file require that has not
// passed, until GitHub shows them passed. Railyard's own check runs do not
// count; a revision on the pipeline branch needs no approval.
func TestProductionDeployIsGated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(gatedPipeline, markStep("compile"), markStep("deploy")))
	h.repo.ProtectBranch(defaultBranch, "ci/test", "railyard/build")
	h.repo.AddRulesetChecks(defaultBranch, "lint")
	a := h.commitAndPush()
	h.awaitCheckRun("railyard/build", a, "success")
	h.await("prod to wait for /promote", func() bool {
		w := h.stage("prod").Waiting
		return w != nil && w.SHA == a && strings.Contains(w.Hold, "/promote stage=prod")
	})
	h.repo.AddCheckRun(a, "lint", "completed", "failure")
	h.repo.AddCheckRun(a, "ci/e2e", "in_progress", "")

	before := h.snapshot()
	h.refused(h.ask(user, "/promote stage=prod"), before,
		"cannot promote prod with "+short(a),
		"check ci/e2e has not finished (in progress)",
		"check ci/test has not run on "+short(a),
		"check lint did not pass (failure)")
	if r := h.ask(user, "/promote stage=prod").reply; strings.Contains(r, "railyard/build") || strings.Contains(r, "approval") {
		t.Errorf("refusal names Railyard's own check or an approval of a merged revision:\n%s", r)
	}

	h.repo.AddCheckRun(a, "lint", "completed", "success") // a re-run: the newest counts
	h.repo.AddCheckRun(a, "ci/e2e", "completed", "neutral")
	h.repo.SetStatus(a, "ci/test", "success")
	accepted(t, h.ask(user, "/promote stage=prod"), "Promoting "+short(a)+" to prod")
	h.awaitStage("prod", engine.Succeeded, a)
	if !h.hasMark("prod:deploy:" + short(a) + ":promote") {
		t.Errorf("prod did not deploy %s: %v", short(a), h.marks())
	}
}

// TestPatchOfAPullRequestIsGated: /patch of a fork's pull request is
// refused until the pipeline file on the default branch allows forks (the
// pull request's own change to it has no effect), then refused naming the
// failing check and the missing approval, then allowed once GitHub shows
// them passed and approved. The patch runs the default branch's steps.
func TestPatchOfAPullRequestIsGated(t *testing.T) {
	t.Parallel()
	pipeline := fmt.Sprintf(gatedPipeline, markStep("compile"), markStep("deploy"))
	h := newHarness(t, pipeline)
	h.repo.ProtectBranch(defaultBranch, "ci/test")
	a := h.commitAndPush()
	h.awaitCheckRun("railyard/build", a, "success")

	// The pull request lets forks in, needs nothing, and runs its own step.
	f := h.repo.Commit("feature", map[string]githubtest.File{
		".github/railyard.yml": {Content: h.expand(`
patch: { allow_forks: true }
stages:
  - name: build
    steps:
      - name: own
        run: echo "pr-step" >> $DIR/log
`)},
		"README": {Content: "from a fork"},
	})
	h.repo.AddPull(1, "feature")
	h.repo.SetPullFork(1, "mallory/Hello-World")

	before := h.snapshot()
	h.refused(h.askOnPull("/patch stage=build reason=try the fix"), before,
		"cannot patch build with "+short(f),
		"pull request #1 comes from the fork mallory/Hello-World, and .github/railyard.yml does not allow patching forks (patch: { allow_forks: true })")

	// The default branch allows forks: now the checks and the approval.
	h.files[".github/railyard.yml"] = githubtest.File{Content: h.expand("patch: { allow_forks: true }\n" + pipeline)}
	h.commit()
	h.repo.AddCheckRun(f, "ci/test", "completed", "failure")
	h.repo.AddReview(1, "alice", "APPROVED", a) // of an older head
	before = h.snapshot()
	got := h.askOnPull("/patch stage=build reason=try the fix")
	h.refused(got, before,
		"check ci/e2e has not run on "+short(f),
		"check ci/test did not pass (failure)",
		"needs 1 approval of "+short(f)+" on pull request #1, has none")
	if strings.Contains(got.reply, "fork") {
		t.Errorf("refusal still names the fork:\n%s", got.reply)
	}

	h.repo.AddCheckRun(f, "ci/test", "completed", "success")
	h.repo.SetStatus(f, "ci/e2e", "success")
	h.repo.AddReview(1, "alice", "APPROVED", f)
	accepted(t, h.askOnPull("/patch stage=build reason=try the fix"), "Patch mode: deploying "+short(f)+" to build")
	h.awaitStage("build", engine.Succeeded, f)
	if !h.hasMark("build:compile:"+short(f)+":patch") || h.hasMark("pr-step") {
		t.Errorf("the patch did not run the default branch's steps: %v", h.marks())
	}
}

// TestRollForwardIsGated: /rollforward to a revision that has not passed
// the required checks is refused, naming them.
func TestRollForwardIsGated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    require: { checks: [ci/test] }
    steps:
%s`, markStep("compile"), markStep("deploy")))
	a := h.commitAndPush()
	h.awaitStage("staging", engine.Succeeded, a)
	b := h.commitAndPush()
	h.awaitStage("staging", engine.Succeeded, b)
	h.comment(fmt.Sprintf("/rollback stage=staging to=%s reason=bad", a))
	h.awaitStage("staging", engine.RolledBack, a)
	for _, op := range []string{"checks/list-for-ref", "repos/get-branch", "pulls/get"} {
		if n := h.gh.Count(op); n != 0 {
			t.Errorf("%d %s calls before any gated command, want none", n, op)
		}
	}

	// An installation that has not granted statuses: read still gets a
	// reply: a status it cannot see counts as not run.
	h.gh.FailNext("GET", "/repos/"+repoName+"/commits/"+b+"/status", 100, http.StatusForbidden, nil)
	before := h.snapshot()
	cmd := fmt.Sprintf("/rollforward stage=staging to=%s reason=fixed", b)
	h.refused(h.ask(user, cmd), before, "cannot rollforward staging with "+short(b)+": check ci/test has not run on "+short(b))
	if n := h.gh.Count("repos/get-combined-status-for-ref"); n != 1 {
		t.Errorf("%d reads of the commit status, want 1 (refused once, not retried)", n)
	}
	h.repo.AddCheckRun(b, "ci/test", "completed", "success")
	accepted(t, h.ask(user, cmd), "Rolling forward staging to "+short(b))
	h.awaitStage("staging", engine.RolledForward, b)
}
