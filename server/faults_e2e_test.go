package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/redisproc"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/server"
)

// The fault suite of issue #14: each case runs the bot binary as a child
// process on a redis-server the test starts (so that it can stop, kill and
// restart it) and the fake GitHub, injects one fault, and checks what a
// user sees on GitHub and in the stage state once it passes. Each logs one
// line of figures, which bench/faults gathers into a table:
//
//	fault figures: case=NAME recover=D final=D doubled=N lost=N dead=N reruns=N [KEY=VALUE…]
//
// recover is from the end of the fault until /readyz answers 200 again
// (for GitHub's outage: until GitHub gets a write again), final from the
// end of the fault until every stage and every object on GitHub is final,
// reruns the runs of a stage on a revision after its first. The cases run
// shortened unless RAILYARD_FAULTS_LONG=1 (Redis down 2 minutes, GitHub
// down 10 minutes); a known problem fails only with RAILYARD_FAULTS_KNOWN=1
// (RELIABILITY.md, Fault suite):
//
//	RAILYARD_TEST_REDIS_URL=redis://127.0.0.1:6379/7 go test -count=1 -v -run TestFault ./server
//	go run ./bench/faults   # the long variants, and the table

// outageOf is how long a case's fault lasts, short or, with
// RAILYARD_FAULTS_LONG=1, long; and the case's name, kind and that length.
func outageOf(kind string, short, long time.Duration) (time.Duration, string) {
	d := short
	if os.Getenv("RAILYARD_FAULTS_LONG") == "1" {
		d = long
	}
	if d%time.Minute == 0 {
		return d, fmt.Sprintf("%s-%dm", kind, d/time.Minute)
	}
	return d, fmt.Sprintf("%s-%ds", kind, d/time.Second)
}

// faultBed is a child-bot harness on a redis-server the test controls.
type faultBed struct {
	t     *testing.T
	h     *harness
	redis *redisproc.Server
	rdb   *redis.Client
	bin   string
}

// newFaultBed starts redis-server and builds the bot; pipeline has the two
// %s childHarness fills. Like the other real-Redis tests it runs only with
// RAILYARD_TEST_REDIS_URL set (it does not use that Redis: the fault would
// hit the other tests' database), and skips without redis-server.
func newFaultBed(t *testing.T, pipeline string) *faultBed {
	if os.Getenv("RAILYARD_TEST_REDIS_URL") == "" {
		t.Skip("a real-Redis fault test: runs with RAILYARD_TEST_REDIS_URL set and redis-server on PATH")
	}
	if testing.Short() {
		t.Skip("a fault test against real processes; not with -short")
	}
	// Each case has its own redis-server, GitHub and bot, and spends most
	// of its time waiting out the fault and the bot's leases.
	t.Parallel()
	rs := redisproc.Start(t)
	bin := buildBot(t)
	h := childHarness(t, pipeline, rs.URL())
	h.patience = 2 * time.Minute
	return &faultBed{t: t, h: h, redis: rs, rdb: redisClient(t, rs.URL()), bin: bin}
}

// start runs one more bot process; webhooks go to the newest.
func (f *faultBed) start() *childBot {
	f.t.Helper()
	b := startBot(f.t, f.bin, f.h)
	f.h.child = b
	return b
}

// ready reports whether the bot's /readyz answers 200.
func (b *childBot) ready() bool {
	resp, err := http.Get(b.url + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// awaitReady waits for /readyz to answer 200 and returns how long it took
// from since.
func (f *faultBed) awaitReady(b *childBot, since time.Time) time.Duration {
	f.t.Helper()
	f.h.await("/readyz to answer 200 again", b.ready)
	return time.Since(since)
}

// stageIs reports whether a stage's stored state is state with its job at sha.
func (f *faultBed) stageIs(name string, state engine.State, sha string) bool {
	s := storedStage(f.t, f.rdb, name)
	return s != nil && s.State == state && s.Job != nil && s.Job.SHA == sha
}

// dead counts the jobs every queue gave up on, as `bot jobs` lists them.
func (f *faultBed) dead() int {
	f.t.Helper()
	n := 0
	for _, nq := range server.NewQueues(f.rdb, queue.Options{}).All() {
		d, err := nq.Queue.Depth(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		n += int(d.Dead)
	}
	return n
}

// deployed is one stage that must end deployed at one revision.
type deployed struct{ stage, sha string }

// tally counts, on the fake GitHub, the objects made more than once and
// those missing or unfinished: for each want, the stage's check run on the
// revision concluded success and its deployment's newest status is
// success; no check run of any stage is left unfinished; every stage
// shows one check run and one deployment per revision; a deployment has
// one queued status, one final status, and an in_progress per run of its
// stage (the runs of a stage on a revision counted by its marks).
func (f *faultBed) tally(want ...deployed) (doubled, lost int, problems []string) {
	h := f.h
	type key struct{ name, sha string }
	checks := map[key]int{}
	for _, cr := range h.repo.CheckRuns() {
		checks[key{cr.Name, cr.HeadSHA}]++
		if cr.Status != "completed" {
			lost++
			problems = append(problems, fmt.Sprintf("check run %s on %.7s left %s", cr.Name, cr.HeadSHA, cr.Status))
		}
	}
	for k, n := range checks {
		if n > 1 {
			doubled += n - 1
			problems = append(problems, fmt.Sprintf("%d check runs %s on %.7s", n, k.name, k.sha))
		}
	}
	deploys := map[key]int{}
	for _, d := range h.repo.Deployments() {
		deploys[key{d.Environment + " " + d.Task, d.Ref}]++
		runs := 0
		for _, m := range h.marks() {
			if strings.HasPrefix(m, d.Environment+":") && strings.Contains(m, ":"+short(d.Ref)+":") {
				runs++
			}
		}
		per := map[string]int{}
		for _, st := range d.Statuses {
			switch st.State {
			case "inactive": // GitHub's own, when a later deployment succeeds
			case "in_progress", "queued":
				per[st.State]++
			default:
				per["final"]++
			}
		}
		extra := max(0, per["queued"]-1) + max(0, per["final"]-1) + max(0, per["in_progress"]-max(1, runs))
		if extra > 0 {
			doubled += extra
			problems = append(problems, fmt.Sprintf("deployment %s of %.7s has statuses %v after %d runs", d.Environment, d.Ref, statesOf(d.Statuses), runs))
		}
	}
	for k, n := range deploys {
		if n > 1 {
			doubled += n - 1
			problems = append(problems, fmt.Sprintf("%d deployments %s of %.7s", n, k.name, k.sha))
		}
	}
	for _, w := range want {
		if cr, ok := h.checkRun("railyard/"+w.stage, w.sha); !ok || cr.Conclusion != "success" {
			lost++
			problems = append(problems, fmt.Sprintf("no successful check run railyard/%s on %.7s", w.stage, w.sha))
		}
		ok := false
		for _, d := range h.deployments(w.stage) {
			ok = ok || d.Ref == w.sha && finalState(d) == "success"
		}
		if !ok {
			lost++
			problems = append(problems, fmt.Sprintf("no successful deployment of %.7s to %s", w.sha, w.stage))
		}
	}
	return doubled, lost, problems
}

// finalState is the newest status Railyard gave a deployment, passing
// over the inactive GitHub gives it when a later one succeeds.
func finalState(d githubtest.Deployment) string {
	for i := len(d.Statuses) - 1; i >= 0; i-- {
		if st := d.Statuses[i].State; st != "inactive" {
			return st
		}
	}
	return ""
}

// reruns counts the runs of a stage on a revision after its first, by the
// marks its first step leaves.
func reruns(h *harness) int {
	runs := map[string]int{}
	for _, m := range h.marks() {
		f := strings.Split(m, ":")
		if len(f) == 4 {
			runs[f[0]+":"+f[2]+":"+f[3]]++
		}
	}
	n := 0
	for _, r := range runs {
		n += r - 1
	}
	return n
}

// faultFigures are one case's figures, for bench/faults: recover and final
// are measured by the case, the counts by report.
type faultFigures struct {
	recover, final time.Duration
	extra          []string // more key=value figures of the case
}

// report tallies GitHub (want as for tally) and the dead letters, logs the
// figures in the line bench/faults reads, and fails the test on anything
// doubled, lost or dead-lettered.
func (f *faultBed) report(name string, fig faultFigures, want ...deployed) {
	f.t.Helper()
	f.reportKnown(name, fig, nil, want...)
}

// reportKnown is report for a case with known problems: tally's problems
// listed in known are logged, not failed, unless RAILYARD_FAULTS_KNOWN=1;
// one that is no longer seen fails, so that the list and RELIABILITY.md
// follow a fix.
func (f *faultBed) reportKnown(name string, fig faultFigures, known []string, want ...deployed) {
	f.t.Helper()
	doubled, lost, problems := f.tally(want...)
	dead := f.dead()
	recover := "-" // the case has no moment of recovery to measure
	if fig.recover > 0 {
		recover = fig.recover.Round(time.Millisecond).String()
	}
	line := fmt.Sprintf("fault figures: case=%s recover=%s final=%v doubled=%d lost=%d dead=%d reruns=%d", name,
		recover, fig.final.Round(100*time.Millisecond), doubled, lost, dead, reruns(f.h))
	strict := os.Getenv("RAILYARD_FAULTS_KNOWN") == "1"
	if len(known) > 0 && !strict {
		fig.extra = append(fig.extra, fmt.Sprintf("known_problems=%d", len(known)))
	}
	f.t.Log(strings.Join(append([]string{line}, fig.extra...), " "))
	for _, p := range problems {
		if slices.Contains(known, p) && !strict {
			f.t.Logf("known problem (fails with RAILYARD_FAULTS_KNOWN=1): %s", p)
			continue
		}
		f.t.Error(p)
	}
	for _, k := range known {
		if !slices.Contains(problems, k) {
			f.t.Errorf("known problem no longer seen (update the test and RELIABILITY.md): %s", k)
		}
	}
	if dead > 0 {
		f.t.Errorf("%d jobs dead-lettered", dead)
	}
}

func statesOf(sts []githubtest.DeploymentStatus) []string {
	var out []string
	for _, st := range sts {
		out = append(out, st.State)
	}
	return out
}

// withCompile is a build stage whose mark step is followed by a compile
// step running script, then staging; the two %s are childHarness's.
func withCompile(script string) string {
	return "\nstages:\n  - name: build\n    steps:\n%s      - name: compile\n        run: " + script +
		"\n  - name: staging\n    steps:\n%s"
}

// TestFaultRedisDownBriefly stops Redis (a clean shutdown, data kept)
// while build's step runs (it takes 3 s, so it ends during the outage;
// it marks its start and end in $DIR/compile), for 10 s, and starts it again with its data.
// The pipeline completes; nothing on GitHub is doubled. A push delivered
// during the outage is answered 503: GitHub does not redeliver it by
// itself, and the operator's redelivery after is accepted and deploys.
func TestFaultRedisDownBriefly(t *testing.T) {
	f := newFaultBed(t, withCompile("echo start >> $DIR/compile; sleep 3; echo end >> $DIR/compile"))
	h := f.h
	bot := f.start()
	first := h.commit()
	bot.push(first)
	h.await("build's compile step to start", func() bool { return strings.Count(readFile(h, "compile"), "start") == 1 })

	f.redis.Stop()
	down := time.Now()
	second := h.commit()
	const during = "delivery-during-the-outage"
	if code := h.deliverAs("push", during, pushBody(t, second)); code != http.StatusServiceUnavailable {
		t.Errorf("push during the outage answered %d, want 503", code)
	}
	time.Sleep(time.Until(down.Add(10 * time.Second))) // the outage itself
	f.redis.Restart()
	back := time.Now()

	fig := faultFigures{recover: f.awaitReady(bot, back)}
	// The operator redelivers the failed delivery from the App's settings.
	if code := h.deliverAs("push", during, pushBody(t, second)); code != http.StatusAccepted {
		t.Fatalf("redelivery after the outage answered %d, want 202", code)
	}
	h.await("both revisions through build and the second through staging", func() bool {
		return f.stageIs("build", engine.Succeeded, second) && f.stageIs("staging", engine.Succeeded, second) &&
			f.settled()
	})
	fig.final = time.Since(back)
	fig.extra = append(fig.extra, "github_writes_after="+firstWriteAfter(h, back).Round(time.Millisecond).String())
	// The step's end was known and the stage lock still the run's: the run
	// records it once Redis is back rather than have the step run again.
	if n := reruns(h); n != 0 {
		t.Errorf("%d stage runs again after the outage, want none: %v", n, h.marks())
	}
	if c := strings.Count(readFile(h, "compile"), "start"); c != 2 {
		t.Errorf("build's compile step started %d times, want 2 (once per revision)", c)
	}
	f.report("redis-down-10s", fig, deployed{"build", first}, deployed{"build", second}, deployed{"staging", second})
}

// readFile returns a file of the marks directory, or "".
func readFile(h *harness, name string) string {
	data, _ := os.ReadFile(filepath.Join(h.dir, name))
	return string(data)
}

// settled reports whether Railyard has nothing left to send to GitHub
// and GitHub shows every check run completed.
func (f *faultBed) settled() bool {
	for _, cr := range f.h.repo.CheckRuns() {
		if cr.Status != "completed" {
			return false
		}
	}
	return outboxIdle(f.rdb)
}

// TestFaultRedisDownLong stops Redis in the middle of build's long step
// (fencingPipeline: its first run would sleep for 10 minutes and takes 5 s
// to stop after SIGTERM) for longer than the run may go without renewing
// its stage lock: 25 s, or 2 minutes with RAILYARD_FAULTS_LONG=1. The run
// stops its step before the lock could pass to anyone else; once Redis is
// back the job runs again and completes, once on GitHub.
func TestFaultRedisDownLong(t *testing.T) {
	outage, name := outageOf("redis-down", 25*time.Second, 2*time.Minute)
	f := newFaultBed(t, fencingPipeline)
	h := f.h
	h.patience = outage + 2*time.Minute
	bot := f.start()
	sha := h.commit()
	bot.push(sha)
	h.await("compile to run and GitHub to show the job running", func() bool {
		ds := h.deployments("build")
		return len(readRuns(t, h)) == 1 && len(ds) == 1 && lastState(ds[0]) == "in_progress" && outboxIdle(f.rdb)
	})

	f.redis.Stop()
	down := time.Now()
	time.Sleep(time.Until(down.Add(outage))) // the outage itself
	f.redis.Restart()
	back := time.Now()

	fig := faultFigures{recover: f.awaitReady(bot, back)}
	h.await("staging to succeed and every check run to complete", func() bool {
		return f.stageIs("build", engine.Succeeded, sha) && f.stageIs("staging", engine.Succeeded, sha) && f.settled()
	})
	fig.final = time.Since(back)
	fig.extra = append(fig.extra, "github_writes_after="+firstWriteAfter(h, back).Round(time.Millisecond).String())

	runs := readRuns(t, h)
	if len(runs) != 2 {
		t.Fatalf("compile ran %d times, want the stopped run and one after: %+v", len(runs), runs)
	}
	first, second := runs[0], runs[1]
	// The stage lock lasts 30 s from its last renewal, at most one renewal
	// (0.5 s) before Redis went down: the step must be gone by then.
	if !first.stopped || first.end.Sub(down) >= 30*time.Second {
		t.Errorf("the run cut off from Redis ended %v after Redis went down (stopped by SIGTERM: %v), want stopped within the 30 s stage lock",
			first.end.Sub(down).Round(time.Millisecond), first.stopped)
	}
	overlap := max(0, first.end.Sub(second.start))
	fig.extra = append(fig.extra, "at_once="+overlap.Round(time.Millisecond).String())
	if overlap > 0 {
		t.Errorf("the second run started %v before the first ended", overlap)
	}
	t.Logf("the step was stopped %v after Redis went down; it ran again %v after Redis came back",
		first.end.Sub(down).Round(time.Millisecond), second.start.Sub(back).Round(time.Millisecond))
	f.report(name, fig, deployed{"build", sha}, deployed{"staging", sha})
}

// TestFaultRedisComesBackEmpty kills Redis in the middle of build's step
// (which waits for the file $DIR/open) and starts it again without its data, as a restart without persistence
// or a failover to an empty replica does. The bot heals with no restart:
// /readyz answers 200 again once its queues are back, and GitHub's
// redelivery of the push, whose delivery id was forgotten with the rest,
// deploys it.
func TestFaultRedisComesBackEmpty(t *testing.T) {
	f := newFaultBed(t, withCompile("while [ ! -f $DIR/open ]; do sleep 0.05; done"))
	h := f.h
	bot := f.start()
	sha := h.commit()
	const delivery = "the-push-redis-forgot"
	if code := h.deliverAs("push", delivery, pushBody(t, sha)); code != http.StatusAccepted {
		t.Fatalf("push answered %d, want 202", code)
	}
	h.await("build to run and GitHub to show it running", func() bool {
		ds := h.deployments("build")
		return len(ds) == 1 && lastState(ds[0]) == "in_progress" && outboxIdle(f.rdb)
	})

	f.redis.Kill()
	f.redis.RestartEmpty()
	back := time.Now()
	fig := faultFigures{recover: f.awaitReady(bot, back)}
	if err := os.WriteFile(filepath.Join(h.dir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The operator redelivers the push from the App's settings.
	if code := h.deliverAs("push", delivery, pushBody(t, sha)); code != http.StatusAccepted {
		t.Fatalf("redelivered push answered %d, want 202", code)
	}
	h.await("the redelivered push through staging", func() bool {
		cr, ok := h.checkRun("railyard/staging", sha)
		return f.stageIs("build", engine.Succeeded, sha) && f.stageIs("staging", engine.Succeeded, sha) &&
			ok && cr.Conclusion == "success" && outboxIdle(f.rdb)
	})
	fig.final = time.Since(back)
	// What RELIABILITY.md says a data loss leaves: the run that was going
	// on is forgotten, its check run stays in_progress beside the new
	// run's, and its deployment beside the new one.
	known := []string{
		fmt.Sprintf("check run railyard/build on %.7s left in_progress", sha),
		fmt.Sprintf("2 check runs railyard/build on %.7s", sha),
		fmt.Sprintf("2 deployments build deploy of %.7s", sha),
	}
	f.reportKnown("redis-empty", fig, known, deployed{"build", sha}, deployed{"staging", sha})
}

// markedStages is build then staging, each with childHarness's mark step.
const markedStages = "\nstages:\n  - name: build\n    steps:\n%s  - name: staging\n    steps:\n%s"

// TestFaultGitHubDown makes the fake GitHub answer 502 to everything, token
// requests and downloads included, for 20 s (10 minutes with
// RAILYARD_FAULTS_LONG=1), starting as build's run downloads the revision,
// while a second push and a /status command arrive. Nothing is given up:
// once GitHub answers again both revisions go through, the command is
// answered once, nothing shows twice; build's check run should say it was
// waiting for GitHub (a known problem when the stage's retry comes first).
func TestFaultGitHubDown(t *testing.T) {
	outage, name := outageOf("github-502", 20*time.Second, 10*time.Minute)
	f := newFaultBed(t, markedStages)
	h := f.h
	// After a long outage a job may wait out a full backoff step (5 min).
	h.patience = outage + 7*time.Minute
	bot := f.start()
	tarball := "/repos/" + repoName + "/tarball/"
	release := h.gh.Hold(http.MethodGet, tarball)
	first := h.commit()
	bot.push(first)
	h.await("build to ask GitHub for the revision", func() bool { return len(requestsTo(h, http.MethodGet, tarball, time.Time{})) > 0 })

	restore := h.gh.FailAll(http.StatusBadGateway)
	down := time.Now()
	release()
	second := h.commit()
	bot.push(second)
	command := 900000 + commentIDs.Add(1)
	h.deliverComment(command, user, "/status")
	time.Sleep(time.Until(down.Add(outage))) // the outage itself
	restore()
	up := time.Now()

	h.await("both revisions through, the command answered and every write sent", func() bool {
		return f.stageIs("build", engine.Succeeded, second) && f.stageIs("staging", engine.Succeeded, second) &&
			len(h.repo.Reactions(command)) >= 2 && f.settled()
	})
	// Recovered: GitHub gets writes again.
	fig := faultFigures{recover: firstWriteAfter(h, up), final: time.Since(up)}
	if cs := h.repo.Comments(1); len(cs) != 1 || !strings.Contains(cs[0].Body, "| stage | state |") {
		t.Errorf("%d comments after /status, want its one reply: %+v", len(cs), cs)
	}
	// Build's check run should say it waits for GitHub once GitHub answers
	// (every request after up succeeds). Known problem: the outbox waits
	// out its backoff (up to a minute), the stage's job its own (up to 5
	// minutes); when the job's retry comes first, the stage no longer
	// waits by the time the outbox sends, and the note is merged into the
	// later update, never shown.
	const waiting = "Waiting for GitHub"
	shown := false
	for _, r := range h.gh.Requests() {
		if (r.OperationID == "checks/create" || r.OperationID == "checks/update") && !r.At.Before(up) &&
			strings.Contains(string(r.Body), waiting) {
			shown = true
		}
	}
	switch {
	case shown:
	case os.Getenv("RAILYARD_FAULTS_KNOWN") == "1":
		t.Errorf("build's check run never showed %q", waiting)
	default:
		t.Logf("known problem (fails with RAILYARD_FAULTS_KNOWN=1): build's check run never showed %q", waiting)
	}
	fig.extra = append(fig.extra, fmt.Sprintf("waiting_shown=%v", shown))
	f.report(name, fig, deployed{"build", first}, deployed{"build", second}, deployed{"staging", second})
}

// firstWriteAfter is how long after since GitHub received its first write
// (a POST or PATCH), or 0 if none came.
func firstWriteAfter(h *harness, since time.Time) time.Duration {
	for _, r := range h.gh.Requests() {
		if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && !r.At.Before(since) {
			return r.At.Sub(since)
		}
	}
	return 0
}

// requestsTo returns the requests GitHub received with method whose path
// starts with prefix, at or after since.
func requestsTo(h *harness, method, prefix string, since time.Time) []githubtest.Request {
	var out []githubtest.Request
	for _, r := range h.gh.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) && !r.At.Before(since) {
			out = append(out, r)
		}
	}
	return out
}

// lostAnswersPipeline deploys staging with a workflow step, so that a
// dispatch can lose its answer too.
const lostAnswersPipeline = `
stages:
  - name: build
    steps:
` + "%s" + `  - name: staging
    steps:
` + "%s" + `      - name: workflow
        workflow: deploy.yml
        inputs: { environment: staging-eu }
`

// TestFaultLostAnswers has GitHub perform creates and lose their answers
// (a 502 after the fact, or the connection dropped without a byte) for
// check runs, deployments, deployment statuses, a comment and a workflow
// dispatch, against a real bot process: GitHub shows one of each.
func TestFaultLostAnswers(t *testing.T) {
	f := newFaultBed(t, lostAnswersPipeline)
	h := f.h
	h.files[".github/workflows/deploy.yml"] = githubtest.File{Content: deployWorkflow}
	bot := f.start()
	repo := "/repos/" + repoName
	h.gh.LoseAnswers("POST", repo+"/check-runs", 2, githubtest.Answer502)
	h.gh.LoseAnswers("POST", repo+"/deployments", 1, githubtest.DropConnection) // the first creation
	h.gh.LoseAnswers("POST", repo+"/deployments/", 2, githubtest.Answer502)     // then two statuses
	h.gh.LoseAnswers("POST", repo+"/issues/1/comments", 1, githubtest.DropConnection)
	h.gh.LoseAnswers("POST", repo+"/actions/workflows/", 1, githubtest.Answer502)
	start := time.Now()
	sha := h.commit()
	bot.push(sha)

	run := h.awaitRun(1)
	h.repo.StartRun(run.ID)
	h.workflowRunWebhook(run.ID, "requested")
	h.repo.CompleteRun(run.ID, "success")
	h.workflowRunWebhook(run.ID, "completed")
	got := h.ask(user, "/status")
	h.await("staging to succeed and every write sent", func() bool {
		return f.stageIs("staging", engine.Succeeded, sha) && f.settled()
	})
	fig := faultFigures{final: time.Since(start)}

	if got.replies != 1 {
		t.Errorf("%d replies to /status, want 1", got.replies)
	}
	// Found, not made again: one create of each, and one workflow run.
	for op, want := range map[string]int{"checks/create": 2, "repos/create-deployment": 2, "actions/create-workflow-dispatch": 1} {
		if n := h.gh.Count(op); n != want {
			t.Errorf("%d requests %s, want %d", n, op, want)
		}
	}
	if runs := h.repo.WorkflowRuns(); len(runs) != 1 {
		t.Errorf("%d workflow runs, want 1", len(runs))
	}
	f.report("lost-answers", fig, deployed{"build", sha}, deployed{"staging", sha})
}
