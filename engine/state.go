package engine

import (
	"slices"
	"time"

	"github.com/railyard/railyard/config"
)

// State is a stage's state (docs/reference.md#states). The zero value means
// unknown.
type State string

const (
	Idle           State = "idle"
	Queued         State = "queued"
	InProgress     State = "in_progress"
	Cancelling     State = "cancelling"
	Cancelled      State = "cancelled"
	Failed         State = "failed"
	Succeeded      State = "succeeded"
	RollingBack    State = "rolling_back"
	RolledBack     State = "rolled_back"
	RollingForward State = "rolling_forward"
	RolledForward  State = "rolled_forward"
)

// Operation names what a job or a command does; it is also the value of
// RAILYARD_OPERATION for steps.
type Operation string

const (
	OpDeploy       Operation = "deploy"
	OpRetry        Operation = "retry"
	OpPromote      Operation = "promote"
	OpRollback     Operation = "rollback"
	OpRollForward  Operation = "rollforward"
	OpPatch        Operation = "patch"
	OpRedeploy     Operation = "redeploy"
	OpRestart      Operation = "restart"
	OpShutdown     Operation = "shutdown"
	OpAutoRollback Operation = "auto-rollback"

	// Operations that run no stage job; they appear in the audit log.
	OpCancel  Operation = "cancel"
	OpUnblock Operation = "unblock"
	OpStop    Operation = "stop"
	OpResume  Operation = "resume"
	OpRelease Operation = "release"
	OpPush    Operation = "push"
)

// deploys reports whether a job of this operation creates a GitHub
// Deployment (docs/reference.md#deployments).
func (o Operation) deploys() bool {
	switch o {
	case OpDeploy, OpPromote, OpRetry, OpRollback, OpRollForward, OpPatch, OpRedeploy, OpAutoRollback:
		return true
	}
	return false
}

// promotes reports whether success of this operation moves the revision on
// to the next stage.
func (o Operation) promotes() bool {
	return o == OpDeploy || o == OpPromote || o == OpRetry
}

// repeatedAs is the operation a retry of a job of this operation runs: a
// deploy or promotion is retried as a retry (which promotes on success);
// every other operation is repeated as itself, so that its steps,
// RAILYARD_OPERATION, infra rule and promotion stay what they were.
func (o Operation) repeatedAs() Operation {
	switch o {
	case OpDeploy, OpPromote, OpRetry:
		return OpRetry
	}
	return o
}

// runningState is the state a stage shows while a job of this operation runs.
func (o Operation) runningState() State {
	switch o {
	case OpRollback, OpAutoRollback:
		return RollingBack
	case OpRollForward:
		return RollingForward
	}
	return InProgress
}

// doneState is the state a stage shows after a job of this operation succeeded.
func (o Operation) doneState() State {
	switch o {
	case OpRollback, OpAutoRollback:
		return RolledBack
	case OpRollForward:
		return RolledForward
	}
	return Succeeded
}

// Job is one run of a stage: the unit the queue carries and the check run
// and deployment describe.
type Job struct {
	ID        string    `json:"id"`
	Stage     string    `json:"stage"`
	SHA       string    `json:"sha"`
	Operation Operation `json:"operation"`
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason,omitempty"`
	Previous  string    `json:"previous,omitempty"` // the stage's current revision when the job was made
	Skip      []string  `json:"skip,omitempty"`
	Infra     bool      `json:"infra,omitempty"`
	Cache     string    `json:"cache,omitempty"`
	ConfigSHA string    `json:"config_sha"` // commit the pipeline file was read at
	// Production marks the stage's GitHub environment as production.
	Production bool      `json:"production,omitempty"`
	Created    time.Time `json:"created"`
	Started    time.Time `json:"started,omitzero"`
	// Hold says why a waiting job does not start; empty once it may.
	Hold string `json:"hold,omitempty"`
	// Manual marks a revision waiting for /promote into a manual stage.
	Manual bool `json:"manual,omitempty"`
	// CancelledBy is set when a person asked to cancel the job.
	CancelledBy string `json:"cancelled_by,omitempty"`
	// WaitingFor says why a running job's steps could not start yet (GitHub
	// failed in a way that can pass); the queue tries it again.
	WaitingFor string `json:"waiting_for,omitempty"`
}

// StageState is one stage's persisted state (config.Stage is its part of
// the pipeline file).
type StageState struct {
	Name      string `json:"name"`
	State     State  `json:"state"`
	Blocked   bool   `json:"blocked"`
	BlockedBy string `json:"blocked_by,omitempty"`
	// Current is the last revision deployed successfully; Good lists the
	// revisions deployed successfully, newest first (Current first).
	Current string   `json:"current,omitempty"`
	Good    []string `json:"good,omitempty"`
	// Job is the running or last finished job; Waiting the one next in line.
	Job     *Job `json:"job,omitempty"`
	Waiting *Job `json:"waiting,omitempty"`
}

// active reports whether the stage's job is queued or running.
func (s *StageState) active() bool {
	switch s.State {
	case Queued, InProgress, Cancelling, RollingBack, RollingForward:
		return true
	}
	return false
}

// PreviousGood is the good revision before the current one: the target of
// the check run's Roll back button.
func (s *StageState) PreviousGood() string {
	for _, sha := range s.Good {
		if sha != s.Current {
			return sha
		}
	}
	return ""
}

func (s *StageState) succeeded(sha string) bool { return slices.Contains(s.Good, sha) }

const (
	keepGood  = 20
	keepBuilt = 500
	keepSeen  = 200
)

func (s *StageState) block(why string) { s.Blocked, s.BlockedBy = true, why }

func (s *StageState) recordGood(sha string) {
	s.Current = sha
	s.Good = pushFront(s.Good, sha, keepGood)
}

func pushFront(list []string, sha string, limit int) []string {
	list = slices.DeleteFunc(list, func(x string) bool { return x == sha })
	list = append([]string{sha}, list...)
	return list[:min(len(list), limit)]
}

// Mode records who stopped the pipeline or put it in patch mode (a
// waiting job's Hold, by contrast, says why that job does not start).
type Mode struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Stage  string    `json:"stage,omitempty"` // patch mode only
	SHA    string    `json:"sha,omitempty"`   // patch mode only
}

// Pipeline is one repository's persisted state.
type Pipeline struct {
	Repo           string        `json:"repo"`
	InstallationID int64         `json:"installation_id"`
	Branch         string        `json:"branch"`
	Stopped        *Mode         `json:"stopped"`
	Patched        *Mode         `json:"patch"`
	Stages         []*StageState `json:"stages"`
	// Built lists revisions that passed the first stage, newest first: the
	// only revisions rollback and roll forward may target.
	Built []string `json:"built,omitempty"`
	// LastPush is the sequence number of the newest push deployed.
	LastPush int64 `json:"last_push,omitempty"`
	// Seen holds the idempotency keys of recent operations.
	Seen []string `json:"seen,omitempty"`
}

// Stage returns the named stage's state.
func (p *Pipeline) Stage(name string) *StageState {
	for _, s := range p.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// sync makes the stages follow the pipeline file: new stages start idle,
// removed ones are forgotten, and the order is the file's.
func (p *Pipeline) sync(file *config.Pipeline) {
	stages := make([]*StageState, 0, len(file.Stages))
	for _, fs := range file.Stages {
		s := p.Stage(fs.Name)
		if s == nil {
			s = &StageState{Name: fs.Name, State: Idle}
		}
		stages = append(stages, s)
	}
	p.Stages = stages
}

func (p *Pipeline) built(sha string) bool { return slices.Contains(p.Built, sha) }

// AuditEntry is one line of the audit log (docs/reference.md#audit-log).
type AuditEntry struct {
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Operation Operation `json:"operation"`
	Stage     string    `json:"stage"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
	Job       string    `json:"job,omitempty"`
}
