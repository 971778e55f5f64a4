package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/railyard/railyard/internal/gitref"
)

// Problem is one thing wrong in a pipeline file, at a 1-based line.
type Problem struct {
	Line    int
	Message string
}

func (p Problem) String() string { return fmt.Sprintf("line %d: %s", p.Line, p.Message) }

const maxNameLen = 63

var (
	nameRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	inputNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	workflowRe  = regexp.MustCompile(`^[A-Za-z0-9._-]+\.ya?ml$`)
	yamlErrRe   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

	topKeys    = []string{"branch", "stages", "permissions", "require", "patch"}
	stageKeys  = []string{"name", "steps", "verify", "auto_rollback", "promotion", "production", "restart", "shutdown", "secrets", "require"}
	stepKeys   = []string{"name", "run", "workflow", "inputs", "env", "timeout", "infra"}
	verifyKeys = []string{"run", "retries", "interval", "timeout", "env"}
	permKeys   = []string{"default", "commands", "stages"}

	// Inputs Railyard always passes to a dispatched workflow.
	reservedInputs = []string{"stage", "sha", "operation"}
)

// Parse parses and validates a pipeline file. It reports every problem it
// finds, sorted by line; the pipeline is nil when there is any.
func Parse(data []byte) (*Pipeline, []Problem) {
	p := parser{lines: bytes.Count(data, []byte("\n")) + 1}
	if bytes.HasSuffix(data, []byte("\n")) {
		p.lines--
	}
	pl := p.file(data)
	if len(p.problems) > 0 {
		return nil, p.sorted()
	}
	return pl, nil
}

// parser walks the YAML node tree, which knows lines, and collects problems.
type parser struct {
	problems []Problem
	lines    int // the file's last line: yaml.v3 places some nodes past it
}

// entry is one key of a mapping with its value.
type entry struct{ key, val *yaml.Node }

// fields are a mapping's entries by key.
type fields map[string]entry

// add reports a problem at n; label says where, like `stage "prod" timeout`.
func (p *parser) add(n *yaml.Node, label, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if label != "" {
		msg = label + ": " + msg
	}
	p.problems = append(p.problems, Problem{Line: max(n.Line, 1), Message: msg})
}

func (p *parser) sorted() []Problem {
	for i := range p.problems {
		p.problems[i].Line = min(p.problems[i].Line, p.lines)
	}
	slices.SortStableFunc(p.problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	// A node behind a YAML alias is checked at every use; report it once.
	seen := map[Problem]bool{}
	return slices.DeleteFunc(p.problems, func(pr Problem) bool {
		dup := seen[pr]
		seen[pr] = true
		return dup
	})
}

func join(label, key string) string {
	if label == "" {
		return key
	}
	return label + " " + key
}

func (p *parser) file(data []byte) *Pipeline {
	if pr := sizeProblem(data); pr != nil {
		p.problems = append(p.problems, *pr)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) || (err == nil && len(doc.Content) == 0) {
		p.problems = append(p.problems, Problem{Line: 1, Message: "the file is empty; it needs a stages list"})
		return nil
	}
	if err != nil {
		p.yamlError(err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err)
	default:
		p.add(&next, "", "the file holds more than one YAML document (---); Railyard reads one")
	}
	// Before anything follows an alias: a small file can stand for millions of nodes.
	if pr := aliasProblem(&doc); pr != nil {
		p.problems = append(p.problems, *pr)
		return nil
	}
	return p.pipeline(doc.Content[0])
}

func (p *parser) yamlError(err error) {
	line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlErrRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	p.problems = append(p.problems, Problem{Line: line, Message: "invalid YAML: " + msg})
}

func (p *parser) pipeline(root *yaml.Node) *Pipeline {
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		p.add(root, "", "the file must be a mapping with a stages list, not %s", describe(root))
		return nil
	}
	f := p.mapping(root, "")
	p.onlyKeys(f, "", topKeys...)
	pl := &Pipeline{}
	if e, ok := f["branch"]; ok {
		pl.Branch = p.branch(e.val)
	}
	if e, ok := f["stages"]; ok {
		pl.Stages = p.stages(e)
	} else {
		p.add(root, "", "no stages: the file needs a stages list")
	}
	pl.Permissions = p.permissions(f, pl.Stages)
	pl.Require = p.require(f, "")
	pl.Patch = p.patchRules(f)
	return pl
}

func (p *parser) branch(n *yaml.Node) string {
	s, ok := p.str(n, "branch")
	switch {
	case !ok:
	case strings.HasPrefix(s, "refs/"):
		p.add(n, "branch", "%q must be a plain branch name like main, without refs/", s)
	case !gitref.Valid(s):
		p.add(n, "branch", "%q is not a valid branch name", s)
	}
	return s
}

func (p *parser) stages(e entry) []Stage {
	n := resolve(e.val)
	if isNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		p.add(e.key, "", "no stages: the stages list is empty")
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, "stages", "must be a list of stages, not %s", describe(n))
		return nil
	}
	seen := map[string]int{}
	out := make([]Stage, 0, len(n.Content))
	for i, item := range n.Content {
		out = append(out, p.stage(item, i, seen))
	}
	return out
}

func (p *parser) stage(n *yaml.Node, i int, seen map[string]int) Stage {
	label := fmt.Sprintf("stage %d", i+1)
	f := p.mapping(n, label)
	if f == nil {
		return Stage{}
	}
	s := Stage{Promotion: PromotionAuto}
	if s.Name = p.name(f, n, label, seen); s.Name != "" {
		label = fmt.Sprintf("stage %q", s.Name)
	}
	p.onlyKeys(f, label, stageKeys...)
	if _, ok := f["steps"]; !ok {
		p.add(n, label, "has no steps")
	}
	s.Steps = p.steps(f, "steps", label, true)
	s.Restart = p.steps(f, "restart", label, false)
	s.Shutdown = p.steps(f, "shutdown", label, false)
	if e, ok := f["verify"]; ok {
		s.Verify = p.verify(e, join(label, "verify"))
	}
	s.Secrets = p.secrets(f, label, &s)
	s.Require = p.require(f, label)
	s.AutoRollback = p.boolean(f, "auto_rollback", label)
	s.Production = p.boolean(f, "production", label)
	if e, ok := f["promotion"]; ok {
		if v, ok := p.str(e.val, join(label, "promotion")); ok {
			if v == PromotionAuto || v == PromotionManual {
				s.Promotion = v
			} else {
				p.add(e.val, join(label, "promotion"), "%q must be auto or manual", v)
			}
		}
	}
	return s
}

// steps reads the step list under key; an empty steps list is a problem
// when required (restart and shutdown may be empty).
func (p *parser) steps(f fields, key, stageLabel string, required bool) []Step {
	e, ok := f[key]
	if !ok {
		return nil
	}
	n := resolve(e.val)
	if isNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		if required {
			p.add(e.key, stageLabel, "has no steps")
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, join(stageLabel, key), "must be a list of steps, not %s", describe(n))
		return nil
	}
	kind := "step"
	if key != "steps" {
		kind = key + " step"
	}
	seen := map[string]int{}
	out := make([]Step, 0, len(n.Content))
	for i, item := range n.Content {
		out = append(out, p.step(item, join(stageLabel, kind), i, seen))
	}
	return out
}

func (p *parser) step(n *yaml.Node, kindLabel string, i int, seen map[string]int) Step {
	label := fmt.Sprintf("%s %d", kindLabel, i+1)
	f := p.mapping(n, label)
	if f == nil {
		return Step{}
	}
	st := Step{Timeout: DefaultStepTimeout}
	if st.Name = p.name(f, n, label, seen); st.Name != "" {
		label = fmt.Sprintf("%s %q", kindLabel, st.Name)
	}
	p.onlyKeys(f, label, stepKeys...)
	run, hasRun := f["run"]
	wf, hasWorkflow := f["workflow"]
	switch {
	case hasRun && hasWorkflow:
		p.add(wf.key, label, "has both run and workflow; a step has exactly one")
	case hasRun:
		st.Run = p.command(run.val, join(label, "run"))
	case hasWorkflow:
		st.Workflow = p.workflow(wf.val, join(label, "workflow"))
	default:
		p.add(n, label, "needs run (a shell command) or workflow (a workflow file)")
	}
	if e, ok := f["inputs"]; ok {
		if hasWorkflow {
			st.Inputs = p.inputs(e, join(label, "inputs"))
		} else {
			p.add(e.key, label, "inputs are only for workflow steps")
		}
	}
	st.Env = p.env(f, label)
	st.Timeout = p.duration(f, "timeout", label, DefaultStepTimeout)
	st.Infra = p.boolean(f, "infra", label)
	return st
}

func (p *parser) verify(e entry, label string) *Verify {
	f := p.mapping(e.val, label)
	if f == nil {
		return nil
	}
	p.onlyKeys(f, label, verifyKeys...)
	v := &Verify{Interval: DefaultVerifyInterval, Timeout: DefaultVerifyTimeout}
	if r, ok := f["run"]; ok {
		v.Run = p.command(r.val, join(label, "run"))
	} else {
		p.add(e.key, label, "needs run (the health check command)")
	}
	v.Retries = p.count(f, "retries", label)
	v.Interval = p.duration(f, "interval", label, DefaultVerifyInterval)
	v.Timeout = p.duration(f, "timeout", label, DefaultVerifyTimeout)
	v.Env = p.env(f, label)
	return v
}

func (p *parser) permissions(top fields, stages []Stage) Permissions {
	perm := Permissions{Default: LevelWrite}
	e, ok := top["permissions"]
	if !ok || isNull(resolve(e.val)) {
		return perm
	}
	f := p.mapping(e.val, "permissions")
	p.onlyKeys(f, "permissions", permKeys...)
	if d, ok := f["default"]; ok {
		perm.Default = p.level(d.val, "permissions default")
	}
	if c, ok := f["commands"]; ok {
		perm.Commands = p.levels(c, "permissions commands", func(k string) bool { return slices.Contains(commands, k) },
			"is not a command ("+strings.Join(commands, ", ")+")")
	}
	if s, ok := f["stages"]; ok {
		known := func(k string) bool {
			return slices.ContainsFunc(stages, func(s Stage) bool { return s.Name == k })
		}
		perm.Stages = p.levels(s, "permissions stages", known, "is not a stage of this pipeline")
	}
	return perm
}

func (p *parser) levels(e entry, label string, known func(string) bool, unknown string) map[string]Level {
	out := map[string]Level{}
	p.each(e, label, func(k, v *yaml.Node) {
		if !known(k.Value) {
			p.add(k, label, "%q %s", k.Value, unknown)
			return
		}
		out[k.Value] = p.level(v, join(label, k.Value))
	})
	return out
}

func (p *parser) level(n *yaml.Node, label string) Level {
	s, ok := p.str(n, label)
	if !ok {
		return ""
	}
	if l := Level(s); l.Valid() {
		return l
	}
	p.add(n, label, "%q is not a permission level (read, triage, write, maintain, admin)", s)
	return ""
}

// name reads and checks the name of a stage or step, unique within seen.
func (p *parser) name(f fields, parent *yaml.Node, label string, seen map[string]int) string {
	e, ok := f["name"]
	if !ok {
		p.add(parent, label, "needs a name")
		return ""
	}
	s, ok := p.str(e.val, join(label, "name"))
	if !ok {
		return ""
	}
	if len(s) > maxNameLen || !nameRe.MatchString(s) {
		p.add(e.val, join(label, "name"),
			"%q must be lowercase letters, digits and dashes, start with a letter or digit, and be at most %d characters",
			s, maxNameLen)
		return ""
	}
	if first, dup := seen[s]; dup {
		p.add(e.val, join(label, "name"), "%q is used twice (first on line %d)", s, first)
		return s
	}
	seen[s] = e.val.Line
	return s
}

func (p *parser) command(n *yaml.Node, label string) string {
	s, ok := p.str(n, label)
	if ok && strings.TrimSpace(s) == "" {
		p.add(n, label, "must not be empty")
	}
	return s
}

func (p *parser) workflow(n *yaml.Node, label string) string {
	s, ok := p.str(n, label)
	if !ok {
		return ""
	}
	name := strings.TrimPrefix(s, ".github/workflows/")
	if !workflowRe.MatchString(name) {
		p.add(n, label, "%q must be a workflow file name in .github/workflows, like deploy.yml", s)
	}
	return name
}

func (p *parser) inputs(e entry, label string) map[string]string {
	out := map[string]string{}
	p.each(e, label, func(k, v *yaml.Node) {
		switch {
		case !inputNameRe.MatchString(k.Value):
			p.add(k, label, "%q is not a valid input name", k.Value)
		case slices.Contains(reservedInputs, k.Value):
			p.add(k, label, "%q is set by Railyard (it always passes stage, sha and operation)", k.Value)
		default:
			if s, ok := p.str(v, join(label, k.Value)); ok {
				out[k.Value] = s
			}
		}
	})
	return out
}

func (p *parser) env(f fields, label string) map[string]string {
	e, ok := f["env"]
	if !ok {
		return nil
	}
	label = join(label, "env")
	out := map[string]string{}
	p.each(e, label, func(k, v *yaml.Node) {
		switch name := k.Value; {
		case !envName.MatchString(name):
			p.add(k, label, "%q is not a valid variable name (letters, digits, _; not starting with a digit)", name)
		case reservedEnv(name):
			p.add(k, label, "%q is set by Railyard and cannot be changed", name)
		default:
			if s, ok := p.str(v, join(label, name)); ok {
				out[name] = s
			}
		}
	})
	return out
}

func (p *parser) boolean(f fields, key, label string) bool {
	e, ok := f[key]
	if !ok {
		return false
	}
	n := resolve(e.val)
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.add(n, join(label, key), "must be true or false, not %s", describe(n))
	}
	return b
}

func (p *parser) count(f fields, key, label string) int {
	e, ok := f[key]
	if !ok {
		return 0
	}
	n := resolve(e.val)
	var i int
	switch {
	case n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil:
		p.add(n, join(label, key), "must be a whole number, not %s", describe(n))
	case i < 0:
		p.add(n, join(label, key), "must not be negative, not %d", i)
	}
	return i
}

func (p *parser) duration(f fields, key, label string, def time.Duration) time.Duration {
	e, ok := f[key]
	if !ok {
		return def
	}
	label = join(label, key)
	s, ok := p.str(e.val, label)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		p.add(e.val, label, "%q is not a duration like 10m or 90s", s)
	case d <= 0:
		p.add(e.val, label, "must be positive, not %s", s)
	}
	return d
}

// str returns the text of a scalar; it reports anything else.
func (p *parser) str(n *yaml.Node, label string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.add(n, label, "must be a single value, not %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// mapping checks that n is a mapping and returns its entries; nil when n
// is not a mapping.
func (p *parser) mapping(n *yaml.Node, label string) fields {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.add(n, label, "must be a mapping of keys to values, not %s", describe(n))
		return nil
	}
	f := fields{}
	for _, e := range p.entries(n, label) {
		f[e.key.Value] = e
	}
	return f
}

// onlyKeys reports the keys of f that are not in known and drops them.
func (p *parser) onlyKeys(f fields, label string, known ...string) {
	byPosition := func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.key.Line, b.key.Line), cmp.Compare(a.key.Column, b.key.Column))
	}
	for _, e := range slices.SortedFunc(maps.Values(f), byPosition) {
		if !slices.Contains(known, e.key.Value) {
			p.add(e.key, label, "unknown key %q (known: %s)", e.key.Value, strings.Join(known, ", "))
			delete(f, e.key.Value)
		}
	}
}

// each calls fn for every entry of a free-form mapping (env, inputs, ...),
// where an empty value means an empty mapping.
func (p *parser) each(e entry, label string, fn func(k, v *yaml.Node)) {
	n := resolve(e.val)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.add(n, label, "must be a mapping of names to values, not %s", describe(n))
		return
	}
	for _, kv := range p.entries(n, label) {
		fn(kv.key, kv.val)
	}
}

// entries lists a mapping's keys and values, reporting keys that are not
// plain values, repeated keys and merge keys.
func (p *parser) entries(n *yaml.Node, label string) []entry {
	var out []entry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		switch first, dup := seen[k.Value]; {
		case k.ShortTag() == "!!merge":
			// Like GitHub Actions: anchors and aliases work, merging does not.
			p.add(k, label, "merge keys (<<) are not supported; write the keys out")
		case k.Kind != yaml.ScalarNode:
			p.add(k, label, "keys must be single values, not %s", describe(k))
		case dup:
			p.add(k, label, "key %q appears twice (first on line %d)", k.Value, first)
		default:
			seen[k.Value] = k.Line
			out = append(out, entry{key: k, val: v})
		}
	}
	return out
}

// resolve follows YAML aliases (*name) to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's value for messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "empty"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	}
	return "a YAML document"
}
