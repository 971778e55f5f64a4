package config

import (
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	requireKeys = []string{"checks", "approvals"}
	patchKeys   = []string{"allow_forks"}

	// Variables Railyard sets in every step; neither env: nor secrets: may name them.
	reservedNames = []string{"PATH", "HOME"}
)

// reservedEnv reports whether a step may not set the variable name.
func reservedEnv(name string) bool {
	return slices.Contains(reservedNames, name) || strings.HasPrefix(name, "RAILYARD_")
}

// require reads a require block of the file (label "") or of a stage.
func (p *parser) require(f fields, label string) *Require {
	e, ok := f["require"]
	if !ok {
		return nil
	}
	label = join(label, "require")
	rf := p.mapping(e.val, label)
	if rf == nil {
		return nil
	}
	p.onlyKeys(rf, label, requireKeys...)
	r := &Require{Approvals: p.count(rf, "approvals", label)}
	if c, ok := rf["checks"]; ok {
		r.Checks = p.names(c, join(label, "checks"), func(n *yaml.Node, s string) bool {
			if strings.TrimSpace(s) == "" {
				p.add(n, join(label, "checks"), "a check name must not be empty")
				return false
			}
			return true
		})
	}
	return r
}

func (p *parser) patchRules(f fields) PatchRules {
	e, ok := f["patch"]
	if !ok || isNull(resolve(e.val)) {
		return PatchRules{}
	}
	pf := p.mapping(e.val, "patch")
	if pf == nil {
		return PatchRules{}
	}
	p.onlyKeys(pf, "patch", patchKeys...)
	return PatchRules{AllowForks: p.boolean(pf, "allow_forks", "patch")}
}

// secrets reads a stage's secrets list: names of variables, none that
// Railyard sets, none that a step's env: of the stage sets too.
func (p *parser) secrets(f fields, label string, s *Stage) []string {
	e, ok := f["secrets"]
	if !ok {
		return nil
	}
	label = join(label, "secrets")
	names := p.names(e, label, func(n *yaml.Node, name string) bool {
		switch {
		case !envName.MatchString(name):
			p.add(n, label, "%q is not a valid variable name (letters, digits, _; not starting with a digit)", name)
		case reservedEnv(name):
			p.add(n, label, "%q is set by Railyard and cannot be a secret", name)
		default:
			return true
		}
		return false
	})
	envs := map[string]map[string]string{}
	for kind, steps := range map[string][]Step{"step": s.Steps, "restart step": s.Restart, "shutdown step": s.Shutdown} {
		for _, st := range steps {
			envs[kind+" "+st.Name] = st.Env
		}
	}
	if s.Verify != nil {
		envs["verify"] = s.Verify.Env
	}
	for _, name := range names {
		for _, who := range slices.Sorted(maps.Keys(envs)) {
			if _, clash := envs[who][name]; clash {
				p.add(e.key, label, "%q is also set by the env: of %s; a secret cannot be overridden", name, who)
			}
		}
	}
	return names
}

// names reads a list of distinct strings; ok says whether to keep one.
func (p *parser) names(e entry, label string, ok func(n *yaml.Node, s string) bool) []string {
	n := resolve(e.val)
	if isNull(n) {
		return []string{}
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, label, "must be a list of names, not %s", describe(n))
		return nil
	}
	out := []string{}
	seen := map[string]int{}
	for _, item := range n.Content {
		s, isStr := p.str(item, label)
		if !isStr || !ok(resolve(item), s) {
			continue
		}
		if first, dup := seen[s]; dup {
			p.add(item, label, "%q is listed twice (first on line %d)", s, first)
			continue
		}
		seen[s] = resolve(item).Line
		out = append(out, s)
	}
	return out
}
