package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(aliasBomb(30, 30))
	f.Add(sharedEnvFile(3, 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		pl, problems := Parse(data)
		// Bounded work: what Parse returns grows with the file and the
		// alias budget, never with what the aliases multiply.
		if n, limit := resultSize(pl, problems), 4*(len(data)+MaxAliasNodes); n > limit {
			t.Fatalf("%d results from %d bytes, more than %d", n, len(data), limit)
		}
		lines := 0
		for range strings.Lines(string(data)) {
			lines++
		}
		lines = max(lines, 1)
		for i, p := range problems {
			if p.Line < 1 || p.Line > lines || p.Message == "" {
				t.Errorf("problem %d of a %d-line file: %v", i, lines, p)
			}
			if i > 0 && problems[i-1].Line > p.Line {
				t.Errorf("problems out of line order: %v", problems)
			}
		}
		if (pl == nil) == (len(problems) == 0) {
			t.Fatalf("pipeline %v with %d problems; want exactly one of them", pl, len(problems))
		}
		if pl == nil {
			return
		}
		checkPipeline(t, pl)
		if again, _ := Parse(data); !reflect.DeepEqual(again, pl) {
			t.Errorf("the same file parsed twice differs:\n%+v\n%+v", pl, again)
		}
	})
}

func resultSize(pl *Pipeline, problems []Problem) int {
	n := len(problems)
	if pl == nil {
		return n
	}
	n += len(pl.Stages) + len(pl.Permissions.Commands) + len(pl.Permissions.Stages)
	for _, s := range pl.Stages {
		for _, st := range slices.Concat(s.Steps, s.Restart, s.Shutdown) {
			n += 1 + len(st.Env) + len(st.Inputs)
		}
		if s.Verify != nil {
			n += 1 + len(s.Verify.Env)
		}
	}
	return n
}

// checkPipeline checks what Railyard relies on in a pipeline Parse accepted.
func checkPipeline(t *testing.T, pl *Pipeline) {
	t.Helper()
	if strings.HasPrefix(pl.Branch, "refs/") || strings.Contains(pl.Branch, "..") {
		t.Errorf("branch %q", pl.Branch)
	}
	if len(pl.Stages) == 0 {
		t.Fatal("no stages")
	}
	stages := map[string]bool{}
	for _, s := range pl.Stages {
		checkName(t, "stage", s.Name, stages)
		if len(s.Steps) == 0 {
			t.Errorf("stage %q has no steps", s.Name)
		}
		if s.Promotion != PromotionAuto && s.Promotion != PromotionManual {
			t.Errorf("stage %q promotion %q", s.Name, s.Promotion)
		}
		for _, steps := range [][]Step{s.Steps, s.Restart, s.Shutdown} {
			names := map[string]bool{}
			for _, st := range steps {
				checkName(t, "step", st.Name, names)
				checkStep(t, st)
			}
		}
		if v := s.Verify; v != nil {
			if strings.TrimSpace(v.Run) == "" || v.Retries < 0 || v.Interval <= 0 || v.Timeout <= 0 {
				t.Errorf("stage %q verify %+v", s.Name, v)
			}
			checkEnv(t, v.Env)
		}
	}
	perm := pl.Permissions
	if !perm.Default.Valid() {
		t.Errorf("default permission %q", perm.Default)
	}
	for c, l := range perm.Commands {
		if !slices.Contains(commands, c) || !l.Valid() {
			t.Errorf("command permission %q: %q", c, l)
		}
	}
	for s, l := range perm.Stages {
		if !stages[s] || !l.Valid() {
			t.Errorf("stage permission %q: %q", s, l)
		}
	}
}

func checkName(t *testing.T, kind, name string, seen map[string]bool) {
	t.Helper()
	if len(name) > maxNameLen || !nameRe.MatchString(name) || seen[name] {
		t.Errorf("%s name %q (seen before: %t)", kind, name, seen[name])
	}
	seen[name] = true
}

func checkStep(t *testing.T, st Step) {
	t.Helper()
	switch {
	case (st.Run == "") == (st.Workflow == ""):
		t.Errorf("step %q: run %q, workflow %q; want exactly one", st.Name, st.Run, st.Workflow)
	case st.Run != "" && strings.TrimSpace(st.Run) == "":
		t.Errorf("step %q: blank run", st.Name)
	case st.Workflow != "" && !workflowRe.MatchString(st.Workflow):
		t.Errorf("step %q: workflow %q", st.Name, st.Workflow)
	case st.Run != "" && st.Inputs != nil:
		t.Errorf("step %q: inputs on a run step", st.Name)
	case st.Timeout <= 0:
		t.Errorf("step %q: timeout %v", st.Name, st.Timeout)
	}
	for k := range st.Inputs {
		if !inputNameRe.MatchString(k) || slices.Contains(reservedInputs, k) {
			t.Errorf("step %q: input %q", st.Name, k)
		}
	}
	checkEnv(t, st.Env)
}

func checkEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k := range env {
		if !envName.MatchString(k) || k == "PATH" || k == "HOME" || strings.HasPrefix(k, "RAILYARD_") {
			t.Errorf("env %q", k)
		}
	}
}
