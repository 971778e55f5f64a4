package command

import (
	"fmt"
	"slices"
	"strings"
)

// Name is a command's canonical name, as written after the slash.
type Name string

// The commands (docs/reference.md#operations).
const (
	NameDeploy      Name = "deploy"
	NamePromote     Name = "promote"
	NameCancel      Name = "cancel"
	NameRetry       Name = "retry"
	NameRollback    Name = "rollback"
	NameRollforward Name = "rollforward"
	NameUnblock     Name = "unblock"
	NameStop        Name = "stop"
	NameResume      Name = "resume"
	NamePatch       Name = "patch"
	NameRelease     Name = "release"
	NameRedeploy    Name = "redeploy"
	NameRestart     Name = "restart"
	NameShutdown    Name = "shutdown"
	NameStatus      Name = "status"
	NameHelp        Name = "help"
)

// MaxCommands is how many commands of one comment run
// (docs/reference.md#commands).
const MaxCommands = 10

// Argument keys.
const (
	keyStage  = "stage"
	keyTo     = "to"
	keySHA    = "sha"
	keySkip   = "skip"
	keyInfra  = "infra"
	keyCache  = "cache"
	keyReason = "reason"
)

// allKeys lists every key in usage order.
var allKeys = []string{keyStage, keyTo, keySHA, keySkip, keyInfra, keyCache, keyReason}

// placeholders show each key's value in usage lines, as the operations table
// of docs/reference.md writes them.
var placeholders = map[string]string{
	keyStage:  "S",
	keyTo:     "SHA",
	keySHA:    "SHA",
	keySkip:   "a,b",
	keyInfra:  "true",
	keyCache:  "use|skip",
	keyReason: "…",
}

// Spec describes one command: the keys it takes, in the order usage lines
// show them, which of them are required, and what it does.
type Spec struct {
	Name     Name
	Aliases  []string // other accepted spellings, e.g. "roll-forward"
	Keys     []string
	Required []string
	Usage    string // derived from Name, Keys and Required
	Summary  string
}

var specs = withUsage([]Spec{
	{Name: NameDeploy, Keys: []string{keySHA, keyReason}, Required: []string{keySHA},
		Summary: "Start a revision of the pipeline branch through the pipeline from the first stage, as a push of it would."},
	{Name: NamePromote, Keys: []string{keyStage, keyTo}, Required: []string{keyStage},
		Summary: "Deploy a revision that passed the previous stage (default: that stage's current one)."},
	{Name: NameCancel, Keys: []string{keyStage, keyTo, keyReason}, Required: []string{keyStage},
		Summary: "Cancel what runs in a stage (the next stage does not start), or drop the revision waiting for it (to= names which)."},
	{Name: NameRetry, Keys: []string{keyStage}, Required: []string{keyStage},
		Summary: "Repeat a failed or cancelled stage's job for the same revision, as it was (a rollback stays a rollback)."},
	{Name: NameRollback, Keys: []string{keyStage, keyTo, keySkip, keyInfra, keyReason}, Required: []string{keyStage, keyTo, keyReason},
		Summary: "Roll a stage back to an earlier revision and block it; infra steps run only with infra=true."},
	{Name: NameRollforward, Aliases: []string{"roll-forward"}, Keys: []string{keyStage, keyTo, keySkip, keyInfra, keyReason}, Required: []string{keyStage, keyTo, keyReason},
		Summary: "Roll a stage forward to a newer revision and block it; infra steps run only with infra=true."},
	{Name: NameUnblock, Keys: []string{keyStage, keyReason}, Required: []string{keyStage},
		Summary: "Let automatic promotion into a blocked stage resume."},
	{Name: NameStop, Keys: []string{keyReason}, Required: []string{keyReason},
		Summary: "Stop the pipeline: running stages finish, nothing new starts, pushes are held."},
	{Name: NameResume, Keys: []string{keyReason},
		Summary: "Resume a stopped pipeline; the newest held revisions start."},
	{Name: NamePatch, Keys: []string{keyStage, keyTo, keyReason}, Required: []string{keyStage, keyReason},
		Summary: "Deploy a revision (on a pull request, default: its head) to a stage and hold normal deployments."},
	{Name: NameRelease, Keys: []string{keyReason},
		Summary: "Leave patch mode; the newest held revision starts from the first stage."},
	{Name: NameRedeploy, Keys: []string{keyStage, keyCache, keyReason}, Required: []string{keyStage},
		Summary: "Re-run a stage's steps for its current revision; cache=skip unpacks and rebuilds it afresh."},
	{Name: NameRestart, Keys: []string{keyStage, keyReason}, Required: []string{keyStage},
		Summary: "Run a stage's restart steps."},
	{Name: NameShutdown, Keys: []string{keyStage, keyReason}, Required: []string{keyStage, keyReason},
		Summary: "Run a stage's shutdown steps."},
	{Name: NameStatus, Summary: "Show the stages, their revisions, states and blocks, and any stop or patch."},
	{Name: NameHelp, Summary: "List these commands."},
})

// byName finds a spec by canonical name or alias, lower case.
var byName = func() map[string]int {
	m := make(map[string]int)
	for i, s := range specs {
		m[string(s.Name)] = i
		for _, a := range s.Aliases {
			m[a] = i
		}
	}
	return m
}()

func withUsage(ss []Spec) []Spec {
	for i, s := range ss {
		var b strings.Builder
		b.WriteString("/" + string(s.Name))
		for _, k := range s.Keys {
			arg := k + "=" + placeholders[k]
			if !slices.Contains(s.Required, k) {
				arg = "[" + arg + "]"
			}
			b.WriteString(" " + arg)
		}
		ss[i].Usage = b.String()
	}
	return ss
}

// Specs returns the table of every command, in the order /help lists them.
// The result is a copy; changing it changes nothing here.
func Specs() []Spec {
	out := make([]Spec, len(specs))
	for i, s := range specs {
		out[i] = s.clone()
	}
	return out
}

func (s Spec) clone() Spec {
	s.Aliases = slices.Clone(s.Aliases)
	s.Keys = slices.Clone(s.Keys)
	s.Required = slices.Clone(s.Required)
	return s
}

// Lookup finds a command by name or alias, ignoring case, without the slash.
func Lookup(name string) (Spec, bool) {
	i, ok := byName[strings.ToLower(name)]
	if !ok {
		return Spec{}, false
	}
	return specs[i].clone(), true
}

// Help is the markdown reply to /help.
func Help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Railyard commands (one per line, at most %d per comment, run in order):\n\n", MaxCommands)
	for _, s := range specs {
		fmt.Fprintf(&b, "- `%s` — %s", s.Usage, s.Summary)
		for _, a := range s.Aliases {
			fmt.Fprintf(&b, " Also `/%s`.", a)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nArguments are `key=value`; put a value in double quotes to hold spaces " +
		"(`reason=\"bad migration\"`), or give `reason=` last to take the rest of the line. " +
		"`to=` takes a full or abbreviated SHA, a branch or a tag. " +
		"Lines in code blocks and quoted replies are not commands.\n")
	return b.String()
}
