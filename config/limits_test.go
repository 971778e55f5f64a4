package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// aliasBomb is the file of issue #12: one anchored step aliased steps
// times inside one anchored stage aliased stages times.
func aliasBomb(steps, stages int) []byte {
	var b strings.Builder
	b.WriteString("stages: [&st {name: a, steps: [&s {name: a, run: x}")
	b.WriteString(strings.Repeat(",*s", steps-1))
	b.WriteString("]}")
	b.WriteString(strings.Repeat(",*st", stages-1))
	b.WriteString("]\n")
	return []byte(b.String())
}

// sharedEnvFile is a big real pipeline whose steps share the first step's
// env block of four variables (9 nodes) through aliases.
func sharedEnvFile(stages, steps int) []byte {
	var b strings.Builder
	b.WriteString("stages:\n")
	for i := range stages {
		fmt.Fprintf(&b, "  - name: s%d\n    steps:\n", i)
		for j := range steps {
			env := "*env"
			if i == 0 && j == 0 {
				env = "&env {REGION: eu-west-1, TIER: web, LOG: debug, TEAM: core}"
			}
			fmt.Fprintf(&b, "      - {name: t%d, run: ./deploy.sh, env: %s}\n", j, env)
		}
	}
	return []byte(b.String())
}

func TestParseRefusesAliasBombs(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		at   string // the alias named in the message
	}{
		{"issue #12: a step aliased 3,000 times in a stage aliased 3,000 times", string(aliasBomb(3000, 3000)), 1, "*s"},
		{"one level, far past the budget", yamlLines(
			"stages:",
			"  - name: a",
			"    steps: [{name: x, run: y, env: &big {"+strings.Repeat("A: b, ", 1)+"B: c}}]",
			"  - name: b",
			"    steps: ["+strings.TrimSuffix(strings.Repeat("{name: x, run: y, env: *big}, ", MaxAliasNodes/5+1), ", ")+"]",
		), 5, "*big"},
		{"an alias bomb under a key Railyard does not know", yamlLines(
			"stages: [{name: a, steps: [{name: x, run: y}]}]",
			"x-a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
			"x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
			"x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
			"x-d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
		), 5, "*c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, problems := Parse([]byte(tt.yaml))
			if p != nil {
				t.Errorf("pipeline = %+v, want nil", p)
			}
			want := fmt.Sprintf("YAML aliases expand to more than %d nodes (the limit ran out at %s); "+
				"Railyard refuses files whose aliases repeat this much: alias less, or write the repeated parts out", MaxAliasNodes, tt.at)
			if len(problems) != 1 || problems[0].Line != tt.line || problems[0].Message != want {
				t.Errorf("problems:\n%s\nwant one, at line %d: %s", problemList(problems), tt.line, want)
			}
		})
	}
}

func TestParseKeepsRealAliases(t *testing.T) {
	// 30 stages of 10 steps sharing one env block: 2,700 nodes through aliases.
	p, problems := Parse(sharedEnvFile(30, 10))
	if len(problems) > 0 {
		t.Fatalf("problems:\n%s", problemList(problems))
	}
	last := p.Stages[29].Steps[9]
	if len(p.Stages) != 30 || last.Env["TEAM"] != "core" || len(last.Env) != 4 {
		t.Errorf("last step = %+v of %d stages", last, len(p.Stages))
	}
	// A whole stage shared: its problems are still reported once, where written.
	_, problems = Parse([]byte(yamlLines(
		"stages:",
		"  - &s {name: a, steps: [{name: x, run: y, timeout: soon}]}",
		"  - *s",
	)))
	want := []string{
		`line 2: stage "a" step "x" timeout: "soon" is not a duration like 10m or 90s`,
		`line 2: stage 2 name: "a" is used twice (first on line 2)`,
	}
	if got := problemList(problems); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("problems:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestParseRefusesLargeFiles(t *testing.T) {
	valid := yamlLines("stages:", "  - name: build", "    steps: [{name: make, run: make}]")
	pad := func(size int) []byte {
		return []byte(valid + "#" + strings.Repeat("x", size-len(valid)-2) + "\n")
	}
	if p, problems := Parse(pad(MaxFileSize)); p == nil {
		t.Fatalf("a valid file of exactly %d bytes: %v", MaxFileSize, problems)
	}
	p, problems := Parse(pad(MaxFileSize + 1))
	want := Problem{Line: 1, Message: "the file is larger than 1 MiB (1048576 bytes), the most Railyard reads"}
	if p != nil || len(problems) != 1 || problems[0] != want {
		t.Errorf("pipeline %v, problems %v; want only %v", p, problems, want)
	}
}

func TestValidateFileRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	bomb, large := filepath.Join(dir, "bomb.yml"), filepath.Join(dir, "large.yml")
	if err := os.WriteFile(bomb, aliasBomb(3000, 3000), 0o644); err != nil {
		t.Fatal(err)
	}
	// Sparse, so the test writes nothing: validate must not read it all.
	f, err := os.Create(large)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for path, want := range map[string]string{
		bomb:  bomb + ":1: YAML aliases expand to more than",
		large: large + ":1: the file is larger than 1 MiB",
	} {
		var out strings.Builder
		n, err := ValidateFile(path, &out)
		if err != nil || n != 1 || !strings.HasPrefix(out.String(), want) {
			t.Errorf("ValidateFile(%s) = %d, %v, output %q; want one problem: %s…", path, n, err, out.String(), want)
		}
	}
}

// BenchmarkParseAlias is issue #12's 20 KB file, which took 38 s and
// 2.5 GB before aliases had a budget.
func BenchmarkParseAlias(b *testing.B) {
	data := aliasBomb(3000, 3000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if p, _ := Parse(data); p != nil {
			b.Fatal("the alias bomb parsed")
		}
	}
}
