package engine

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/stagejob"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/render")

// golden compares got with testdata/render/name.golden; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "render", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./engine -run TestRender -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// showWrites words what GitHub is asked to show, field by field.
func showWrites(ws []report.Write) string {
	var b strings.Builder
	for _, w := range ws {
		switch {
		case w.CheckRun != nil:
			c := w.CheckRun
			fmt.Fprintf(&b, "== check run %s: %s on %.7s, %s %s\n", w.Key, c.Name, c.HeadSHA, c.Status, c.Conclusion)
			fmt.Fprintf(&b, "title: %s\n", c.Title)
			var buttons []string
			for _, a := range c.Buttons {
				buttons = append(buttons, fmt.Sprintf("[%s: %s (%s)]", a.Label, a.Description, a.Identifier))
			}
			fmt.Fprintf(&b, "buttons: %s\n", strings.Join(buttons, " "))
			fmt.Fprintf(&b, "summary:\n%s", c.Summary)
			if c.Text != "" {
				fmt.Fprintf(&b, "text:\n%s", c.Text)
			}
		case w.Deployment != nil:
			d := w.Deployment
			fmt.Fprintf(&b, "== deployment %s: %.7s to %s, task %s, production %v\ndescription: %s\n", w.Key, d.Ref, d.Environment, d.Task, d.Production, d.Description)
		case w.DeploymentStatus != nil:
			s := w.DeploymentStatus
			fmt.Fprintf(&b, "== deployment status %s: %s, log of %s\ndescription: %s\n", w.Key, s.State, s.LogURLCheckRun, s.Description)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// showEffects words everything a transition does, for a golden file.
func showEffects(fx Effects, err error) string {
	if err != nil {
		return "refused: " + err.Error() + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "reply: %s (check run %s)\n\n", fx.Reply.Message, fx.Reply.CheckRunKey)
	b.WriteString(showWrites(fx.GitHub))
	return b.String()
}

// TestRenderTransitions shows the check runs, deployments and replies of
// typical transitions as a person sees them.
func TestRenderTransitions(t *testing.T) {
	steps := []stagejob.Step{
		{Name: "compile", Result: "success", Duration: 1500 * time.Millisecond},
		{Name: "deploy", Result: "failure: GitHub said | no", Duration: 2 * time.Second, URL: "https://github.com/octo/app/actions/runs/1"},
		{Name: "smoke", Result: "skipped (earlier step failed)"},
	}
	cases := []struct {
		name string
		do   func(t *testing.T, p *Pipeline) (Effects, error)
	}{
		{"deploy-held", func(t *testing.T, p *Pipeline) (Effects, error) {
			stopped(p)
			return p.Deploy(request(t), shaC, 3, at)
		}},
		{"promote-waiting-for-promote", func(t *testing.T, p *Pipeline) (Effects, error) {
			waitingIn("prod", shaB, "waiting for /promote stage=prod")(p)
			p.Stage("prod").Waiting.Manual = true
			return p.Promote(request(t), "prod", shaB, at)
		}},
		{"rollback-running", func(t *testing.T, p *Pipeline) (Effects, error) {
			in("prod", InProgress, shaB)(p)
			return p.Rollback(request(t), Move{Stage: "prod", SHA: shaA, Skip: []string{"deploy"}}, at)
		}},
		{"cancel-waiting", func(t *testing.T, p *Pipeline) (Effects, error) {
			waitingIn("prod", shaB, "waiting for /promote stage=prod")(p)
			return p.Cancel(request(t), "prod", "", at)
		}},
		{"stop", func(t *testing.T, p *Pipeline) (Effects, error) { return p.Stop(request(t), at) }},
		{"refused", func(t *testing.T, p *Pipeline) (Effects, error) { return p.Retry(request(t), "prod", at) }},
		{"claim-takeover", func(t *testing.T, p *Pipeline) (Effects, error) {
			in("staging", InProgress, shaB)(p)
			_, fx, err := p.Claim(jobRef{Repo: testRepo, Stage: "staging", Job: "job-staging-in_progress"}, at)
			return fx, err
		}},
		{"finish-success", func(t *testing.T, p *Pipeline) (Effects, error) {
			in("staging", InProgress, shaC)(p)
			_, fx, err := p.Finish(p.Stage("staging").Job, runResult{ok: true, file: request(t).File, steps: steps[:1]}, at)
			return fx, err
		}},
		{"finish-failure", func(t *testing.T, p *Pipeline) (Effects, error) {
			in("staging", InProgress, shaC)(p)
			_, fx, err := p.Finish(p.Stage("staging").Job, runResult{failed: "deploy", file: request(t).File, steps: steps, log: "### deploy (failure)\n"}, at)
			return fx, err
		}},
		{"wait-for-github", func(t *testing.T, p *Pipeline) (Effects, error) {
			in("staging", InProgress, shaC)(p)
			return p.WaitForGitHub(jobRef{Repo: testRepo, Stage: "staging", Job: "job-staging-in_progress"}, "downloading the revision failed (502)", at)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			golden(t, c.name, showEffects(c.do(t, settled())))
		})
	}
}

// TestRenderReplies shows the replies and check runs the handlers post.
func TestRenderReplies(t *testing.T) {
	file := request(t).File
	p := settled()
	waitingIn("prod", shaB, "waiting for /promote stage=prod")(p)
	patched(p)
	var b strings.Builder
	b.WriteString(Reply("alice", []Line{
		Accepted("/rollback stage=prod to=aaaaaaa reason=bad", Result{Message: "Rolling back prod to aaaaaaa.", CheckRunKey: "job:1"}),
		Refused("/retry stage=prod", refuse(OpRetry, "prod", whyNotFailed, Succeeded)),
		Invalid(errors.New("unknown command /nope")),
		// Text a person wrote never becomes a link.
		Accepted("/stop reason={{checkrun:job:1}}", Result{Message: "Stopped the pipeline."}),
	}))
	b.WriteString("\n\n== status" + Status(file, p))
	b.WriteString("\n" + showWrites([]report.Write{
		{Key: "action:1", CheckRun: new(ButtonRefused("promote", "prod", shaA, "bob", Refuse(WhyOlderWaiting, shaA, "prod", "bbbbbbb")))},
		{Key: "config:" + shaA, CheckRun: new(BrokenFile(shaA, []config.Problem{{Line: 3, Message: "unknown key \"stepz\""}}))},
	}))
	golden(t, "replies", b.String())
}

// TestReplyLinksOnlyRailyardsCheckRuns: a placeholder a person typed is
// broken, and the link Railyard adds is whole.
func TestReplyLinksOnlyRailyardsCheckRuns(t *testing.T) {
	body := Reply("mallory", []Line{Accepted("/stop reason={{checkrun:job:secret}}", Result{Message: "ok", CheckRunKey: "job:1"})})
	if n := strings.Count(body, "{{"); n != 1 || !strings.Contains(body, "({{checkrun:job:1}})") {
		t.Errorf("reply has %d placeholders, want only Railyard's link:\n%s", n, body)
	}
	if !slices.Contains(strings.Fields(body), "([check") {
		t.Errorf("no check run link in:\n%s", body)
	}
}
