package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateFile(t *testing.T) {
	tests := []struct {
		name string
		path string
		want []string // output lines after "PATH:"
	}{
		{name: "reference example", path: "testdata/pipeline.yml"},
		{
			name: "broken file: every problem, in line order",
			path: "testdata/broken.yml",
			want: []string{
				`2: branch: "refs/heads/main" must be a plain branch name like main, without refs/`,
				`4: stage 1 name: "Build" must be lowercase letters, digits and dashes, start with a letter or digit, and be at most 63 characters`,
				`8: stage 1 step "compile": has both run and workflow; a step has exactly one`,
				`9: stage 1 step "compile" timeout: "10" is not a duration like 10m or 90s`,
				`14: stage "staging" step "deploy": inputs are only for workflow steps`,
				`16: stage "staging" step "deploy" env: "PATH" is set by Railyard and cannot be changed`,
				`17: stage "staging" step "deploy" env: "RAILYARD_SHA" is set by Railyard and cannot be changed`,
				`18: stage "staging" step "deploy" env: "2FAST" is not a valid variable name (letters, digits, _; not starting with a digit)`,
				`19: stage "staging" step 2 name: "deploy" is used twice (first on line 12)`,
				`21: stage "staging" step "deploy" timeout: must be positive, not -5m`,
				`24: stage "staging" verify retries: must not be negative, not -1`,
				`25: stage "staging" verify: unknown key "intervall" (known: run, retries, interval, timeout, env)`,
				`26: stage "staging" auto_rollback: must be true or false, not "yes"`,
				`27: stage "staging" promotion: "sometimes" must be auto or manual`,
				`28: stage 3 name: "staging" is used twice (first on line 10)`,
				`29: stage "staging": has no steps`,
				`32: stage "prod" step "deploy": needs run (a shell command) or workflow (a workflow file)`,
				`34: permissions default: "owner" is not a permission level (read, triage, write, maintain, admin)`,
				`35: permissions commands: "ship" is not a command (` + strings.Join(commands, ", ") + `)`,
				`36: permissions stages: "qa" is not a stage of this pipeline`,
				`37: unknown key "colour" (known: branch, stages, permissions, require, patch)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			n, err := ValidateFile(tt.path, &out)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tt.want) {
				t.Errorf("ValidateFile = %d problems, want %d", n, len(tt.want))
			}
			var want strings.Builder
			for _, line := range tt.want {
				fmt.Fprintf(&want, "%s:%s\n", tt.path, line)
			}
			if out.String() != want.String() {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), want.String())
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		var out strings.Builder
		if _, err := ValidateFile(filepath.Join(t.TempDir(), "railyard.yml"), &out); err == nil {
			t.Error("ValidateFile of a missing file: no error")
		}
	})
}
