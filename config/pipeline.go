package config

import (
	"slices"
	"time"
)

// Level is a GitHub repository permission, from weakest to strongest:
// read, triage, write, maintain, admin.
type Level string

// The permission levels, in order.
const (
	LevelRead     Level = "read"
	LevelTriage   Level = "triage"
	LevelWrite    Level = "write"
	LevelMaintain Level = "maintain"
	LevelAdmin    Level = "admin"
)

var levels = []Level{LevelRead, LevelTriage, LevelWrite, LevelMaintain, LevelAdmin}

// Valid reports whether l is one of the five levels.
func (l Level) Valid() bool { return slices.Contains(levels, l) }

// AtLeast reports whether l grants min. An unknown level grants nothing and
// an unknown min is granted to no one, so mistakes fail closed.
func (l Level) AtLeast(min Level) bool {
	have, need := slices.Index(levels, l), slices.Index(levels, min)
	return have >= 0 && need >= 0 && have >= need
}

// commands are the slash commands that permissions.commands may name.
var commands = []string{
	"deploy", "cancel", "retry", "rollback", "rollforward", "unblock", "stop", "resume",
	"patch", "release", "redeploy", "restart", "shutdown", "promote", "status", "help",
}

// Pipeline is a parsed and valid .github/railyard.yml. Pipelines returned by
// a Loader are shared: treat them as read-only.
type Pipeline struct {
	Branch      string // "" means the repository's default branch
	Stages      []Stage
	Permissions Permissions
	Require     *Require // gates of every stage without its own; nil: none
	Patch       PatchRules
}

// Require gates deploying a revision: by /patch, by /rollforward, and into
// a production stage. The revision must have passed the checks its pipeline
// branch requires (branch protection and rulesets) plus Checks, and, unless
// it is on the pipeline branch already, have Approvals approving reviews.
type Require struct {
	Checks    []string
	Approvals int
}

// PatchRules are the rules of /patch.
type PatchRules struct {
	// AllowForks lets /patch deploy the head of a pull request from a fork.
	AllowForks bool
}

// Stage is one stage of the pipeline, in promotion order.
type Stage struct {
	Name         string
	Steps        []Step
	Verify       *Verify // nil when absent
	AutoRollback bool
	Promotion    string // "auto" or "manual"
	Production   bool
	Restart      []Step
	Shutdown     []Step
	// Secrets name the operator's secrets the stage's run steps, verify,
	// restart and shutdown receive; the values are never in the file.
	Secrets []string
	Require *Require // replaces Pipeline.Require for this stage
}

// The values of Stage.Promotion.
const (
	PromotionAuto   = "auto"
	PromotionManual = "manual"
)

// Step is a shell command run by Railyard or a dispatched workflow: exactly
// one of Run and Workflow is set.
type Step struct {
	Name     string
	Run      string
	Workflow string            // a file name in .github/workflows, e.g. "deploy.yml"
	Inputs   map[string]string // extra workflow_dispatch inputs (workflow steps only)
	Env      map[string]string
	Timeout  time.Duration
	Infra    bool
}

// Verify is a stage's health check, run after its steps.
type Verify struct {
	Run      string
	Retries  int
	Interval time.Duration
	Timeout  time.Duration
	Env      map[string]string
}

// Permissions are the minimum repository permissions for commands.
type Permissions struct {
	Default  Level
	Commands map[string]Level
	Stages   map[string]Level
}

// Defaults for fields the file leaves out.
const (
	DefaultStepTimeout    = 30 * time.Minute
	DefaultVerifyInterval = 10 * time.Second
	DefaultVerifyTimeout  = 5 * time.Minute
)

// Stage returns the stage called name.
func (p *Pipeline) Stage(name string) (*Stage, bool) {
	i := p.Index(name)
	if i < 0 {
		return nil, false
	}
	return &p.Stages[i], true
}

// Index returns the position of the stage called name, or -1.
func (p *Pipeline) Index(name string) int {
	return slices.IndexFunc(p.Stages, func(s Stage) bool { return s.Name == name })
}

// Next returns the stage after the one called name; false for the last
// stage and for unknown names.
func (p *Pipeline) Next(name string) (*Stage, bool) {
	i := p.Index(name)
	if i < 0 || i+1 >= len(p.Stages) {
		return nil, false
	}
	return &p.Stages[i+1], true
}

// First returns the first stage, the one that builds; nil if there is none.
func (p *Pipeline) First() *Stage {
	if len(p.Stages) == 0 {
		return nil
	}
	return &p.Stages[0]
}

// Required returns the permission needed to run command, on stage if it is
// not "": the command's level (or the default), raised to the stage's.
func (p *Pipeline) Required(command, stage string) Level {
	need, ok := p.Permissions.Commands[command]
	if !ok {
		need = p.Permissions.Default
	}
	// /deploy does what a push does, which takes write access: a lower
	// default does not open it; only commands.deploy may.
	if need == "" || !ok && command == "deploy" && !need.AtLeast(LevelWrite) {
		need = LevelWrite
	}
	if s, ok := p.Permissions.Stages[stage]; ok && stage != "" && s.AtLeast(need) {
		need = s
	}
	return need
}

// Requirements returns the gate of deploys to stage: its own require
// block, else the file's; nil when there is none.
func (p *Pipeline) Requirements(stage string) *Require {
	if s, ok := p.Stage(stage); ok && s.Require != nil {
		return s.Require
	}
	return p.Require
}

// Step returns the step of s.Steps called name (not restart or shutdown).
func (s *Stage) Step(name string) (*Step, bool) {
	i := slices.IndexFunc(s.Steps, func(st Step) bool { return st.Name == name })
	if i < 0 {
		return nil, false
	}
	return &s.Steps[i], true
}
