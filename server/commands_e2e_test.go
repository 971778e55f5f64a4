package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/webhooktest"
)

// Slash commands and check run buttons end to end (docs/reference.md,
// #operations and #commands): who may run what, what Railyard ignores, how
// often it acts, and what it replies.

// answer is what Railyard did with one comment.
type answer struct {
	id        int64
	reply     string   // the first reply posted after the comment
	replies   int      // replies posted after the comment, up to its last reaction
	reactions []string // on the comment: eyes, then rocket or confused
}

// deliverComment sends an issue_comment webhook for comment id on issue 1
// and requires 202.
func (h *harness) deliverComment(id int64, login, body string, edits ...webhooktest.Edit) {
	h.t.Helper()
	edits = append([]webhooktest.Edit{
		webhooktest.Set("comment.id", id), webhooktest.Set("comment.body", body),
		webhooktest.Set("comment.user.login", login),
	}, edits...)
	payload := webhooktest.Payload(h.t, "issue_comment/created.with-installation.payload.json", edits...)
	if code := h.deliver("issue_comment", payload); code != http.StatusAccepted {
		h.t.Fatalf("comment %q answered %d, want 202", body, code)
	}
}

// ask posts a comment as login and waits until Railyard replied and put
// its final reaction (rocket or confused) on it.
func (h *harness) ask(login, body string) answer {
	h.t.Helper()
	a := answer{id: 900000 + commentIDs.Add(1)}
	before := len(h.repo.Comments(1))
	h.deliverComment(a.id, login, body)
	h.awaitAnswer(&a, before, body)
	return a
}

// awaitAnswer waits for the reply to a.id and its final reaction. The
// reaction is written after the reply, so once it is there every reply of
// this comment is too.
func (h *harness) awaitAnswer(a *answer, before int, what string) {
	h.t.Helper()
	h.await("reply and final reaction to "+shorten(what), func() bool {
		a.reactions = h.repo.Reactions(a.id)
		return len(a.reactions) >= 2
	})
	cs := h.repo.Comments(1)
	if len(cs) <= before {
		h.t.Fatalf("%s: reacted %v without a reply", shorten(what), a.reactions)
	}
	a.reply, a.replies = cs[before].Body, len(cs)-before
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// run runs a subtest sharing h; while it runs, h's helpers fail the
// subtest, not its parent.
func (h *harness) run(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		parent := h.t
		h.t = t
		defer func() { h.t = parent }()
		f(t)
	})
}

// snapshot is the pipeline state and the length of the audit log: a
// refused command must change neither.
func (h *harness) snapshot() string {
	h.t.Helper()
	audit, err := h.srv.Engine().Audit(context.Background(), repoName, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	data, _ := json.Marshal(struct {
		P *engine.Pipeline
		N int
	}{h.pipeline(), len(audit)})
	return string(data)
}

func (h *harness) audit() []engine.AuditEntry {
	h.t.Helper()
	audit, err := h.srv.Engine().Audit(context.Background(), repoName, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return audit
}

// jobsRun is how many queue jobs of a kind have run, from GET /metrics
// (railyard_jobs_total): what an operator sees of the intake queue.
func (h *harness) jobsRun(kind string) int {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	n := 0
	for line := range strings.Lines(rec.Body.String()) {
		if rest, ok := strings.CutPrefix(line, `railyard_jobs_total{kind="`+kind+`",`); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndexByte(rest, ' '):]), 64)
			if err != nil {
				h.t.Fatalf("metrics line %q: %v", line, err)
			}
			n += int(v)
		}
	}
	return n
}

// TestCommandPermissions: the commenter's repository permission, as GitHub
// reports it (triage folded into read, maintain into write, told apart by
// role_name), against what the pipeline file's permissions ask, for
// /status and /help too.
func TestCommandPermissions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: prod
    steps:
%spermissions:
  default: write
  commands: { stop: maintain, help: read }
  stages: { prod: maintain }
`, markStep("compile"), markStep("deploy")))
	h.repo.SetPermission("reader", "read", "read")
	h.repo.SetPermission("triager", "read", "triage")
	h.repo.SetPermission("writer", "write", "write")
	h.repo.SetPermission("maintainer", "write", "maintain")
	a := h.commitAndPush()
	h.awaitStage("prod", engine.Succeeded, a)

	for _, c := range []struct{ login, cmd, want string }{
		{"reader", "/redeploy stage=build", "@reader has read permission on this repository; /redeploy on build needs write"},
		{"triager", "/redeploy stage=build", "@triager has triage permission on this repository; /redeploy on build needs write"},
		{"writer", "/redeploy stage=prod", "@writer has write permission on this repository; /redeploy on prod needs maintain"},
		{"writer", "/stop reason=not mine to stop", "@writer has write permission on this repository; /stop needs maintain"},
		// /status is a command like the others: the default applies.
		{"reader", "/status", "@reader has read permission on this repository; /status needs write"},
	} {
		h.run(t, "refused/"+c.login+c.cmd, func(t *testing.T) {
			before := h.snapshot()
			got := h.ask(c.login, c.cmd)
			if !strings.Contains(got.reply, "❌") || !strings.Contains(got.reply, c.want) {
				t.Errorf("reply %q, want a refusal saying %q", got.reply, c.want)
			}
			if !slices.Equal(got.reactions, []string{"eyes", "confused"}) {
				t.Errorf("reactions %v, want [eyes confused]", got.reactions)
			}
			if after := h.snapshot(); after != before {
				t.Errorf("refused command changed the state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if n := len(h.marks()); n != 2 {
		t.Fatalf("refused commands ran steps: %v", h.marks())
	}

	// The same commands pass for those the file allows: write where the
	// default applies, maintain where the file asks for it.
	for _, c := range []struct{ login, cmd, stage string }{
		{"writer", "/redeploy stage=build", "build"},
		{"maintainer", "/redeploy stage=prod", "prod"},
	} {
		h.run(t, "accepted/"+c.login+c.cmd, func(t *testing.T) {
			got := h.ask(c.login, c.cmd)
			if !strings.Contains(got.reply, "✅") || !strings.Contains(got.reply, "Queued redeploy of "+c.stage) {
				t.Errorf("reply %q, want the redeploy accepted", got.reply)
			}
			if !slices.Equal(got.reactions, []string{"eyes", "rocket"}) {
				t.Errorf("reactions %v, want [eyes rocket]", got.reactions)
			}
			h.await(c.stage+" redeployed by "+c.login, func() bool {
				s := h.stage(c.stage)
				return s.State == engine.Succeeded && s.Job.Operation == engine.OpRedeploy && s.Job.Actor == c.login
			})
		})
	}
	h.run(t, "accepted/reader/help", func(t *testing.T) {
		got := h.ask("reader", "/help")
		if !strings.Contains(got.reply, "✅ `/help`") || !strings.Contains(got.reply, "/rollback stage=S") || !slices.Equal(got.reactions, []string{"eyes", "rocket"}) {
			t.Errorf("reply %q reactions %v, want /help answered: the file lets read run it", got.reply, got.reactions)
		}
	})
	h.run(t, "accepted/maintainer/stop", func(t *testing.T) {
		got := h.ask("maintainer", "/stop reason=maintenance window")
		if !strings.Contains(got.reply, "Stopped the pipeline") || !slices.Equal(got.reactions, []string{"eyes", "rocket"}) {
			t.Errorf("reply %q reactions %v, want /stop accepted", got.reply, got.reactions)
		}
		if st := h.pipeline().Stopped; st == nil || st.Actor != "maintainer" || st.Reason != "maintenance window" {
			t.Errorf("stopped = %+v, want stopped by maintainer", st)
		}
	})
}

// TestCommentsRailyardIgnores: comments by bots (Railyard included) and
// edited or deleted comments do nothing at all, though they hold commands.
func TestCommentsRailyardIgnores(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	h.commit()
	bot := func(login string) []webhooktest.Edit {
		return []webhooktest.Edit{webhooktest.Set("comment.user.login", login), webhooktest.Set("comment.user.type", "Bot")}
	}
	cases := []struct {
		name  string
		edits []webhooktest.Edit
	}{
		{"another app", bot("dependabot[bot]")},
		{"Railyard itself", bot(githubtest.BotLogin)},
		{"a bot without [bot] in its login", bot("deploy-robot")},
		{"edited", []webhooktest.Edit{webhooktest.Set("action", "edited"),
			webhooktest.Set("changes", map[string]any{"body": map[string]any{"from": "/status"}})}},
		{"deleted", []webhooktest.Edit{webhooktest.Set("action", "deleted")}},
	}
	var ids []int64
	for _, c := range cases {
		id := 900000 + commentIDs.Add(1)
		ids = append(ids, id)
		h.deliverComment(id, user, "/stop reason="+c.name, c.edits...)
	}

	// A normal comment after them: once it is answered, anything the
	// ignored ones had set off would have shown too.
	got := h.ask(user, "/status")
	if got.replies != 1 || !strings.Contains(got.reply, "| stage | state |") {
		t.Errorf("%d replies, first %q; want only the reply to /status", got.replies, got.reply)
	}
	h.await("the /status job to be counted", func() bool { return h.jobsRun("comment") >= 1 })
	if n := h.jobsRun("comment"); n != 1 {
		t.Errorf("%d comment jobs ran, want 1 (ignored comments are not queued)", n)
	}
	for i, c := range cases {
		if r := h.repo.Reactions(ids[i]); len(r) != 0 {
			t.Errorf("%s: reactions %v, want none", c.name, r)
		}
	}
	if st := h.pipeline().Stopped; st != nil {
		t.Errorf("an ignored comment stopped the pipeline: %+v", st)
	}
	if a := h.audit(); len(a) != 0 {
		t.Errorf("ignored comments left audit entries: %+v", a)
	}
}

// TestCommentDeliveredTwiceActsOnce: GitHub may deliver one comment under two
// delivery ids; Railyard acts on it once (docs/reference.md#idempotency).
func TestCommentDeliveredTwiceActsOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	head := h.commit()
	a := answer{id: 900000 + commentIDs.Add(1)}
	body := "/stop reason=delivered twice"
	payload := webhooktest.Payload(t, "issue_comment/created.with-installation.payload.json",
		webhooktest.Set("comment.id", a.id), webhooktest.Set("comment.body", body))
	before := len(h.repo.Comments(1))
	for _, delivery := range []string{"first", "second"} {
		if code := h.deliverAs("issue_comment", fmt.Sprintf("%s-%d", delivery, a.id), payload); code != http.StatusAccepted {
			t.Fatalf("%s delivery answered %d, want 202", delivery, code)
		}
	}
	h.awaitAnswer(&a, before, body)
	// A later comment is answered after the duplicate would have been.
	status := h.ask(user, "/status")
	if !strings.Contains(status.reply, "**Stopped** by @"+user+": delivered twice") {
		t.Errorf("/status after the stop: %q", status.reply)
	}
	h.await("both comment jobs to be counted", func() bool { return h.jobsRun("comment") >= 2 })

	if n := len(h.repo.Comments(1)) - before; n != 2 {
		t.Errorf("%d replies, want 2 (one to the twice-delivered comment, one to /status)", n)
	}
	if !strings.Contains(a.reply, "Stopped the pipeline") {
		t.Errorf("reply %q", a.reply)
	}
	if r := h.repo.Reactions(a.id); !slices.Equal(r, []string{"eyes", "rocket"}) {
		t.Errorf("reactions %v, want [eyes rocket] once", r)
	}
	if n := h.jobsRun("comment"); n != 2 {
		t.Errorf("%d comment jobs ran, want 2", n)
	}
	if audit := h.audit(); len(audit) != 1 || audit[0].Operation != engine.OpStop {
		t.Errorf("audit %+v, want one stop", audit)
	}
	runs := 0
	for _, cr := range h.repo.CheckRuns() {
		if cr.Name == "railyard/pipeline" && cr.HeadSHA == head {
			runs++
		}
	}
	if runs != 1 {
		t.Errorf("%d railyard/pipeline check runs, want 1", runs)
	}
}

// TestTenCommandsPerComment: up to ten commands of a comment run in order
// and get one reply; the eleventh and later are refused, not run.
func TestTenCommandsPerComment(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	h.commit()
	// Each /stop and /resume is refused unless the one before it ran first,
	// and /status shows what the commands before it did.
	cmds := []string{
		"/stop reason=r1", "/status", "/resume", "/status", "/stop reason=r5",
		"/resume", "/help", "/stop reason=r8", "/resume", "/stop reason=r10",
		"/resume", // the eleventh: had it run, the pipeline would not end stopped
		"/stop reason=r12",
	}
	got := h.ask(user, strings.Join(cmds, "\n"))
	if got.replies != 1 {
		t.Errorf("%d replies, want one for all commands", got.replies)
	}
	if !slices.Equal(got.reactions, []string{"eyes", "confused"}) {
		t.Errorf("reactions %v, want [eyes confused]: the eleventh was refused", got.reactions)
	}
	// The reply holds one part per command in order; cut it there.
	var parts []string
	rest := got.reply
	for i, c := range cmds[:10] {
		at := strings.Index(rest, "✅ `"+c+"`")
		if at < 0 {
			t.Fatalf("reply lacks command %d %q accepted after the ones before it:\n%s", i+1, c, got.reply)
		}
		if i > 0 {
			parts = append(parts, rest[:at])
		}
		rest = rest[at:]
	}
	parts = append(parts, rest)
	if !strings.Contains(parts[1], "**Stopped** by @"+user+": r1") {
		t.Errorf("the first /status does not show the stop before it:\n%s", parts[1])
	}
	if strings.Contains(parts[3], "**Stopped**") {
		t.Errorf("the second /status shows a stop that /resume lifted:\n%s", parts[3])
	}
	if !strings.Contains(parts[6], "/rollback stage=S to=SHA") {
		t.Errorf("/help did not list the commands:\n%s", parts[6])
	}
	if want := "❌ line 11: /resume and the commands after it were not run: a comment runs at most 10 commands"; !strings.Contains(parts[9], want) {
		t.Errorf("reply does not refuse the eleventh command with %q:\n%s", want, parts[9])
	}
	if strings.Contains(got.reply, "r12") {
		t.Errorf("reply mentions the twelfth command:\n%s", got.reply)
	}

	var ran []string
	audit := h.audit()
	for i := len(audit) - 1; i >= 0; i-- {
		ran = append(ran, strings.TrimSpace(string(audit[i].Operation)+" "+audit[i].Reason))
	}
	if want := []string{"stop r1", "resume", "stop r5", "resume", "stop r8", "resume", "stop r10"}; !slices.Equal(ran, want) {
		t.Errorf("audit %v, want %v", ran, want)
	}
	if st := h.pipeline().Stopped; st == nil || st.Reason != "r10" {
		t.Errorf("stopped = %+v, want stopped by the tenth command", st)
	}
}

// TestHugeComment: comments far over GitHub's 65,536 characters are taken
// (202, within the second docs/reference.md#durability promises), refused
// with a short reply, and run nothing.
func TestHugeComment(t *testing.T) {
	t.Parallel()
	h := newHarness(t, buildOnly)
	h.commit()
	const size = 100 << 10
	line := "/rollback stage=build to=nope reason=x\n"
	for _, c := range []struct{ name, body, want string }{
		{"reason", "/stop reason=" + strings.Repeat("x", size), "❌ line 1: /stop: reason= must be at most 500 characters"},
		{"arguments", "/frobnicate " + strings.Repeat("y=", size/2), "❌ line 1: unknown command /frobnicate"},
		{"lines", strings.Repeat(line, size/len(line)+1), "❌ line 11: /rollback and the commands after it were not run"},
	} {
		h.run(t, c.name, func(t *testing.T) {
			before := h.snapshot()
			a := answer{id: 900000 + commentIDs.Add(1)}
			n := len(h.repo.Comments(1))
			start := time.Now()
			h.deliverComment(a.id, user, c.body)
			if took := time.Since(start); took > time.Second {
				t.Errorf("a %d-byte comment took %v to answer", len(c.body), took)
			}
			h.awaitAnswer(&a, n, c.name)
			if !strings.Contains(a.reply, c.want) || len(a.reply) > 4000 {
				t.Errorf("reply (%d bytes) %.500q, want a short one with %q", len(a.reply), a.reply, c.want)
			}
			if !slices.Equal(a.reactions, []string{"eyes", "confused"}) {
				t.Errorf("reactions %v, want [eyes confused]", a.reactions)
			}
			if after := h.snapshot(); after != before {
				t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if len(h.marks()) != 0 {
		t.Errorf("steps ran: %v", h.marks())
	}
}

// clickBody is a check run button click: GitHub's requested_action payload
// moved to the test repository.
func clickBody(t *testing.T, stage, sha, identifier, login string) []byte {
	return webhooktest.Payload(t, "check_run/requested_action.payload.json",
		webhooktest.SetRepo(repoName), webhooktest.Set("installation.id", 1),
		webhooktest.Set("check_run.name", "railyard/"+stage), webhooktest.Set("check_run.head_sha", sha),
		webhooktest.Set("requested_action.identifier", identifier), webhooktest.Set("sender.login", login))
}

func (h *harness) click(stage, sha, identifier, login string) {
	h.t.Helper()
	if code := h.deliver("check_run", clickBody(h.t, stage, sha, identifier, login)); code != http.StatusAccepted {
		h.t.Fatalf("%s click answered %d, want 202", identifier, code)
	}
}

// refusedClick clicks a button as login and waits for the neutral
// railyard/pipeline check run that says why it was refused; the state must
// not change.
func (h *harness) refusedClick(stage, sha, identifier, login, why string) {
	h.t.Helper()
	before := h.snapshot()
	h.click(stage, sha, identifier, login)
	var cr githubtest.CheckRun
	h.await("refusal of "+identifier+" by "+login, func() bool {
		for _, c := range h.repo.CheckRuns() {
			if c.Name == "railyard/pipeline" && c.HeadSHA == sha && strings.Contains(c.Summary, "@"+login) && strings.Contains(c.Summary, "**Button:** "+identifier+" on railyard/"+stage) {
				cr = c
				return true
			}
		}
		return false
	})
	if cr.Status != "completed" || cr.Conclusion != "neutral" || !strings.HasPrefix(cr.Title, "Refused: ") || !strings.Contains(cr.Title, why) {
		h.t.Errorf("refused %s: check run %s/%s %q, want neutral and saying %q", identifier, cr.Status, cr.Conclusion, cr.Title, why)
	}
	if after := h.snapshot(); after != before {
		h.t.Errorf("refused %s changed the state:\nbefore %s\nafter  %s", identifier, before, after)
	}
}

// lastDeployment waits for the deployment of env's current job to be the
// newest and reach a final status, and returns it.
func (h *harness) lastDeployment(env string) githubtest.Deployment {
	h.t.Helper()
	var d githubtest.Deployment
	// The stage's own job's deployment: GitHub may still be shown an
	// earlier one while the outbox sends this one.
	job := `"railyard_job":"` + h.stage(env).Job.ID + `"`
	h.await(env+" deployment to finish", func() bool {
		ds := h.deployments(env)
		if len(ds) == 0 {
			return false
		}
		d = ds[len(ds)-1]
		if !strings.Contains(string(d.Payload), job) {
			return false
		}
		n := len(d.Statuses)
		return n > 0 && d.Statuses[n-1].State != "queued" && d.Statuses[n-1].State != "in_progress"
	})
	return d
}

// TestCheckRunButtons: Cancel, Retry and Roll back on Railyard's check runs
// run the engine operation as the person who clicked, and are refused
// (shown as a neutral railyard/pipeline check run) for someone who may not.
func TestCheckRunButtons(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s      - name: flaky
        run: test ! -f $DIR/fail
  - name: staging
    steps:
%s%s`, markStep("compile"), gateStep("staging"), markStep("deploy")))
	const clicker, reader = "clicker", "reader"
	h.repo.SetPermission(clicker, "write", "write")
	h.repo.SetPermission(reader, "read", "read")
	fail := filepath.Join(h.dir, "fail")

	a := h.commitAndPush()
	pid := h.awaitPID("staging", a)
	h.awaitStage("staging", engine.InProgress, a)

	h.run(t, "cancel", func(t *testing.T) {
		h.refusedClick("staging", a, "cancel", reader, "@reader has read permission on this repository; /cancel on staging needs write")
		h.click("staging", a, "cancel", clicker)
		cr := h.awaitCheckRun("railyard/staging", a, "cancelled")
		if !strings.Contains(cr.Summary, "Cancelled by:** @"+clicker) {
			t.Errorf("cancelled check run summary:\n%s", cr.Summary)
		}
		h.awaitStage("staging", engine.Cancelled, a)
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("step process %d still runs after the Cancel button", pid)
		}
		if audit := h.audit(); audit[0].Operation != engine.OpCancel || audit[0].Actor != clicker {
			t.Errorf("newest audit entry %+v, want cancel by %s", audit[0], clicker)
		}
	})

	h.open("staging")
	os.WriteFile(fail, nil, 0o644)
	b := h.commitAndPush()
	h.awaitCheckRun("railyard/build", b, "failure")
	h.awaitStage("build", engine.Failed, b)

	h.run(t, "retry", func(t *testing.T) {
		h.refusedClick("build", b, "retry", reader, "@reader has read permission on this repository; /retry on build needs write")
		os.Remove(fail)
		h.click("build", b, "retry", clicker)
		h.awaitStage("staging", engine.Succeeded, b)
		if !h.hasMark("build:compile:" + short(b) + ":retry") {
			t.Errorf("retry did not re-run build: %v", h.marks())
		}
		if s := h.stage("build"); s.Job.Operation != engine.OpRetry || s.Job.Actor != clicker {
			t.Errorf("build job %s by %s, want retry by %s", s.Job.Operation, s.Job.Actor, clicker)
		}
		cr := h.awaitCheckRun("railyard/build", b, "success")
		if !strings.Contains(cr.Summary, "@"+clicker) {
			t.Errorf("retry check run does not name the clicker:\n%s", cr.Summary)
		}
		d := h.lastDeployment("build")
		if d.Task != "deploy:retry" || d.Ref != b || !strings.Contains(string(d.Payload), `"actor":"`+clicker+`"`) {
			t.Errorf("retry deployment task %q ref %.7s payload %s", d.Task, d.Ref, d.Payload)
		}
	})

	h.run(t, "rollback", func(t *testing.T) {
		// staging's only good revision is b (a was cancelled there).
		h.refusedClick("staging", b, "rollback", clicker, "cannot roll back staging: it has no previous good revision")
		if prev := h.stage("build").PreviousGood(); prev != a {
			t.Fatalf("build's previous good revision is %.7s, want %.7s", prev, a)
		}
		h.refusedClick("build", b, "rollback", reader, "@reader has read permission on this repository; /rollback on build needs write")
		h.click("build", b, "rollback", clicker)
		h.awaitStage("build", engine.RolledBack, a)
		if !h.hasMark("build:compile:" + short(a) + ":rollback") {
			t.Errorf("rollback did not deploy %.7s: %v", a, h.marks())
		}
		d := h.lastDeployment("build")
		last := d.Statuses[len(d.Statuses)-1]
		if d.Task != "deploy:rollback" || d.Ref != a || last.State != "success" || last.Description != "rollback by @"+clicker+": Roll back button" {
			t.Errorf("rollback deployment task %q ref %.7s, last status %s %q", d.Task, d.Ref, last.State, last.Description)
		}
		if !h.stage("build").Blocked || !h.stage("staging").Blocked {
			t.Errorf("rollback should block build and staging: %s", h.describe())
		}
	})

	// A button acts on the revision its check run is on, never on whatever
	// the stage holds by the time someone clicks an older one.
	h.run(t, "a button on an older check run", func(t *testing.T) {
		h.refusedClick("staging", a, "cancel", clicker, fmt.Sprintf("this button is on %s, but staging is now at %s", short(a), short(b)))
		h.refusedClick("build", b, "rollback", clicker, fmt.Sprintf("this button is on %s, but build is now at %s", short(b), short(a)))
	})
}

// statusTable reads the /status reply's table: stage → its cells.
func statusTable(t *testing.T, reply string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	header := false
	for line := range strings.Lines(reply) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case !header:
			if want := []string{"stage", "state", "current", "waiting", "blocked"}; !slices.Equal(cells, want) {
				t.Fatalf("/status table header %v, want %v", cells, want)
			}
			header = true
		case strings.HasPrefix(cells[0], "---"):
		default:
			rows[cells[0]] = cells[1:]
		}
	}
	return rows
}

// TestStatusAndHelpReplies: /status shows each stage's state, current and
// waiting revisions and block, and any stop or patch with actor and
// reason; /help lists every command of docs/reference.md#operations with
// its arguments.
func TestStatusAndHelpReplies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fmt.Sprintf(`
stages:
  - name: build
    steps:
%s  - name: staging
    steps:
%s  - name: prod
    promotion: manual
    steps:
%s`, markStep("compile"), markStep("deploy"), markStep("deploy")))
	a := h.commitAndPush()
	h.awaitStage("staging", engine.Succeeded, a)
	h.comment("/promote stage=prod")
	h.awaitStage("prod", engine.Succeeded, a)
	b := h.commitAndPush()
	h.awaitStage("staging", engine.Succeeded, b)
	h.await("prod to wait for /promote", func() bool { w := h.stage("prod").Waiting; return w != nil && w.SHA == b })

	check := func(reply string, want map[string][]string) {
		t.Helper()
		rows := statusTable(t, reply)
		if len(rows) != len(want) {
			t.Errorf("/status rows %v, want %d stages", rows, len(want))
		}
		for stage, cells := range want {
			got := rows[stage]
			// The waiting cell ends with why it waits; compare its start.
			if len(got) != 4 || got[0] != cells[0] || got[1] != cells[1] || !strings.HasPrefix(got[2], cells[2]) || got[3] != cells[3] {
				t.Errorf("/status row %s = %q, want %q", stage, got, cells)
			}
		}
	}
	sa, sb := "`"+short(a)+"`", "`"+short(b)+"`"
	reply := h.comment("/status")
	check(reply, map[string][]string{
		"build":   {"succeeded", sb, "–", "no"},
		"staging": {"succeeded", sb, "–", "no"},
		"prod":    {"succeeded", sa, sb + " (waiting for /promote stage=prod)", "no"},
	})
	if strings.Contains(reply, "**Stopped**") || strings.Contains(reply, "**Patch mode**") {
		t.Errorf("/status shows a stop or patch not in force:\n%s", reply)
	}

	h.comment(fmt.Sprintf("/rollback stage=staging to=%s reason=bad", a))
	h.awaitStage("staging", engine.RolledBack, a)
	h.comment(fmt.Sprintf("/patch stage=build to=%s reason=hotfix 12", a))
	h.await("the patch to deploy", func() bool {
		s := h.stage("build")
		return s.State == engine.Succeeded && s.Job.Operation == engine.OpPatch
	})
	h.comment("/stop reason=incident 7")
	reply = h.comment("/status")
	blocked := "yes: rollback by @" + user
	check(reply, map[string][]string{
		"build":   {"succeeded", sa, "–", "no"},
		"staging": {"rolled_back", sa, "–", blocked},
		"prod":    {"succeeded", sa, sb + " (", blocked},
	})
	for _, want := range []string{
		"**Stopped** by @" + user + ": incident 7",
		"**Patch mode**: build at " + sa + " by @" + user + ": hotfix 12",
	} {
		if !strings.Contains(reply, want) {
			t.Errorf("/status lacks %q:\n%s", want, reply)
		}
	}

	// Every command of docs/reference.md#operations with each argument as the
	// table writes it ([…] optional; its "[skip=…]" of /rollforward is the
	// same a,b list). Help may offer more optional arguments than these.
	spec := map[string][]string{
		"deploy":      {"sha=SHA", "[reason=…]"},
		"promote":     {"stage=S", "[to=SHA]"},
		"cancel":      {"stage=S", "[to=SHA]", "[reason=…]"},
		"retry":       {"stage=S"},
		"rollback":    {"stage=S", "to=SHA", "[skip=a,b]", "[infra=true]", "reason=…"},
		"rollforward": {"stage=S", "to=SHA", "[skip=a,b]", "[infra=true]", "reason=…"},
		"unblock":     {"stage=S"},
		"stop":        {"reason=…"},
		"resume":      {},
		"patch":       {"stage=S", "[to=SHA]", "reason=…"},
		"release":     {},
		"redeploy":    {"stage=S", "[cache=use|skip]"},
		"restart":     {"stage=S"},
		"shutdown":    {"stage=S", "reason=…"},
		"status":      {},
		"help":        {},
	}
	help := h.comment("/help")
	usages := map[string][]string{}
	for line := range strings.Lines(help) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "- `/")
		if !ok {
			continue
		}
		usage, _, _ := strings.Cut(rest, "`")
		fields := strings.Fields(usage)
		usages[fields[0]] = fields[1:]
	}
	for name, args := range spec {
		got, ok := usages[name]
		if !ok {
			t.Errorf("/help does not list /%s:\n%s", name, help)
			continue
		}
		for _, arg := range args {
			if !slices.Contains(got, arg) {
				t.Errorf("/help lists /%s %v, lacking %s", name, got, arg)
			}
		}
		for _, arg := range got {
			if !strings.HasPrefix(arg, "[") && !slices.Contains(args, arg) {
				t.Errorf("/help makes %s of /%s required; the reference's operations table does not", arg, name)
			}
		}
	}
}
