package runner_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/runner"
)

// TestMain lets the test binary act as the sandbox launcher, as the bot's
// binary does.
func TestMain(m *testing.M) {
	runner.MaybeRunSandbox()
	os.Exit(m.Run())
}

// sandboxRoot is a folder the step user can reach (t.TempDir's is 0700).
func sandboxRoot(t testing.TB) string {
	t.Helper()
	root, err := os.MkdirTemp("", "railyard-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// confinedRevision prepares a revision in a workspace under root whose steps
// run in a sandbox made with opts, or skips when this machine cannot
// confine steps at all.
func confinedRevision(t testing.TB, root string, opts runner.SandboxOptions) (dir string, sb *runner.Sandbox) {
	t.Helper()
	sb, err := runner.NewSandbox(opts)
	if err != nil {
		t.Skipf("this machine cannot confine steps: %v", err)
	}
	w := runner.NewWorkspace(filepath.Join(root, "work"))
	w.Sandbox = sb
	f := &fetcher{archives: [][]byte{repoTarball(t, "hello")}}
	dir, release, err := w.Prepare(t.Context(), repo, sha(1), false, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return dir, sb
}

// probe tries each thing a step may or may not do and prints name=ok or
// name=denied, one a line.
const probe = `
check() { if (eval "$2") >/dev/null 2>&1; then echo "$1=ok"; else echo "$1=denied"; fi; }
check read-system 'cat /etc/passwd'
check read-visible 'cat "$ROOT/system/visible.txt"'
check read-hidden 'cat "$ROOT/system/private/key.txt"'
check read-secret 'cat "$ROOT/system/keys/app.pem"'
check read-beside-secret 'cat "$ROOT/system/keys/webhook-secret"'
check read-beside-top-secret 'cat "$ROOT/system/beside-top.txt"'
check read-outside 'cat "$ROOT/outside.txt"'
check list-outside 'ls "$ROOT"'
check write-revision 'mkdir -p sub/a && echo x > sub/a/f'
check write-home 'echo x > "$HOME/h"'
check write-tmp 'echo x > "$TMPDIR/t"'
check move-between 'mv "$TMPDIR/t" ./moved'
check write-outside 'echo x > "$ROOT/planted"'
check parent-environ 'cat /proc/$PPID/environ'
check parent-maps 'cat /proc/$PPID/maps'
check dev-null 'echo x > /dev/null'
echo "uid=$(id -u)"
`

// The same probe runs confined and unconfined: what the sandbox denies is
// shown to be reachable without it.
func TestSandboxConfinesSteps(t *testing.T) {
	root := sandboxRoot(t)
	for name, body := range map[string]string{
		"outside.txt":                "outside",
		"system/visible.txt":         "visible",
		"system/private/key.txt":     "key",
		"system/keys/app.pem":        "app key",
		"system/keys/webhook-secret": "webhook secret",
		"system/top.pem":             "top key",
		"system/beside-top.txt":      "beside a secret at the top of a readable path",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir, sb := confinedRevision(t, root, runner.SandboxOptions{
		Read:    append(slices.Clone(runner.SystemPaths), filepath.Join(root, "system")),
		Hidden:  []string{filepath.Join(root, "system", "private")},
		Secrets: []string{filepath.Join(root, "system", "keys", "app.pem"), filepath.Join(root, "system", "top.pem")},
	})
	if sb.LandlockABI() == 0 {
		t.Skip("the kernel offers no Landlock: only file modes confine steps here")
	}
	home := filepath.Join(filepath.Dir(dir), ".home")
	stepUID := os.Geteuid()
	if stepUID == 0 {
		stepUID = 65534 // nobody
	}
	allowed := []string{"read-system", "read-visible", "read-beside-top-secret", "write-revision", "write-home", "write-tmp", "move-between", "dev-null"}
	denied := []string{"read-hidden", "read-secret", "read-beside-secret", "read-outside", "list-outside", "write-outside", "parent-environ", "parent-maps"}

	tests := []struct {
		name    string
		sandbox *runner.Sandbox
		env     []string
		want    []string
	}{
		// First: files the unconfined run leaves (as root) would be in its way.
		// Run gives a confined step its TMPDIR.
		{name: "confined", sandbox: sb,
			want: append(append(lines(allowed, "ok"), lines(denied, "denied")...), "uid="+strconv.Itoa(stepUID))},
		{name: "unconfined", env: []string{"TMPDIR=" + filepath.Join(filepath.Dir(dir), ".tmp")},
			want: append(lines(append(slices.Clone(allowed), denied...), "ok"), "uid="+strconv.Itoa(os.Geteuid()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append(runner.Env(home, map[string]string{"ROOT": root}, nil), tt.env...)
			res := runner.Run(t.Context(), runner.Command{Script: probe, Dir: dir, Env: env, Sandbox: tt.sandbox})
			if !res.OK() {
				t.Fatalf("probe failed: %+v", res)
			}
			got := strings.Split(strings.TrimSpace(res.Output), "\n")
			slices.Sort(got)
			slices.Sort(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Errorf("probe:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func lines(names []string, result string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "=" + result
	}
	return out
}

// The step's environment is the pipeline author's. Were the launcher run
// with it, an LD_PRELOAD there would run the author's code before the
// confinement, as root when the bot is root. The library here logs, from
// every process that loads it, its user and whether no_new_privs (set
// just before Landlock) is on.
func TestSandboxLauncherDoesNotRunWithTheStepsEnvironment(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("needs a C compiler to build a preload library")
	}
	dir, sb := confinedRevision(t, sandboxRoot(t), runner.SandboxOptions{})
	src, lib, log := filepath.Join(dir, "preload.c"), filepath.Join(dir, "preload.so"), filepath.Join(dir, "preload.log")
	code := `#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
__attribute__((constructor)) static void mark(void) {
	FILE *f = fopen(getenv("PRELOAD_LOG"), "a");
	if (f) { fprintf(f, "uid=%d no_new_privs=%d\n", (int)geteuid(), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)); fclose(f); }
}
`
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	env := append(runner.Env(dir, nil, nil), "LD_PRELOAD="+lib, "PRELOAD_LOG="+log)
	if res := runner.Run(t.Context(), runner.Command{Script: "true", Dir: dir, Env: env, Sandbox: sb}); !res.OK() {
		t.Fatalf("Run = %+v", res)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("the library never ran, so this test shows nothing: %v", err)
	}
	stepUID := os.Geteuid()
	if stepUID == 0 {
		stepUID = 65534 // nobody
	}
	want := fmt.Sprintf("uid=%d no_new_privs=1", stepUID)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != want {
			t.Errorf("the step's LD_PRELOAD ran before the confinement: %q, want only %q", data, want)
			break
		}
	}
}

// What builds commonly do works confined: temporary files, a git
// repository with a commit, an archive, a cache in HOME, looking a host up.
func TestSandboxedBuildWorks(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	dir, sb := confinedRevision(t, sandboxRoot(t), runner.SandboxOptions{})
	script := `set -e
d=$(mktemp -d); echo hi > "$d/x"; cp "$d/x" copied
git init -q repo; cd repo; echo a > a; git add a
git -c user.email=ci@example.com -c user.name=ci commit -q -m first; cd ..
tar czf out.tgz README.md repo
mkdir -p "$HOME/.cache/tool" && echo warm > "$HOME/.cache/tool/state"
getent hosts localhost > /dev/null
echo done`
	res := runner.Run(t.Context(), runner.Command{Script: script, Dir: dir,
		Env: runner.Env(filepath.Join(filepath.Dir(dir), ".home"), nil, nil), Sandbox: sb})
	if !res.OK() || !strings.HasSuffix(res.Output, "done\n") {
		t.Errorf("a build fails confined: %+v", res)
	}
}

// A revision unpacked while isolation was off belongs to the bot; reused
// for a confined step, it goes to the step user, who can then build in it.
func TestSandboxedStepBuildsInARevisionUnpackedUnconfined(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("steps run as another user only when the bot is root")
	}
	sb, err := runner.NewSandbox(runner.SandboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(sandboxRoot(t), "work")
	f := &fetcher{archives: [][]byte{repoTarball(t, "hello")}}
	_, release, err := runner.NewWorkspace(work).Prepare(t.Context(), repo, sha(1), false, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	release()
	confined := runner.NewWorkspace(work)
	confined.Sandbox = sb
	dir, release, err := confined.Prepare(t.Context(), repo, sha(1), false, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if f.calls.Load() != 1 {
		t.Fatalf("the revision was fetched %d times, want once: the confined step must reuse it", f.calls.Load())
	}
	res := runner.Run(t.Context(), runner.Command{Script: "echo built > out && echo more >> README.md", Dir: dir,
		Env: runner.Env(dir, nil, nil), Sandbox: sb})
	if !res.OK() {
		t.Errorf("a confined step cannot build in the reused revision: %+v", res)
	}
}

// A confined step is still stopped as a group on cancel and timeout.
func TestSandboxedRunStopsTheWholeGroup(t *testing.T) {
	dir, sb := confinedRevision(t, sandboxRoot(t), runner.SandboxOptions{})
	res := runner.Run(t.Context(), runner.Command{Script: spawnChild + "wait", Dir: dir, Env: runner.Env(dir, nil, nil),
		Timeout: 300 * time.Millisecond, Grace: time.Second, Sandbox: sb})
	if !res.TimedOut || res.Err != nil {
		t.Fatalf("Run = %+v", res)
	}
	for _, f := range []string{"shell.pid", "child.pid"} {
		if pid := readPID(t, filepath.Join(dir, f)); !gone(pid) {
			t.Errorf("%s %d still there after Run", f, pid)
		}
	}
}

// BenchmarkRunStep measures what confining adds to running a step that does
// nothing: the launcher's start, the privilege drop and Landlock.
func BenchmarkRunStep(b *testing.B) {
	dir, sb := confinedRevision(b, sandboxRoot(b), runner.SandboxOptions{})
	for _, bc := range []struct {
		name    string
		sandbox *runner.Sandbox
	}{{"unconfined", nil}, {"confined", sb}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if res := runner.Run(b.Context(), runner.Command{Script: "true", Dir: dir, Env: runner.Env(dir, nil, nil), Sandbox: bc.sandbox}); !res.OK() {
					b.Fatalf("Run = %+v", res)
				}
			}
		})
	}
}
