package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// specPipeline is the example of docs/reference.md#pipeline-file as it must
// parse, defaults included.
var specPipeline = &Pipeline{
	Branch: "main",
	Stages: []Stage{
		{
			Name:      "build",
			Promotion: "auto",
			Steps:     []Step{{Name: "compile", Run: "make build", Timeout: 10 * time.Minute}},
		},
		{
			Name:         "staging",
			Promotion:    "auto",
			Steps:        []Step{{Name: "deploy", Run: "./deploy.sh staging", Timeout: 30 * time.Minute}},
			Verify:       &Verify{Run: "./smoke.sh staging", Retries: 3, Interval: 10 * time.Second, Timeout: 5 * time.Minute},
			AutoRollback: true,
		},
		{
			Name:       "prod",
			Promotion:  "manual",
			Production: true,
			Steps: []Step{
				{Name: "terraform", Run: "terraform apply -auto-approve", Timeout: 30 * time.Minute, Infra: true},
				{Name: "deploy", Run: "./deploy.sh prod", Timeout: 30 * time.Minute},
			},
			Restart:  []Step{{Name: "restart", Run: "./ctl.sh restart prod", Timeout: 30 * time.Minute}},
			Shutdown: []Step{{Name: "shutdown", Run: "./ctl.sh stop prod", Timeout: 30 * time.Minute}},
		},
	},
	Permissions: Permissions{
		Default:  "write",
		Commands: map[string]Level{"stop": "maintain", "resume": "maintain", "patch": "maintain"},
		Stages:   map[string]Level{"prod": "maintain"},
	},
}

func TestParseSpecExample(t *testing.T) {
	data, err := os.ReadFile("testdata/pipeline.yml")
	if err != nil {
		t.Fatal(err)
	}
	got, problems := Parse(data)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if !reflect.DeepEqual(got, specPipeline) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, specPipeline)
	}
}

// yamlLines joins lines, so that a case's line N is its Nth argument.
func yamlLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, p *Pipeline)
	}{
		{
			name: "minimal file: defaults",
			yaml: yamlLines("stages:", "  - name: build", "    steps: [{name: make, run: make}]"),
			check: func(t *testing.T, p *Pipeline) {
				want := &Pipeline{
					Stages:      []Stage{{Name: "build", Promotion: "auto", Steps: []Step{{Name: "make", Run: "make", Timeout: 30 * time.Minute}}}},
					Permissions: Permissions{Default: "write"},
				}
				if !reflect.DeepEqual(p, want) {
					t.Errorf("got %+v, want %+v", p, want)
				}
			},
		},
		{
			name: "workflow step with inputs and env; the workflows path is optional",
			yaml: yamlLines(
				"stages:",
				"  - name: deploy",
				"    steps:",
				"      - name: a",
				"        workflow: .github/workflows/deploy.yml",
				"        inputs: {region: eu-west-1, dry_run: true}",
				"        env: {TF_LOG: debug, PORT: 8080, EMPTY: ''}",
				"      - name: b",
				"        workflow: release.yaml",
			),
			check: func(t *testing.T, p *Pipeline) {
				a, b := p.Stages[0].Steps[0], p.Stages[0].Steps[1]
				if a.Workflow != "deploy.yml" || b.Workflow != "release.yaml" {
					t.Errorf("workflows = %q, %q", a.Workflow, b.Workflow)
				}
				if want := map[string]string{"region": "eu-west-1", "dry_run": "true"}; !reflect.DeepEqual(a.Inputs, want) {
					t.Errorf("inputs = %v, want %v", a.Inputs, want)
				}
				if want := map[string]string{"TF_LOG": "debug", "PORT": "8080", "EMPTY": ""}; !reflect.DeepEqual(a.Env, want) {
					t.Errorf("env = %v, want %v", a.Env, want)
				}
			},
		},
		{
			name: "63-character names; a step name may repeat across steps, restart and shutdown",
			yaml: yamlLines(
				"stages:",
				"  - name: "+strings.Repeat("a", 63),
				"    steps: [{name: go, run: x}]",
				"    restart: [{name: go, run: x}]",
				"    shutdown: [{name: go, run: x}]",
			),
			check: func(t *testing.T, p *Pipeline) {
				if s := p.Stages[0]; len(s.Steps) != 1 || len(s.Restart) != 1 || len(s.Shutdown) != 1 {
					t.Errorf("stage = %+v", s)
				}
			},
		},
		{
			name: "aliases",
			yaml: yamlLines(
				"stages:",
				"  - name: a",
				"    steps: [{name: x, run: y, env: &common {A: '1'}}]",
				"  - name: b",
				"    steps: [{name: x, run: y, env: *common}]",
			),
			check: func(t *testing.T, p *Pipeline) {
				if got := p.Stages[1].Steps[0].Env; !reflect.DeepEqual(got, map[string]string{"A": "1"}) {
					t.Errorf("aliased env = %v", got)
				}
			},
		},
		{
			name: "secrets, require and patch",
			yaml: yamlLines(
				"require: {checks: [ci/test], approvals: 1}",
				"patch: {allow_forks: true}",
				"stages:",
				"  - name: build",
				"    steps: [{name: x, run: y}]",
				"  - name: prod",
				"    production: true",
				"    secrets: [AWS_ROLE_ARN, db_password]",
				"    require: {checks: [ci/e2e, 'Lint / go vet']}",
				"    steps: [{name: x, run: y, env: {REGION: eu}}]",
			),
			check: func(t *testing.T, p *Pipeline) {
				if got := p.Stages[1].Secrets; !reflect.DeepEqual(got, []string{"AWS_ROLE_ARN", "db_password"}) {
					t.Errorf("secrets = %q", got)
				}
				if p.Stages[0].Secrets != nil {
					t.Errorf("build secrets = %q, want none", p.Stages[0].Secrets)
				}
				if want := (&Require{Checks: []string{"ci/test"}, Approvals: 1}); !reflect.DeepEqual(p.Requirements("build"), want) {
					t.Errorf("build requires %+v, want the file's %+v", p.Requirements("build"), want)
				}
				if want := (&Require{Checks: []string{"ci/e2e", "Lint / go vet"}}); !reflect.DeepEqual(p.Requirements("prod"), want) {
					t.Errorf("prod requires %+v, want its own %+v", p.Requirements("prod"), want)
				}
				if !p.Patch.AllowForks {
					t.Error("patch.allow_forks not read")
				}
			},
		},
		{
			name: "no require block: no gate; an empty one requires the branch's checks",
			yaml: yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    require: {}", "  - name: b", "    steps: [{name: x, run: y}]"),
			check: func(t *testing.T, p *Pipeline) {
				if r := p.Requirements("b"); r != nil {
					t.Errorf("b requires %+v, want nil", r)
				}
				if r := p.Requirements("a"); r == nil || len(r.Checks) != 0 || r.Approvals != 0 {
					t.Errorf("a requires %+v, want an empty gate", r)
				}
			},
		},
		{
			name: "verify defaults, empty permissions",
			yaml: yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    verify: {run: ./check}", "permissions:"),
			check: func(t *testing.T, p *Pipeline) {
				want := &Verify{Run: "./check", Interval: 10 * time.Second, Timeout: 5 * time.Minute}
				if !reflect.DeepEqual(p.Stages[0].Verify, want) {
					t.Errorf("verify = %+v, want %+v", p.Stages[0].Verify, want)
				}
				if p.Permissions.Default != LevelWrite {
					t.Errorf("default permission = %q", p.Permissions.Default)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, problems := Parse([]byte(tt.yaml))
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			tt.check(t, p)
		})
	}
}

// stage wraps step lines in a valid file whose first step line is line 4.
func stepFile(stepLines ...string) string {
	return yamlLines(append([]string{"stages:", "  - name: build", "    steps:"}, stepLines...)...)
}

func TestParseProblems(t *testing.T) {
	type want struct {
		line int
		text string // a part of the message
	}
	tests := []struct {
		name string
		yaml string
		want []want
	}{
		{"invalid YAML", "stages: [\n", []want{{1, "invalid YAML: did not find expected node content"}}},
		{"tab indentation", yamlLines("stages:", "\t- name: build"), []want{{2, "invalid YAML: found character that cannot start any token"}}},
		{"empty file", "", []want{{1, "the file is empty"}}},
		{"only comments", "# nothing\n", []want{{1, "the file is empty"}}},
		{"only a document marker, whose node yaml.v3 puts on line 2", "---", []want{{1, "the file must be a mapping with a stages list, not empty"}}},
		{"top level is a list", "- build\n", []want{{1, "the file must be a mapping with a stages list, not a list"}}},
		{"two documents", yamlLines("stages: [{name: a, steps: [{name: x, run: y}]}]", "---", "stages: []"),
			[]want{{2, "more than one YAML document"}}},
		{"unknown top-level key", yamlLines("stages: [{name: a, steps: [{name: x, run: y}]}]", "stage: x"),
			[]want{{2, `unknown key "stage" (known: branch, stages, permissions, require, patch)`}}},
		{"no stages key", "branch: main\n", []want{{1, "no stages: the file needs a stages list"}}},
		{"empty stages", yamlLines("branch: main", "stages: []"), []want{{2, "no stages: the stages list is empty"}}},
		{"stages not a list", "stages: build\n", []want{{1, `stages: must be a list of stages, not "build"`}}},
		{"stage not a mapping", yamlLines("stages:", "  - build"), []want{{2, `stage 1: must be a mapping of keys to values, not "build"`}}},
		{"stage without name", yamlLines("stages:", "  - steps: [{name: x, run: y}]"), []want{{2, "stage 1: needs a name"}}},
		{"uppercase stage name", yamlLines("stages:", "  - name: Build", "    steps: [{name: x, run: y}]"),
			[]want{{2, `stage 1 name: "Build" must be lowercase letters, digits and dashes`}}},
		{"stage name starting with a dash", yamlLines("stages:", "  - name: -x", "    steps: [{name: x, run: y}]"),
			[]want{{2, `stage 1 name: "-x" must be lowercase`}}},
		{"stage name of 64 characters", yamlLines("stages:", "  - name: "+strings.Repeat("a", 64), "    steps: [{name: x, run: y}]"),
			[]want{{2, "at most 63 characters"}}},
		{"duplicate stage", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "  - name: a", "    steps: [{name: x, run: y}]"),
			[]want{{4, `stage 2 name: "a" is used twice (first on line 2)`}}},
		{"stage without steps key", yamlLines("stages:", "  - name: a", "    promotion: manual"), []want{{2, `stage "a": has no steps`}}},
		{"stage with empty steps", yamlLines("stages:", "  - name: a", "    steps: []"), []want{{3, `stage "a": has no steps`}}},
		{"unknown stage key", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    auto-rollback: true"),
			[]want{{4, `stage "a": unknown key "auto-rollback"`}}},
		{"duplicate key", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    name: b"),
			[]want{{4, `stage 1: key "name" appears twice (first on line 2)`}}},
		{"merge key", yamlLines("stages:", "  - <<: {name: a}", "    steps: [{name: x, run: y}]"),
			[]want{{2, "merge keys (<<) are not supported"}, {2, "stage 1: needs a name"}}},
		{"unknown step key", stepFile("      - name: x", "        rn: make"),
			[]want{{4, `stage "build" step "x": needs run (a shell command) or workflow (a workflow file)`}, {5, `stage "build" step "x": unknown key "rn"`}}},
		{"bad step name", stepFile("      - name: Compile_All", "        run: make"), []want{{4, `stage "build" step 1 name: "Compile_All" must be lowercase`}}},
		{"step without a name", stepFile("      - run: make"), []want{{4, `stage "build" step 1: needs a name`}}},
		{"duplicate step", stepFile("      - {name: x, run: a}", "      - {name: x, run: b}"),
			[]want{{5, `stage "build" step 2 name: "x" is used twice (first on line 4)`}}},
		{"duplicate restart step", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    restart:", "      - {name: r, run: a}", "      - {name: r, run: b}"),
			[]want{{6, `stage "a" restart step 2 name: "r" is used twice (first on line 5)`}}},
		{"both run and workflow", stepFile("      - name: x", "        run: make", "        workflow: build.yml"),
			[]want{{6, `stage "build" step "x": has both run and workflow`}}},
		{"empty run", stepFile("      - name: x", `        run: " "`), []want{{5, `stage "build" step "x" run: must not be empty`}}},
		{"run without a value", stepFile("      - name: x", "        run:"), []want{{5, `stage "build" step "x" run: must be a single value, not empty`}}},
		{"run is a list", stepFile("      - name: x", "        run: [make, test]"), []want{{5, `stage "build" step "x" run: must be a single value, not a list`}}},
		{"inputs on a run step", stepFile("      - name: x", "        run: make", "        inputs:", "          a: b"),
			[]want{{6, `stage "build" step "x": inputs are only for workflow steps`}}},
		{"bad workflow name", stepFile("      - name: x", "        workflow: deploy"), []want{{5, `workflow: "deploy" must be a workflow file name in .github/workflows`}}},
		{"workflow in another directory", stepFile("      - name: x", "        workflow: ci/deploy.yml"), []want{{5, `workflow: "ci/deploy.yml" must be a workflow file name`}}},
		{"reserved and bad inputs", stepFile("      - name: x", "        workflow: d.yml", "        inputs:", "          sha: abc", "          bad name: 1"),
			[]want{{7, `inputs: "sha" is set by Railyard`}, {8, `inputs: "bad name" is not a valid input name`}}},
		{"duration without unit", stepFile("      - name: x", "        run: make", "        timeout: 10"),
			[]want{{6, `stage "build" step "x" timeout: "10" is not a duration like 10m or 90s`}}},
		{"zero duration", stepFile("      - name: x", "        run: make", "        timeout: 0s"), []want{{6, "timeout: must be positive, not 0s"}}},
		{"negative duration", stepFile("      - name: x", "        run: make", "        timeout: -1m"), []want{{6, "timeout: must be positive, not -1m"}}},
		{"step boolean", stepFile("      - name: x", "        run: make", "        infra: yes"), []want{{6, `stage "build" step "x" infra: must be true or false, not "yes"`}}},
		{"env problems", stepFile("      - name: x", "        run: make", "        env:", "          PATH: /bin", "          HOME: /root", "          RAILYARD_SHA: x", "          my-var: 1", "          OK_1: fine"),
			[]want{
				{7, `env: "PATH" is set by Railyard`},
				{8, `env: "HOME" is set by Railyard`},
				{9, `env: "RAILYARD_SHA" is set by Railyard`},
				{10, `env: "my-var" is not a valid variable name`},
			}},
		{"env not a mapping", stepFile("      - name: x", "        run: make", "        env: [A=1]"), []want{{6, `env: must be a mapping of names to values, not a list`}}},
		{"env value not a scalar", stepFile("      - name: x", "        run: make", "        env: {A: {B: 1}}"), []want{{6, `env A: must be a single value, not a mapping`}}},
		{"verify problems", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    verify:", "      retries: -1", "      interval: soon", "      timeout: 0s", "      env: {PATH: x}"),
			[]want{
				{4, `stage "a" verify: needs run`},
				{5, `stage "a" verify retries: must not be negative, not -1`},
				{6, `stage "a" verify interval: "soon" is not a duration`},
				{7, `stage "a" verify timeout: must be positive`},
				{8, `stage "a" verify env: "PATH" is set by Railyard`},
			}},
		{"retries not a number", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    verify: {run: z, retries: three}"),
			[]want{{4, `verify retries: must be a whole number, not "three"`}}},
		{"stage fields", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    promotion: later", "    production: 'true'", "    auto_rollback: 1"),
			[]want{
				{4, `stage "a" promotion: "later" must be auto or manual`},
				{5, `stage "a" production: must be true or false, not "true"`},
				{6, `stage "a" auto_rollback: must be true or false, not "1"`},
			}},
		{"secrets problems", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y, env: {TOKEN: t}}]", "    secrets:", "      - PATH", "      - RAILYARD_TOKEN", "      - 2FA", "      - TOKEN", "      - KEY", "      - KEY", "      - [X]"),
			[]want{
				{4, `stage "a" secrets: "TOKEN" is also set by the env: of step x`},
				{5, `stage "a" secrets: "PATH" is set by Railyard and cannot be a secret`},
				{6, `stage "a" secrets: "RAILYARD_TOKEN" is set by Railyard`},
				{7, `stage "a" secrets: "2FA" is not a valid variable name`},
				{10, `stage "a" secrets: "KEY" is listed twice (first on line 9)`},
				{11, `stage "a" secrets: must be a single value, not a list`},
			}},
		{"secrets not a list", yamlLines("stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    secrets: {A: b}"),
			[]want{{4, `stage "a" secrets: must be a list of names, not a mapping`}}},
		{"require problems", yamlLines("require: {checks: ci, approvals: -1, reviewers: 2}", "patch: {allow_forks: yes, forks: true}", "stages:", "  - name: a", "    steps: [{name: x, run: y}]", "    require: {checks: ['', ci, ci], approvals: one}"),
			[]want{
				{1, `require: unknown key "reviewers" (known: checks, approvals)`},
				{1, `require approvals: must not be negative, not -1`},
				{1, `require checks: must be a list of names, not "ci"`},
				{2, `patch: unknown key "forks" (known: allow_forks)`},
				{2, `patch allow_forks: must be true or false, not "yes"`},
				{6, `stage "a" require approvals: must be a whole number, not "one"`},
				{6, `stage "a" require checks: a check name must not be empty`},
				{6, `stage "a" require checks: "ci" is listed twice (first on line 6)`},
			}},
		{"branch with refs/", yamlLines("branch: refs/heads/main", "stages: [{name: a, steps: [{name: x, run: y}]}]"),
			[]want{{1, `branch: "refs/heads/main" must be a plain branch name`}}},
		{"branch with a space", yamlLines("branch: my branch", "stages: [{name: a, steps: [{name: x, run: y}]}]"),
			[]want{{1, `branch: "my branch" is not a valid branch name`}}},
		{"branch git refuses", yamlLines("branch: release/.next.lock", "stages: [{name: a, steps: [{name: x, run: y}]}]"),
			[]want{{1, `branch: "release/.next.lock" is not a valid branch name`}}},
		{"permissions", yamlLines(
			"stages: [{name: a, steps: [{name: x, run: y}]}]",
			"permissions:",
			"  default: owner",
			"  commands:",
			"    ship: admin",
			"    stop: superuser",
			"  stages:",
			"    prod: admin",
			"    a: maintain",
			"  users: {alice: admin}",
		), []want{
			{3, `permissions default: "owner" is not a permission level (read, triage, write, maintain, admin)`},
			{5, `permissions commands: "ship" is not a command (deploy, cancel, retry,`},
			{6, `permissions commands stop: "superuser" is not a permission level`},
			{8, `permissions stages: "prod" is not a stage of this pipeline`},
			{10, `permissions: unknown key "users"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, problems := Parse([]byte(tt.yaml))
			if p != nil {
				t.Errorf("pipeline = %+v, want nil", p)
			}
			if len(problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(problems), len(tt.want), problemList(problems))
			}
			for i, w := range tt.want {
				if got := problems[i]; got.Line != w.line || !strings.Contains(got.Message, w.text) {
					t.Errorf("problem %d = %v, want line %d: …%s…", i+1, got, w.line, w.text)
				}
			}
		})
	}
}

func problemList(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}
