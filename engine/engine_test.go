package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/report"
)

// opCase is one row of the operations table (docs/reference.md#operations)
// in one state: an operation either happens (want) or is refused with a
// reason (refusal).
type opCase struct {
	name string
	// setup changes settled() into the state of the case; nil seeds nothing
	// (a repository never seen).
	setup func(p *Pipeline)
	empty bool
	do    opFunc
	// refusal is the whole message of the expected refusal.
	refusal string
	want    want
	check   func(t *testing.T, p *Pipeline)
	// checkW looks at more than the state: the audit log, the reports.
	checkW func(t *testing.T, fx Effects)
}

// want is the stage an allowed operation acts on, as it is afterwards.
type want struct {
	stage   string
	state   State
	op      Operation // of the stage's job
	sha     string
	blocked bool
	waiting string   // SHA of the waiting revision; "" for none
	queued  []string // stages whose jobs went on the queue
	message string   // part of the reply
}

func retry(stage string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Retry(req, stage, at) }
}

func cancel(stage string) opFunc { return cancelAt(stage, "") }

func cancelAt(stage, sha string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Cancel(req, stage, sha, at) }
}

func promote(stage, sha string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Promote(req, stage, sha, at) }
}

func rollback(stage, sha string, skip ...string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) {
		return p.Rollback(req, Move{Stage: stage, SHA: sha, Skip: skip}, at)
	}
}

func rollforward(stage, sha string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) {
		return p.RollForward(req, Move{Stage: stage, SHA: sha}, at)
	}
}

func deploy(sha string, seq int64) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Deploy(req, sha, seq, at) }
}

func deployByHand(sha string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.DeployByHand(req, sha, at) }
}

// auditIs checks the newest audit entry's operation and actor.
func auditIs(op Operation) func(t *testing.T, fx Effects) {
	return func(t *testing.T, fx Effects) {
		if a := fx.Audit; len(a) != 1 || a[0].Operation != op || a[0].Actor != "alice" {
			t.Errorf("audit entries %+v, want one: %s by alice", a, op)
		}
	}
}

// waitingButtons checks the buttons of the check run of stage's waiting revision.
func waitingButtons(stage string, want ...string) func(t *testing.T, fx Effects) {
	return func(t *testing.T, fx Effects) {
		var cr report.CheckRun
		ok := false
		for _, w := range fx.GitHub {
			if w.CheckRun != nil && w.CheckRun.Name == "railyard/"+stage && w.CheckRun.Status == "queued" {
				cr, ok = *w.CheckRun, true
			}
		}
		var got []string
		for _, a := range cr.Buttons {
			got = append(got, a.Identifier)
		}
		if !ok || !slices.Equal(got, want) {
			t.Errorf("the waiting revision's check run has buttons %v (reported: %v), want %v", got, ok, want)
		}
	}
}

func stop(p *Pipeline, req Request, at Moment) (Effects, error)    { return p.Stop(req, at) }
func resume(p *Pipeline, req Request, at Moment) (Effects, error)  { return p.Resume(req, at) }
func release(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Release(req, at) }

func patch(stage, sha string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Patch(req, stage, sha, at) }
}

func unblock(stage string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Unblock(req, stage, at) }
}

func redeploy(stage string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Redeploy(req, stage, "skip", at) }
}

func restart(stage string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Restart(req, stage, at) }
}

func shutdown(stage string) opFunc {
	return func(p *Pipeline, req Request, at Moment) (Effects, error) { return p.Shutdown(req, stage, at) }
}

// in puts a stage in a state with its job at sha.
func in(stage string, st State, sha string) func(p *Pipeline) {
	return func(p *Pipeline) {
		s := p.Stage(stage)
		s.State = st
		s.Job = &Job{ID: "job-" + stage + "-" + string(st), Stage: stage, SHA: sha, Operation: OpDeploy, Actor: "carol", ConfigSHA: shaB}
	}
}

// failedAs makes stage's last job a failed job like j, at shaB.
func failedAs(stage string, j Job, blocked bool) func(p *Pipeline) {
	return func(p *Pipeline) {
		s := p.Stage(stage)
		j.ID, j.Stage, j.SHA, j.Actor, j.ConfigSHA = "failed-"+stage, stage, shaB, "carol", shaB
		s.State, s.Job = Failed, &j
		if blocked {
			s.Blocked, s.BlockedBy = true, string(j.Operation)+" by @carol"
		}
	}
}

// in2 puts a stage in a state, keeping its job.
func stateIs(stage string, st State) func(p *Pipeline) {
	return func(p *Pipeline) { p.Stage(stage).State = st }
}

func stopped(p *Pipeline) { p.Stopped = &Mode{Actor: "bob", Reason: "incident"} }
func patched(p *Pipeline) {
	p.Patched = &Mode{Actor: "bob", Reason: "hotfix", Stage: "staging", SHA: shaB}
}

func both(fs ...func(p *Pipeline)) func(p *Pipeline) {
	return func(p *Pipeline) {
		for _, f := range fs {
			f(p)
		}
	}
}

// waitingIn makes sha wait in stage for the reason hold.
func waitingIn(stage, sha, hold string) func(p *Pipeline) {
	return func(p *Pipeline) {
		p.Stage(stage).Waiting = &Job{ID: "waiting-" + stage, Stage: stage, SHA: sha, Operation: OpDeploy, Actor: "carol", ConfigSHA: shaB, Hold: hold}
	}
}

var allStates = []State{Idle, Queued, InProgress, Cancelling, Cancelled, Failed, Succeeded, RollingBack, RolledBack, RollingForward, RolledForward}

// stateCases covers docs/reference.md#operations operation by operation.
func stateCases() []opCase {
	var cases []opCase

	// deploy: any state; held while stopped, patched, blocked or busy.
	cases = append(cases,
		opCase{name: "deploy/first push", empty: true, do: deploy(shaC, 1),
			want: want{stage: "build", state: Queued, op: OpDeploy, sha: shaC, queued: []string{"build"}, message: "Deploying ccccccc to build."}},
		opCase{name: "deploy/build busy", setup: in("build", InProgress, shaB), do: deploy(shaC, 3),
			want: want{stage: "build", state: InProgress, op: OpDeploy, sha: shaB, waiting: shaC}},
		opCase{name: "deploy/stopped", setup: stopped, do: deploy(shaC, 3),
			want:  want{stage: "build", state: Succeeded, op: OpDeploy, sha: shaB, waiting: shaC},
			check: holdIs("build", "held: the pipeline is stopped by @bob: incident")},
		opCase{name: "deploy/patched", setup: patched, do: deploy(shaC, 3),
			want:  want{stage: "build", state: Succeeded, op: OpDeploy, sha: shaB, waiting: shaC},
			check: holdIs("build", "held: patch mode (staging at bbbbbbb by @bob)")},
		opCase{name: "deploy/blocked", setup: func(p *Pipeline) { p.Stage("build").Blocked, p.Stage("build").BlockedBy = true, "rollback by @bob" }, do: deploy(shaC, 3),
			want:   want{stage: "build", state: Succeeded, op: OpDeploy, sha: shaB, waiting: shaC, blocked: true},
			check:  holdIs("build", "held: build is blocked (rollback by @bob); /unblock stage=build"),
			checkW: waitingButtons("build", "unblock", "cancel")},
	)

	// deploy by hand (/deploy sha=…): as a push, recorded as the person's.
	cases = append(cases,
		opCase{name: "deploy by hand/at rest", do: deployByHand(shaC),
			want:   want{stage: "build", state: Queued, op: OpDeploy, sha: shaC, queued: []string{"build"}, message: "Deploying ccccccc to build."},
			checkW: auditIs(OpDeploy)},
		opCase{name: "deploy by hand/older than the last push", do: deployByHand(shaA),
			want: want{stage: "build", state: Queued, op: OpDeploy, sha: shaA, queued: []string{"build"}}},
		opCase{name: "deploy by hand/stopped", setup: stopped, do: deployByHand(shaC),
			want:  want{stage: "build", state: Succeeded, op: OpDeploy, sha: shaB, waiting: shaC, message: "Deploying ccccccc to build. It waits: held: the pipeline is stopped by @bob: incident."},
			check: holdIs("build", "held: the pipeline is stopped by @bob: incident")},
		opCase{name: "deploy/a push is audited as a push", do: deploy(shaC, 3),
			want:   want{stage: "build", state: Queued, op: OpDeploy, sha: shaC, queued: []string{"build"}},
			checkW: auditIs(OpPush)},
	)

	// promote: the revision succeeded in the previous stage.
	cases = append(cases,
		opCase{name: "promote/previous current", do: promote("prod", ""),
			want: want{stage: "prod", state: Queued, op: OpPromote, sha: shaB, queued: []string{"prod"}, message: "Promoting bbbbbbb to prod."}},
		opCase{name: "promote/older good revision", setup: in("prod", Succeeded, shaB), do: promote("prod", shaA),
			want: want{stage: "prod", state: Queued, op: OpPromote, sha: shaA, queued: []string{"prod"}}},
		opCase{name: "promote/the waiting revision keeps its job", setup: waitingIn("prod", shaB, "waiting for /promote stage=prod"), do: promote("prod", shaB),
			want: want{stage: "prod", state: Queued, op: OpPromote, sha: shaB, queued: []string{"prod"}},
			check: func(t *testing.T, p *Pipeline) {
				if id := p.Stage("prod").Job.ID; id != "waiting-prod" {
					t.Errorf("promotion made job %s; want the waiting job, so it keeps its check run", id)
				}
			}},
		opCase{name: "promote/first stage", do: promote("build", shaB),
			refusal: "cannot promote build: it is the first stage; pushes to main deploy it"},
		opCase{name: "promote/not succeeded before", do: promote("prod", shaC),
			refusal: "cannot promote prod: ccccccc has not succeeded in staging"},
		opCase{name: "promote/nothing to promote", setup: func(p *Pipeline) { p.Stage("staging").Current, p.Stage("staging").Good = "", nil }, do: promote("prod", ""),
			refusal: "cannot promote prod: staging has no deployed revision to promote"},
		opCase{name: "promote/stopped", setup: stopped, do: promote("prod", ""),
			refusal: "cannot promote prod: the pipeline is stopped by @bob (incident); /resume first"},
		opCase{name: "promote/patched", setup: patched, do: promote("prod", ""),
			refusal: "cannot promote prod: the pipeline is in patch mode (staging at bbbbbbb by @bob); /release first"},
	)

	// cancel: queued (not started yet: it ends at once), in_progress,
	// rolling_back, rolling_forward.
	for _, st := range allStates {
		c := opCase{name: "cancel/" + string(st), setup: in("prod", st, shaB), do: cancel("prod")}
		switch st {
		case Queued:
			c.want = want{stage: "prod", state: Cancelled, op: OpDeploy, sha: shaB, message: "Cancelled the queued deploy of prod at bbbbbbb before it started."}
			c.checkW = func(t *testing.T, fx Effects) {
				cr, ok := checkRunIn(fx, "job-prod-queued")
				if !ok || cr.Conclusion != "cancelled" || !strings.Contains(cr.Summary, "Cancelled by:** @alice") {
					t.Errorf("the cancelled queued job's check run: %+v", cr)
				}
			}
		case InProgress, RollingBack, RollingForward:
			c.want = want{stage: "prod", state: Cancelling, op: OpDeploy, sha: shaB, message: "Cancelling deploy of prod at bbbbbbb."}
			c.check = func(t *testing.T, p *Pipeline) {
				if by := p.Stage("prod").Job.CancelledBy; by != "alice" {
					t.Errorf("job cancelled by %q, want alice", by)
				}
			}
		default:
			c.refusal = fmt.Sprintf("cannot cancel prod: it is %s, not running, and no revision waits for it", st)
		}
		cases = append(cases, c)
	}
	// cancel drops a waiting revision: the only thing there, or named.
	dropped := func(t *testing.T, p *Pipeline) {
		if w := p.Stage("prod").Waiting; w != nil {
			t.Errorf("prod still waits with %.7s", w.SHA)
		}
	}
	cases = append(cases,
		opCase{name: "cancel/waiting for promote", setup: waitingIn("prod", shaB, "waiting for /promote stage=prod"), do: cancel("prod"),
			want: want{stage: "prod", state: Succeeded, op: OpDeploy, sha: shaA, message: "Dropped the deploy of bbbbbbb that waited for prod."}, check: dropped,
			checkW: func(t *testing.T, fx Effects) {
				if cr, ok := checkRunIn(fx, "waiting-prod"); !ok || cr.Status != "completed" || cr.Conclusion != "cancelled" || !strings.Contains(cr.Summary, "Cancelled by:** @alice") {
					t.Errorf("the dropped revision's check run: %+v", cr)
				}
				if deploysIn(fx, "waiting-prod") {
					t.Error("the dropped revision, which never started, got a deployment")
				}
			}},
		opCase{name: "cancel/waiting, named, while another runs", setup: both(in("prod", InProgress, shaA), waitingIn("prod", shaB, "waiting for prod to finish aaaaaaa")), do: cancelAt("prod", shaB),
			want: want{stage: "prod", state: InProgress, op: OpDeploy, sha: shaA, message: "Dropped the deploy of bbbbbbb"}, check: dropped},
		opCase{name: "cancel/running, named, while another waits", setup: both(in("prod", InProgress, shaA), waitingIn("prod", shaB, "waiting for prod to finish aaaaaaa")), do: cancelAt("prod", shaA),
			want: want{stage: "prod", state: Cancelling, op: OpDeploy, sha: shaA, waiting: shaB, message: "Cancelling deploy of prod at aaaaaaa."}},
		opCase{name: "cancel/queued with one waiting", setup: both(in("prod", Queued, shaA), waitingIn("prod", shaB, "waiting for prod to finish aaaaaaa")), do: cancel("prod"),
			want: want{stage: "prod", state: Queued, op: OpDeploy, sha: shaB, queued: []string{"prod"}, message: "Cancelled the queued deploy of prod at aaaaaaa"}},
		opCase{name: "cancel/succeeded with one waiting", setup: both(in("prod", Succeeded, shaA), waitingIn("prod", shaB, "held: prod is blocked")), do: cancelAt("prod", shaB),
			want: want{stage: "prod", state: Succeeded, op: OpDeploy, sha: shaA, message: "Dropped the deploy of bbbbbbb"}, check: dropped},
		opCase{name: "cancel/cancelling with one waiting", setup: both(in("prod", Cancelling, shaA), waitingIn("prod", shaB, "waiting for prod to finish aaaaaaa")), do: cancel("prod"),
			refusal: "cannot cancel prod: it is cancelling, not running; to drop bbbbbbb, which waits for it, give to=bbbbbbb"},
		opCase{name: "cancel/a revision not there", setup: waitingIn("prod", shaB, "waiting for /promote stage=prod"), do: cancelAt("prod", shaC),
			refusal: "cannot cancel prod: ccccccc neither runs nor waits there"},
	)

	// retry: failed or cancelled only; a deploy not while stopped or patched.
	for _, st := range allStates {
		c := opCase{name: "retry/" + string(st), setup: in("prod", st, shaB), do: retry("prod")}
		if st == Failed || st == Cancelled {
			c.want = want{stage: "prod", state: Queued, op: OpRetry, sha: shaB, queued: []string{"prod"}, message: "Retrying deploy of prod at bbbbbbb."}
			c.check = func(t *testing.T, p *Pipeline) {
				if prev := p.Stage("prod").Job.Previous; prev != shaA {
					t.Errorf("retry's previous revision %.7s, want the current aaaaaaa", prev)
				}
			}
		} else {
			c.refusal = fmt.Sprintf("cannot retry prod: it is %s, not failed or cancelled", st)
		}
		cases = append(cases, c)
	}
	cases = append(cases,
		opCase{name: "retry/failed but stopped", setup: both(in("prod", Failed, shaB), stopped), do: retry("prod"),
			refusal: "cannot retry prod: the pipeline is stopped by @bob (incident); /resume first"},
		// A retry repeats the failed job as it was: a failed rollback is
		// rolled back again, with its skips and infra, blocks kept.
		opCase{name: "retry/failed rollback", setup: failedAs("prod", Job{Operation: OpRollback, Skip: []string{"deploy"}, Infra: true}, true),
			do:   retry("prod"),
			want: want{stage: "prod", state: Queued, op: OpRollback, sha: shaB, blocked: true, queued: []string{"prod"}, message: "Retrying rollback of prod at bbbbbbb."},
			check: func(t *testing.T, p *Pipeline) {
				if j := p.Stage("prod").Job; !slices.Equal(j.Skip, []string{"deploy"}) || !j.Infra || j.Actor != "alice" {
					t.Errorf("retried rollback skips %v infra=%v by %s; want the failed job's skips and infra, by alice", j.Skip, j.Infra, j.Actor)
				}
			}},
		opCase{name: "retry/failed auto-rollback", setup: failedAs("prod", Job{Operation: OpAutoRollback}, true),
			do:   retry("prod"),
			want: want{stage: "prod", state: Queued, op: OpAutoRollback, sha: shaB, blocked: true, queued: []string{"prod"}}},
		// Rollbacks run while the pipeline is stopped; so do their retries.
		opCase{name: "retry/failed rollback while stopped", setup: both(failedAs("prod", Job{Operation: OpRollback}, true), stopped),
			do:   retry("prod"),
			want: want{stage: "prod", state: Queued, op: OpRollback, sha: shaB, blocked: true, queued: []string{"prod"}}},
		opCase{name: "retry/failed restart", setup: failedAs("staging", Job{Operation: OpRestart}, false),
			do:   retry("staging"),
			want: want{stage: "staging", state: Queued, op: OpRestart, sha: shaB, queued: []string{"staging"}}},
		// The first stage's cancelled deploy: no /promote reaches it.
		opCase{name: "retry/cancelled first stage", setup: in("build", Cancelled, shaC), do: retry("build"),
			want: want{stage: "build", state: Queued, op: OpRetry, sha: shaC, queued: []string{"build"}, message: "Retrying deploy of build at ccccccc."}},
		opCase{name: "retry/cancelled rollback", setup: both(failedAs("prod", Job{Operation: OpRollback}, true), stateIs("prod", Cancelled)), do: retry("prod"),
			want: want{stage: "prod", state: Queued, op: OpRollback, sha: shaB, blocked: true, queued: []string{"prod"}}},
		// A failed patch is retried in its patch mode, not /release first.
		opCase{name: "retry/failed patch in patch mode", setup: both(patched, failedAs("staging", Job{Operation: OpPatch}, false)), do: retry("staging"),
			want: want{stage: "staging", state: Queued, op: OpPatch, sha: shaB, queued: []string{"staging"}, message: "Retrying patch of staging at bbbbbbb."},
			check: func(t *testing.T, p *Pipeline) {
				if h := p.Patched; h == nil || h.Stage != "staging" || h.SHA != shaB || h.Actor != "bob" {
					t.Errorf("patch mode %+v, want it kept as bob's patch of staging", h)
				}
			}},
		opCase{name: "retry/failed patch released", setup: failedAs("staging", Job{Operation: OpPatch}, false), do: retry("staging"),
			refusal: "cannot retry staging: its patch of bbbbbbb is no longer the pipeline's patch mode; /patch again"},
		opCase{name: "retry/failed deploy in patch mode", setup: both(patched, failedAs("prod", Job{Operation: OpDeploy}, false)), do: retry("prod"),
			refusal: "cannot retry prod: the pipeline is in patch mode (staging at bbbbbbb by @bob); /release first"},
		opCase{name: "retry/unknown stage", do: retry("nope"),
			refusal: `cannot retry nope: there is no stage "nope"; the stages are build, staging, prod`},
	)

	// rollback and roll forward: any state; the target passed build.
	cases = append(cases,
		opCase{name: "rollback/prod at rest", setup: in("prod", Succeeded, shaB), do: rollback("prod", shaA),
			want: want{stage: "prod", state: Queued, op: OpRollback, sha: shaA, blocked: true, queued: []string{"prod"}, message: "Rolling back prod to aaaaaaa."}},
		opCase{name: "rollback/prod running", setup: in("prod", InProgress, shaB), do: rollback("prod", shaA),
			want: want{stage: "prod", state: Queued, op: OpRollback, sha: shaA, blocked: true, queued: []string{"prod"}}},
		opCase{name: "rollback/while stopped", setup: stopped, do: rollback("staging", shaA),
			want: want{stage: "staging", state: Queued, op: OpRollback, sha: shaA, blocked: true, queued: []string{"staging"}},
			check: func(t *testing.T, p *Pipeline) {
				if s := p.Stage("prod"); !s.Blocked || s.BlockedBy != "rollback by @alice" {
					t.Errorf("the stage after a rolled back one: blocked=%v by %q", s.Blocked, s.BlockedBy)
				}
			}},
		opCase{name: "rollback/never built", do: rollback("prod", shaC),
			refusal: "cannot rollback prod: ccccccc never passed build"},
		opCase{name: "rollback/unknown skip", do: rollback("prod", shaA, "nope"),
			refusal: `cannot rollback prod: prod has no step "nope"`},
		opCase{name: "rollforward/staging", setup: in("staging", Succeeded, shaA), do: rollforward("staging", shaB),
			want: want{stage: "staging", state: Queued, op: OpRollForward, sha: shaB, blocked: true, queued: []string{"staging"}, message: "Rolling forward staging to bbbbbbb."},
			check: func(t *testing.T, p *Pipeline) {
				if p.Stage("prod").Blocked {
					t.Error("roll forward blocked the next stage")
				}
			}},
		opCase{name: "rollforward/never built", do: rollforward("staging", shaC),
			refusal: "cannot rollforward staging: ccccccc never passed build"},
	)

	// unblock: S blocked; what waited behind the block starts.
	cases = append(cases,
		opCase{name: "unblock/blocked", setup: both(func(p *Pipeline) { p.Stage("staging").Blocked = true }, waitingIn("staging", shaC, "held: staging is blocked")),
			do:   unblock("staging"),
			want: want{stage: "staging", state: Queued, op: OpDeploy, sha: shaC, queued: []string{"staging"}, message: "Unblocked staging"}},
		opCase{name: "unblock/not blocked", do: unblock("staging"),
			refusal: "cannot unblock staging: it is not blocked"},
	)

	// stop / resume.
	cases = append(cases,
		opCase{name: "stop/running", do: stop,
			want: want{stage: "build", state: Succeeded, op: OpDeploy, sha: shaB, message: "Stopped the pipeline"},
			check: func(t *testing.T, p *Pipeline) {
				if p.Stopped == nil || p.Stopped.Actor != "alice" || p.Stopped.Reason != "because" {
					t.Errorf("stopped = %+v, want by alice because", p.Stopped)
				}
			}},
		opCase{name: "stop/stopped", setup: stopped, do: stop,
			refusal: "cannot stop: the pipeline is already stopped by @bob (incident)"},
		opCase{name: "resume/stopped", setup: both(stopped, waitingIn("build", shaC, "held: the pipeline is stopped by @bob: incident")), do: resume,
			want: want{stage: "build", state: Queued, op: OpDeploy, sha: shaC, queued: []string{"build"}, message: "Resumed the pipeline. Started build at ccccccc."},
			check: func(t *testing.T, p *Pipeline) {
				if p.Stopped != nil {
					t.Errorf("still stopped: %+v", p.Stopped)
				}
			}},
		opCase{name: "resume/a revision waits for /promote", setup: both(stopped, waitingIn("prod", shaB, "held: the pipeline is stopped by @bob: incident"), func(p *Pipeline) { p.Stage("prod").Waiting.Manual = true }),
			do:     resume,
			want:   want{stage: "prod", state: Succeeded, op: OpDeploy, sha: shaA, waiting: shaB, message: "Resumed the pipeline."},
			check:  holdIs("prod", "waiting for /promote stage=prod"),
			checkW: waitingButtons("prod", "promote", "cancel")},
		opCase{name: "resume/running", do: resume,
			refusal: "cannot resume: the pipeline is not stopped"},
	)

	// patch / release.
	cases = append(cases,
		opCase{name: "patch/running", do: patch("prod", shaC),
			want: want{stage: "prod", state: Queued, op: OpPatch, sha: shaC, queued: []string{"prod"}, message: "Patch mode: deploying ccccccc to prod"},
			check: func(t *testing.T, p *Pipeline) {
				if h := p.Patched; h == nil || h.Stage != "prod" || h.SHA != shaC || h.Actor != "alice" {
					t.Errorf("patch = %+v", h)
				}
			}},
		opCase{name: "patch/while stopped", setup: stopped, do: patch("prod", shaC),
			want: want{stage: "prod", state: Queued, op: OpPatch, sha: shaC, queued: []string{"prod"}}},
		opCase{name: "patch/patched", setup: patched, do: patch("prod", shaC),
			refusal: "cannot patch prod: the pipeline is already in patch mode (staging at bbbbbbb by @bob); /release first"},
		opCase{name: "release/patched", setup: both(patched, waitingIn("build", shaC, "held: patch mode (staging at bbbbbbb by @bob)")), do: release,
			want: want{stage: "build", state: Queued, op: OpDeploy, sha: shaC, queued: []string{"build"}, message: "Left patch mode. Started build at ccccccc."},
			check: func(t *testing.T, p *Pipeline) {
				if p.Patched != nil {
					t.Errorf("still in patch mode: %+v", p.Patched)
				}
			}},
		opCase{name: "release/not patched", do: release,
			refusal: "cannot release: the pipeline is not in patch mode"},
	)

	// redeploy, restart, shutdown: S has a current revision and is not busy.
	cases = append(cases,
		opCase{name: "redeploy/at rest", do: redeploy("prod"),
			want: want{stage: "prod", state: Queued, op: OpRedeploy, sha: shaA, queued: []string{"prod"}, message: "Queued redeploy of prod at aaaaaaa."},
			check: func(t *testing.T, p *Pipeline) {
				if c := p.Stage("prod").Job.Cache; c != "skip" {
					t.Errorf("cache = %q, want skip", c)
				}
			}},
		opCase{name: "redeploy/failed", setup: in("prod", Failed, shaB), do: redeploy("prod"),
			want: want{stage: "prod", state: Queued, op: OpRedeploy, sha: shaA, queued: []string{"prod"}}},
		opCase{name: "redeploy/no current", setup: func(p *Pipeline) { p.Stage("prod").Current = "" }, do: redeploy("prod"),
			refusal: "cannot redeploy prod: it has no current revision"},
		opCase{name: "restart/staging", do: restart("staging"),
			want: want{stage: "staging", state: Queued, op: OpRestart, sha: shaB, queued: []string{"staging"}}},
		opCase{name: "restart/no restart steps", do: restart("build"),
			refusal: "cannot restart build: build has no restart steps in .github/railyard.yml"},
		opCase{name: "shutdown/prod", do: shutdown("prod"),
			want: want{stage: "prod", state: Queued, op: OpShutdown, sha: shaA, queued: []string{"prod"}}},
		opCase{name: "shutdown/no shutdown steps", do: shutdown("staging"),
			refusal: "cannot shutdown staging: staging has no shutdown steps in .github/railyard.yml"},
		opCase{name: "shutdown/no current", setup: func(p *Pipeline) { p.Stage("prod").Current = "" }, do: shutdown("prod"),
			refusal: "cannot shutdown prod: it has no current revision"},
	)
	for _, st := range []State{Queued, InProgress, Cancelling, RollingBack, RollingForward} {
		cases = append(cases, opCase{name: "redeploy/" + string(st), setup: in("prod", st, shaB), do: redeploy("prod"),
			refusal: fmt.Sprintf("cannot redeploy prod: it is %s; wait for it or /cancel it", st)})
	}
	return cases
}

func holdIs(stage, hold string) func(t *testing.T, p *Pipeline) {
	return func(t *testing.T, p *Pipeline) {
		if w := p.Stage(stage).Waiting; w == nil || w.Hold != hold {
			t.Errorf("%s waits with %+v, want hold %q", stage, w, hold)
		}
	}
}

// opFunc is an operation of the core on a pipeline.
type opFunc func(p *Pipeline, req Request, at Moment) (Effects, error)

// at is the moment of every transition of the table.
var at = Moment{Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Seed: "new"}

// request is a request by alice under the test pipeline file.
func request(t *testing.T) Request {
	file, problems := config.Parse([]byte(testPipeline))
	if len(problems) > 0 {
		t.Fatalf("test pipeline: %v", problems)
	}
	return Request{
		Repo: report.Repo{InstallationID: 7, Owner: "octo", Name: "app"}, File: file,
		ConfigSHA: shaB, Head: shaB, Actor: "alice", Reason: "because",
	}
}

// checkRunIn returns the last version of a job's check run in fx.
func checkRunIn(fx Effects, jobID string) (report.CheckRun, bool) {
	for i := len(fx.GitHub) - 1; i >= 0; i-- {
		if w := fx.GitHub[i]; w.Key == CheckRunKey(jobID) && w.CheckRun != nil {
			return *w.CheckRun, true
		}
	}
	return report.CheckRun{}, false
}

// deploysIn reports whether fx creates a deployment for a job.
func deploysIn(fx Effects, jobID string) bool {
	return slices.ContainsFunc(fx.GitHub, func(w report.Write) bool { return w.Key == deploymentKey(jobID) && w.Deployment != nil })
}

func stateOf(t *testing.T, p *Pipeline) string {
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestOperationsFollowTheStateTable runs every operation of the core in
// states that allow it and states that refuse it, with no store. A
// refusal is typed, says why, and leaves the state byte for byte and has
// no effects: no audit entry, no job, nothing for GitHub.
func TestOperationsFollowTheStateTable(t *testing.T) {
	for _, c := range stateCases() {
		t.Run(c.name, func(t *testing.T) {
			p := &Pipeline{}
			if !c.empty {
				p = settled()
				if c.setup != nil {
					c.setup(p)
				}
			}
			before := stateOf(t, p)

			fx, err := c.do(p, request(t), at)

			if c.refusal != "" {
				if !IsRefusal(err) || err.Error() != c.refusal {
					t.Fatalf("got %v (%T), want the refusal %q", err, err, c.refusal)
				}
				if after := stateOf(t, p); after != before {
					t.Errorf("a refusal changed the state:\nbefore %s\nafter  %s", before, after)
				}
				if !reflect.DeepEqual(fx, Effects{}) {
					t.Errorf("a refusal had effects: %+v", fx)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !strings.Contains(fx.Reply.Message, c.want.message) {
				t.Errorf("reply %q, want it to say %q", fx.Reply.Message, c.want.message)
			}
			if len(fx.Audit) != 1 {
				t.Errorf("%d audit entries, want 1", len(fx.Audit))
			}
			s := p.Stage(c.want.stage)
			if s.State != c.want.state || s.Job == nil || s.Job.Operation != c.want.op || s.Job.SHA != c.want.sha || s.Blocked != c.want.blocked {
				t.Errorf("%s is %s blocked=%v with job %+v; want %s blocked=%v with %s at %.7s",
					s.Name, s.State, s.Blocked, s.Job, c.want.state, c.want.blocked, c.want.op, c.want.sha)
			}
			switch {
			case c.want.waiting == "" && s.Waiting != nil:
				t.Errorf("%s has a waiting revision %.7s, want none", s.Name, s.Waiting.SHA)
			case c.want.waiting != "" && (s.Waiting == nil || s.Waiting.SHA != c.want.waiting):
				t.Errorf("%s waits with %+v, want %.7s", s.Name, s.Waiting, c.want.waiting)
			}
			var queued []string
			for _, j := range fx.Jobs {
				queued = append(queued, j.Stage)
				// What a person sees of every queued job: a queued check
				// run, and a deployment for operations that deploy.
				sj := p.Stage(j.Stage).Job
				if sj == nil || sj.ID != j.Job || j.Repo != testRepo {
					t.Errorf("queued job %+v is not %s's job", j, j.Stage)
					continue
				}
				if cr, ok := checkRunIn(fx, sj.ID); !ok || cr.Status != "queued" || cr.Name != "railyard/"+sj.Stage || cr.HeadSHA != sj.SHA {
					t.Errorf("check run of the queued job: %+v", cr)
				}
				if deploysIn(fx, sj.ID) != sj.Operation.deploys() {
					t.Errorf("%s job created a deployment: %v", sj.Operation, !sj.Operation.deploys())
				}
			}
			if !slices.Equal(queued, c.want.queued) {
				t.Errorf("queued jobs for %v, want %v", queued, c.want.queued)
			}
			if c.check != nil {
				c.check(t, p)
			}
			if c.checkW != nil {
				c.checkW(t, fx)
			}
		})
	}
}

// TestIdempotencyKeyActsOnce repeats operations under one key, as a queue
// that delivers at least once would after a crash: each happens once.
func TestIdempotencyKeyActsOnce(t *testing.T) {
	ops := []struct {
		name string
		do   opFunc
	}{
		{"deploy", deploy(shaC, 0)},
		{"rollback", rollback("prod", shaA)},
		{"stop", stop},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			p := settled()
			req := request(t)
			req.Idempotency = "comment:42"
			if _, err := op.do(p, req, at); err != nil {
				t.Fatal(err)
			}
			once := stateOf(t, p)
			again, err := op.do(p, req, at)
			if err != nil {
				t.Fatalf("the repeat: %v", err)
			}
			if !strings.HasPrefix(again.Reply.Message, "Already done") {
				t.Errorf("the repeat replied %q; a person should read that it was done before", again.Reply.Message)
			}
			if stateOf(t, p) != once || len(again.Audit)+len(again.Jobs)+len(again.GitHub) != 0 {
				t.Errorf("the repeat acted again: %+v", again)
			}
			// A new key is a new operation.
			req.Idempotency = "comment:43"
			fx, err := op.do(p, req, at)
			if op.name == "stop" {
				if !IsRefusal(err) {
					t.Errorf("a second stop under a new key: %v, want a refusal", err)
				}
				return
			}
			if err != nil || len(fx.Audit) != 1 {
				t.Errorf("a new key did not act: %v, audit %+v", err, fx.Audit)
			}
		})
	}
}

// TestRefusalDoesNotUseUpItsKey checks that a refused operation can be
// asked again under the same key once the state allows it.
func TestRefusalDoesNotUseUpItsKey(t *testing.T) {
	p := settled()
	req := request(t)
	req.Idempotency = "comment:7"
	if _, err := p.Resume(req, at); !IsRefusal(err) {
		t.Fatalf("resume of a running pipeline: %v, want a refusal", err)
	}
	if _, err := p.Stop(request(t), at); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Resume(req, at); err != nil {
		t.Fatalf("resume under the refused key: %v", err)
	}
	if p.Stopped != nil {
		t.Error("resume under a key a refusal had seen did nothing")
	}
}

// TestAbortedAttemptsReportNothing: when another writer changes the state
// while a transition is being committed, the attempt is aborted and
// retried; GitHub hears of the attempt that committed only.
func TestAbortedAttemptsReportNothing(t *testing.T) {
	w := newWorld(t)
	w.seed(settled())
	conflicts := 1
	w.rep.beforeAdd = func() {
		if conflicts > 0 {
			conflicts--
			w.seed(settled()) // a write to the watched key: this attempt fails
		}
	}
	res, err := w.e.Rollback(w.ctx, w.req(), Move{Stage: "prod", SHA: shaA})
	if err != nil {
		t.Fatal(err)
	}
	if conflicts != 0 {
		t.Fatal("no attempt was aborted")
	}
	job := strings.TrimPrefix(res.CheckRunKey, "job:")
	if got := w.rep.checkRunStates(job); !slices.Equal(got, []string{"queued"}) {
		t.Errorf("the rollback's check run was reported %v, want once: [queued]", got)
	}
	if n := len(w.rep.deploys()); n != 1 {
		t.Errorf("%d deployments created, want 1", n)
	}
	if got := w.rep.calls(); got != 3 {
		t.Errorf("%d writes to GitHub, want 3 (check run, deployment, its status): %+v", got, w.rep.writes())
	}
}

// TestEveryOperationFromEveryState runs each operation with its stage in
// each state, with the rest of the pipeline settled: an operation is
// allowed exactly in the states docs/reference.md#operations lists, and
// anywhere else refused with no change and no effect.
func TestEveryOperationFromEveryState(t *testing.T) {
	notActive := []State{Idle, Cancelled, Failed, Succeeded, RolledBack, RolledForward}
	ops := []struct {
		name    string
		stage   string
		setup   func(p *Pipeline)
		do      opFunc
		allowed []State
	}{
		{"push", "build", nil, deploy(shaC, 3), allStates},
		{"deploy", "build", nil, deployByHand(shaC), allStates},
		{"promote", "prod", nil, promote("prod", shaB), allStates},
		{"cancel", "prod", nil, cancel("prod"), []State{Queued, InProgress, RollingBack, RollingForward}},
		{"retry", "prod", nil, retry("prod"), []State{Cancelled, Failed}},
		{"rollback", "prod", nil, rollback("prod", shaA), allStates},
		{"rollforward", "prod", nil, rollforward("prod", shaB), allStates},
		{"unblock", "prod", func(p *Pipeline) { p.Stage("prod").block("rollback by @bob") }, unblock("prod"), allStates},
		{"stop", "prod", nil, stop, allStates},
		{"resume", "prod", stopped, resume, allStates},
		{"patch", "prod", nil, patch("prod", shaC), allStates},
		{"release", "prod", patched, release, allStates},
		{"redeploy", "prod", nil, redeploy("prod"), notActive},
		{"restart", "staging", nil, restart("staging"), notActive},
		{"shutdown", "prod", nil, shutdown("prod"), notActive},
	}
	for _, op := range ops {
		for _, st := range allStates {
			t.Run(op.name+"/"+string(st), func(t *testing.T) {
				p := settled()
				in(op.stage, st, shaB)(p)
				if op.setup != nil {
					op.setup(p)
				}
				before := stateOf(t, p)
				fx, err := op.do(p, request(t), at)
				if !slices.Contains(op.allowed, st) {
					if !IsRefusal(err) || stateOf(t, p) != before || !reflect.DeepEqual(fx, Effects{}) {
						t.Errorf("got %v with effects %+v, want a refusal that changes nothing", err, fx)
					}
					return
				}
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(fx.Audit) != 1 || fx.Reply.Message == "" {
					t.Errorf("audit %+v, reply %q; want one entry and a reply", fx.Audit, fx.Reply.Message)
				}
				for _, s := range p.Stages {
					if !slices.Contains(allStates, s.State) {
						t.Errorf("%s is in no state of the table: %q", s.Name, s.State)
					}
				}
			})
		}
	}
}

// TestNoStageNamed: an operation on a stage given as "" is refused, as
// any stage the file does not have.
func TestNoStageNamed(t *testing.T) {
	for name, do := range map[string]opFunc{"retry": retry(""), "cancel": cancel(""), "promote": promote("", ""), "redeploy": redeploy("")} {
		if _, err := do(settled(), request(t), at); !IsRefusal(err) {
			t.Errorf("%s of no stage: %v, want a refusal", name, err)
		}
	}
}
