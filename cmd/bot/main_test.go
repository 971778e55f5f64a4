package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(good, []byte("stages:\n  - name: build\n    steps:\n      - name: compile\n        run: make\n"), 0o644)
	os.WriteFile(bad, []byte("stages:\n  - name: Build\n    steps:\n      - name: compile\n        timeout: soon\n"), 0o644)
	bomb := filepath.Join(dir, "bomb.yml")
	os.WriteFile(bomb, []byte("stages: [&st {name: a, steps: [&s {name: a, run: x}"+strings.Repeat(",*s", 2999)+"]}"+strings.Repeat(",*st", 2999)+"]\n"), 0o644)

	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"good file", []string{"validate", good}, 0, []string{"ok"}},
		{"broken file names each line", []string{"validate", bad}, 1, []string{bad + ":2:", bad + ":4:", bad + ":5:"}},
		{"alias bomb", []string{"validate", bomb}, 1, []string{bomb + ":1: YAML aliases expand to more than"}},
		{"missing file", []string{"validate", filepath.Join(dir, "nope.yml")}, 1, []string{"nope.yml"}},
		{"version", []string{"version"}, 0, []string{"railyard dev"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{"unknown command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stdout %q, stderr %q)", code, tt.code, out.String(), errOut.String())
			}
			all := out.String() + errOut.String()
			for _, want := range tt.contains {
				if !strings.Contains(all, want) {
					t.Errorf("output lacks %q:\n%s", want, all)
				}
			}
		})
	}
}

// The bot refuses to start with status pages on and no credentials for them,
// before it listens on anything.
func TestServeRefusesOpenStatusPage(t *testing.T) {
	t.Chdir(t.TempDir()) // no .env
	t.Setenv("RAILYARD_STATUS_PAGE", "on")
	t.Setenv("RAILYARD_STATUS_USER", "")
	t.Setenv("RAILYARD_STATUS_PASSWORD", "")
	t.Setenv("RAILYARD_ADDR", "127.0.0.1:0")
	var out, errOut bytes.Buffer
	if code := run([]string{"serve"}, &out, &errOut); code != 1 {
		t.Fatalf("exit code %d, want 1 (stderr %q)", code, errOut.String())
	}
	want := "RAILYARD_STATUS_PAGE is on without RAILYARD_STATUS_USER and RAILYARD_STATUS_PASSWORD"
	if !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q does not say %q", errOut.String(), want)
	}
}
