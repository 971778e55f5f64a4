package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/awaittest"
	"github.com/railyard/railyard/runner"
)

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		dir    string
		code   int
		ok     bool
		err    bool
	}{
		{name: "success", script: "true", code: 0, ok: true},
		{name: "failure", script: "exit 3", code: 3},
		{name: "unknown command", script: "no-such-command-here", code: 127},
		{name: "killed", script: "kill -KILL $$", code: -1},
		{name: "missing folder", script: "true", dir: "/no/such/dir", code: -1, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runner.Run(t.Context(), runner.Command{Script: tt.script, Dir: tt.dir, Env: runner.Env(t.TempDir(), nil, nil)})
			if res.ExitCode != tt.code || res.OK() != tt.ok || (res.Err != nil) != tt.err {
				t.Errorf("Run(%q) = exit %d, OK %v, err %v; want exit %d, OK %v, err %v",
					tt.script, res.ExitCode, res.OK(), res.Err, tt.code, tt.ok, tt.err)
			}
		})
	}
}

func TestRunEnvIsExactlyWhatWasGiven(t *testing.T) {
	t.Setenv("RAILYARD_TEST_APP_KEY", "bot-secret-value")
	home := t.TempDir()
	env := runner.Env(home,
		map[string]string{"RAILYARD_SHA": "abc", "RAILYARD_REASON": `it's "quoted"; $(rm -rf /)`},
		map[string]string{"GREETING": "hi there"})

	res := runner.Run(t.Context(), runner.Command{Script: "env", Dir: home, Env: env})

	if !res.OK() {
		t.Fatalf("env failed: %+v", res)
	}
	var got []string
	for line := range strings.Lines(res.Output) {
		// The shell adds its own working directory.
		if !strings.HasPrefix(line, "PWD=") {
			got = append(got, strings.TrimSuffix(line, "\n"))
		}
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(env)); !slices.Equal(got, want) {
		t.Errorf("step environment:\n%q\nwant:\n%q", got, want)
	}
	if strings.Contains(res.Output, "bot-secret-value") {
		t.Errorf("the bot's environment reached the step")
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("PATH", "/opt/bin:/usr/bin")
	tests := []struct {
		name          string
		vars, stepEnv map[string]string
		want          []string
	}{
		{name: "defaults", want: []string{"HOME=/h", "PATH=/opt/bin:/usr/bin"}},
		{name: "vars sorted", vars: map[string]string{"RAILYARD_STAGE": "prod", "RAILYARD_ACTOR": "alice"},
			want: []string{"HOME=/h", "PATH=/opt/bin:/usr/bin", "RAILYARD_ACTOR=alice", "RAILYARD_STAGE=prod"}},
		{name: "step env wins", vars: map[string]string{"A": "1", "B": "1"}, stepEnv: map[string]string{"B": "2", "PATH": "/x"},
			want: []string{"A=1", "B=2", "HOME=/h", "PATH=/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runner.Env("/h", tt.vars, tt.stepEnv); !slices.Equal(got, tt.want) {
				t.Errorf("Env = %q, want %q", got, tt.want)
			}
		})
	}
}

// Scripts write their own PID and their child's to files, then touch
// "ready" once their traps are set and the child runs. (A child signalled
// between dash's fork and its exec of sleep loses the signal: dash holds
// it for the parent's trap, then clears traps. So ready waits for the
// child's own shell to say it runs.)
const (
	spawnChild = `echo $$ > shell.pid; sh -c 'touch child.runs; exec sleep 60' & echo $! > child.pid; `
	ready      = `while [ ! -e child.runs ]; do sleep 0.01; done; touch ready; `
)

func TestRunStopsTheWholeGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		script     string
		timeout    time.Duration
		grace      time.Duration
		cancel     bool
		code       int
		outputEnds string
		timedOut   bool
		cancelled  bool
		minTime    time.Duration // the grace had to run out
	}{
		{name: "cancel", script: spawnChild + ready + "wait", cancel: true, grace: 10 * time.Second,
			code: -1, cancelled: true},
		{name: "timeout", script: spawnChild + ready + "wait", timeout: 200 * time.Millisecond, grace: 10 * time.Second,
			code: -1, timedOut: true},
		{name: "SIGTERM trapped, clean exit within grace", cancel: true, grace: 10 * time.Second,
			script: `trap 'echo cleaning up; exit 7' TERM; ` + spawnChild + ready + "wait",
			code:   7, outputEnds: "cleaning up\n", cancelled: true},
		{name: "SIGTERM ignored, killed after grace", cancel: true, grace: 300 * time.Millisecond,
			script: `trap '' TERM; ` + spawnChild + ready + "wait; wait; wait",
			code:   -1, cancelled: true, minTime: 300 * time.Millisecond},
		{name: "exited leaving a child behind", script: spawnChild + "echo done", grace: 10 * time.Second,
			code: 0, outputEnds: "done\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan runner.Result)
			go func() {
				done <- runner.Run(ctx, runner.Command{Script: tt.script, Dir: dir, Env: runner.Env(dir, nil, nil),
					Timeout: tt.timeout, Grace: tt.grace})
			}()
			if tt.cancel {
				awaittest.Until(t, 10*time.Second, "the step to be ready", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
				cancel()
			}
			res := <-done

			if res.ExitCode != tt.code || res.TimedOut != tt.timedOut || res.Cancelled != tt.cancelled ||
				!strings.HasSuffix(res.Output, tt.outputEnds) || res.Err != nil || res.OK() != (tt.code == 0 && !tt.cancelled && !tt.timedOut) {
				t.Errorf("Run = %+v", res)
			}
			if res.Duration < tt.minTime || res.Duration > tt.minTime+5*time.Second {
				t.Errorf("took %v, want at least %v and not the whole grace", res.Duration, tt.minTime)
			}
			for _, f := range []string{"shell.pid", "child.pid"} {
				pid := readPID(t, filepath.Join(dir, f))
				if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
					t.Errorf("%s %d still there after Run: kill 0 = %v", f, pid, err)
				}
			}
		})
	}
}

func TestRunOutputTail(t *testing.T) {
	t.Parallel()
	const secret = "ZQ9-SECRET-TOKEN-77"
	tests := []struct {
		name      string
		script    string
		tailBytes int
		want      func(out string) bool
	}{
		{name: "short output kept whole", script: "echo out; echo err >&2", want: func(out string) bool {
			return out == "out\nerr\n"
		}},
		{name: "10 MB bounded", tailBytes: 1000,
			script: `head -c 10000000 /dev/zero | tr '\0' x; echo; echo END`,
			want: func(out string) bool {
				return strings.HasPrefix(out, "…\n") && strings.HasSuffix(out, "x\nEND\n") && len(out) == len("…\n")+1000
			}},
		{name: "secret redacted", script: `echo "token=$TOKEN"; echo "again $TOKEN."`, want: func(out string) bool {
			return out == "token=***\nagain ***.\n"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runner.Run(t.Context(), runner.Command{Script: tt.script, TailBytes: tt.tailBytes,
				Env: []string{"PATH=" + runner.DefaultPath, "TOKEN=" + secret}, Redact: []string{secret}})
			if !res.OK() || !tt.want(res.Output) {
				t.Errorf("Run = %+v, output %d bytes", res, len(res.Output))
			}
		})
	}
}

// A secret cut in two by the edge of the tail must not show its end, even
// when redacting another one makes room for it.
func TestRunRedactsSecretsAcrossTheCut(t *testing.T) {
	t.Parallel()
	const secret = "ZQ9-SECRET-TOKEN-77" // no lowercase: the filler is all lowercase
	const tailBytes = 64
	for _, gap := range []int{10, 50, 70} {
		res := runner.Run(t.Context(), runner.Command{
			Script:    `printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaa%s' "$TOKEN"; head -c "$GAP" /dev/zero | tr '\0' x; printf '%s.' "$TOKEN"`,
			Env:       []string{"PATH=" + runner.DefaultPath, "TOKEN=" + secret, "GAP=" + strconv.Itoa(gap)},
			TailBytes: tailBytes,
			Redact:    []string{secret},
		})
		if !res.OK() {
			t.Fatalf("Run = %+v", res)
		}
		shown := strings.TrimPrefix(strings.ReplaceAll(res.Output, "***", ""), "…\n")
		if strings.ContainsAny(shown, secret) || !strings.HasSuffix(res.Output, "x***.") || len(res.Output) > len("…\n")+tailBytes {
			t.Errorf("gap %d: output %q", gap, res.Output)
		}
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// A step must not outlive the process that runs it: if Railyard is killed
// (SIGKILL, no chance to clean up), another process takes the job over and
// runs the step again, and the two must never run side by side.
func TestStepDiesWithItsProcess(t *testing.T) {
	if os.Getenv("RUNNER_TEST_STEP_DIR") != "" {
		return // the child's own copy of this test: see runStepInChild
	}
	t.Parallel()
	for _, confined := range []bool{false, true} {
		t.Run(fmt.Sprintf("confined=%v", confined), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if confined {
				dir, _ = confinedRevision(t, sandboxRoot(t), runner.SandboxOptions{})
			}
			child := exec.Command(os.Args[0], "-test.run=^TestRunStepInChild$", "-test.count=1")
			child.Env = append(os.Environ(), "RUNNER_TEST_STEP_DIR="+dir, fmt.Sprintf("RUNNER_TEST_CONFINED=%v", confined))
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			awaittest.Until(t, 10*time.Second, "the step to be ready", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
			if err := child.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = child.Wait()
			for _, f := range []string{"shell.pid", "child.pid"} {
				pid := readPID(t, filepath.Join(dir, f))
				awaittest.Until(t, 10*time.Second, "the step to be gone", func() bool { return gone(pid) })
			}
		})
	}
}

// TestRunStepInChild runs a long step, in the child process of
// TestStepDiesWithItsProcess only.
func TestRunStepInChild(t *testing.T) {
	dir := os.Getenv("RUNNER_TEST_STEP_DIR")
	if dir == "" {
		t.Skip("runs only as TestStepDiesWithItsProcess's child")
	}
	var sb *runner.Sandbox
	if os.Getenv("RUNNER_TEST_CONFINED") == "true" {
		var err error
		if sb, err = runner.NewSandbox(runner.SandboxOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runner.Run(t.Context(), runner.Command{Script: spawnChild + ready + "wait", Dir: dir,
		Env: runner.Env(dir, nil, nil), Grace: time.Second, Sandbox: sb})
}

// gone reports whether pid has exited: no such process, or a zombie that
// waits for whichever process it was reparented to.
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	_, after, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(after, "Z")
}
