package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Defaults of a Command.
const (
	DefaultGrace     = 10 * time.Second
	DefaultTailBytes = 60 << 10
	// DefaultPath is a step's PATH when the bot itself has none.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

const (
	pollEvery = 10 * time.Millisecond
	// killWait bounds the wait for a SIGKILLed group to be reaped.
	killWait = 5 * time.Second
	// outputWait bounds the wait for output from processes that left the
	// group (setsid) but kept the output pipe.
	outputWait = time.Second
)

// Command is one shell step.
type Command struct {
	Script    string        // run as `sh -c Script`; values go in Env, never in here
	Dir       string        // working directory
	Env       []string      // the COMPLETE environment, KEY=VALUE; nothing of the bot's is inherited
	Timeout   time.Duration // 0: none
	Grace     time.Duration // SIGTERM→SIGKILL grace on cancel or timeout; 0: DefaultGrace
	TailBytes int           // bytes of combined stdout+stderr kept (the tail); 0: DefaultTailBytes
	Redact    []string      // secrets replaced by "***" in Output
	// Sandbox confines the step; nil runs it as the bot's user, unconfined.
	// Confined, Dir must be a folder Workspace.Prepare returned, and the
	// step gets TMPDIR (unless Env sets it) in the workspace.
	Sandbox *Sandbox
}

// Result is how a step ended.
type Result struct {
	ExitCode  int // -1 when killed by a signal or not started
	Duration  time.Duration
	Output    string // the tail, with a "…" line at the front when cut, redacted
	TimedOut  bool
	Cancelled bool  // ctx was cancelled
	Err       error // the step could not be run
}

// OK reports whether the step ran to the end and exited 0.
func (r Result) OK() bool {
	return r.Err == nil && !r.TimedOut && !r.Cancelled && r.ExitCode == 0
}

// Run runs c in its own process group. When ctx is cancelled or the timeout
// passes, the whole group gets SIGTERM, then SIGKILL after the grace period.
// Processes the step leaves behind when it exits are stopped the same way.
// Run returns only once no process of the group is left. Output goes through
// a bounded buffer, whatever the step prints.
func Run(ctx context.Context, c Command) Result {
	start := time.Now()
	res := runCmd(ctx, c)
	res.Duration = time.Since(start)
	return res
}

func runCmd(ctx context.Context, c Command) Result {
	res := Result{ExitCode: -1}
	if ctx.Err() != nil {
		res.Cancelled = true
		return res
	}
	grace := orDefault(c.Grace, DefaultGrace)
	out := newTail(orDefault(c.TailBytes, DefaultTailBytes), c.Redact)
	becomeSubreaper(ctx)

	// Our own pipe rather than exec's: cmd.Wait then returns when the shell
	// exits, even if a background child still holds the output open.
	pr, pw, err := os.Pipe()
	if err != nil {
		res.Err = fmt.Errorf("run step: %w", err)
		return res
	}
	defer pr.Close()
	lifeline, alive, err := os.Pipe()
	if err != nil {
		pw.Close()
		res.Err = fmt.Errorf("run step: %w", err)
		return res
	}
	// Only once the group is gone: closing it stops the step.
	defer alive.Close()
	graceTenths := strconv.Itoa(int(grace / (100 * time.Millisecond)))
	cmd := exec.Command("/bin/sh", "-c", guard, "railyard-step", graceTenths, c.Script)
	cmd.Dir = c.Dir
	cmd.Env = append([]string{}, c.Env...) // never nil: nil would inherit the bot's environment
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.ExtraFiles = []*os.File{lifeline} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started := func(bool) {}
	if c.Sandbox != nil {
		if started, err = c.Sandbox.confine(cmd); err != nil {
			pw.Close()
			lifeline.Close()
			res.Err = fmt.Errorf("run step: %w", err)
			return res
		}
	}
	err = cmd.Start()
	pw.Close()
	lifeline.Close()
	started(err == nil)
	if err != nil {
		res.Err = fmt.Errorf("start step: %w", err)
		return res
	}
	pgid := cmd.Process.Pid

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, pr) // ends at EOF, or when pr is closed below
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		defer close(exited)
		waitErr = cmd.Wait()
	}()

	var timeout <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-exited:
	case <-ctx.Done():
		res.Cancelled = true
		zerolog.Ctx(ctx).Info().Msg("Step cancelled; stopping it.")
	case <-timeout:
		res.TimedOut = true
		zerolog.Ctx(ctx).Info().Dur("timeout", c.Timeout).Msg("Step timed out; stopping it.")
	}
	stopGroup(ctx, pgid, grace, exited)
	<-exited

	select {
	case <-copied:
	case <-time.After(outputWait):
		pr.Close()
		<-copied
	}
	res.Output = out.String()

	if _, ok := errors.AsType[*exec.ExitError](waitErr); waitErr != nil && !ok {
		res.Err = fmt.Errorf("wait for step: %w", waitErr)
	}
	res.ExitCode = cmd.ProcessState.ExitCode()
	return res
}

// guard runs a step's script ($2) so that it cannot outlive this process.
// Its watchdog reads fd 3, a pipe whose other end only this process holds
// (close-on-exec keeps it out of every child). If this process dies, even
// by SIGKILL, the pipe reaches EOF and the watchdog stops the whole group:
// SIGTERM, then SIGKILL once the script's shell ($$) is gone or $1 tenths
// of a second have passed. So an orphaned step never runs beside the
// process that takes its job over. The script never sees fd 3, and exec
// keeps the group leader's PID the step's. While the step runs normally
// the watchdog is one more member of the group, stopped with the rest.
const guard = `{
	read _ <&3; trap '' TERM; kill -TERM 0
	i=0; while [ $i -lt "$1" ] && kill -0 $$; do sleep 0.1; i=$((i+1)); done
	kill -KILL 0
} </dev/null >/dev/null 2>&1 &
exec 3<&-
exec /bin/sh -c "$2"`

// stopGroup returns once process group pgid is gone, after SIGTERM and,
// past grace, SIGKILL if it is still there. exited closes when the group
// leader has been waited for.
func stopGroup(ctx context.Context, pgid int, grace time.Duration, exited <-chan struct{}) {
	if groupGone(pgid, exited) {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT) // a stopped process would not see SIGTERM
	if awaitGroupGone(pgid, exited, grace) {
		return
	}
	zerolog.Ctx(ctx).Warn().Dur("grace", grace).Msg("Step still running after its grace period; killing it.")
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !awaitGroupGone(pgid, exited, killWait) {
		zerolog.Ctx(ctx).Error().Int("pgid", pgid).Msg("Step processes survived SIGKILL.")
	}
}

func awaitGroupGone(pgid int, exited <-chan struct{}, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	// A group usually goes within a millisecond of SIGTERM (a finished
	// step's watchdog at least): look soon, then less often.
	wait := time.Millisecond
	for {
		if groupGone(pgid, exited) {
			return true
		}
		select {
		case <-time.After(wait):
			wait = min(2*wait, pollEvery)
		case <-deadline.C:
			return groupGone(pgid, exited)
		}
	}
}

// groupGone reaps the group's orphans and reports whether none of its
// processes is left.
func groupGone(pgid int, exited <-chan struct{}) bool {
	select {
	case <-exited:
		// Only once cmd.Wait is done: before, wait4 could steal the leader's
		// status. Orphans are ours to reap as we are their subreaper.
		for {
			pid, err := syscall.Wait4(-pgid, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	default:
	}
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

var subreaper sync.Once

// becomeSubreaper has orphaned step processes reparented to this process
// rather than to an init that might never reap them.
func becomeSubreaper(ctx context.Context) {
	subreaper.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Cannot become a child subreaper; orphans of steps may linger as zombies.")
		}
	})
}

// Env builds a step's environment: PATH (the bot's, else DefaultPath),
// HOME, then vars, then stepEnv; later ones win. Nothing else of the bot's
// environment is in it.
func Env(home string, vars map[string]string, stepEnv map[string]string) []string {
	p := os.Getenv("PATH")
	if p == "" {
		p = DefaultPath
	}
	all := map[string]string{"PATH": p, "HOME": home}
	maps.Copy(all, vars)
	maps.Copy(all, stepEnv)
	env := make([]string, 0, len(all))
	for _, k := range slices.Sorted(maps.Keys(all)) {
		env = append(env, k+"="+all[k])
	}
	return env
}

// orDefault returns v, or def when v is zero or less.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// tail keeps the last bytes written to it, enough to redact secrets that
// straddle the cut.
type tail struct {
	keep     int // bytes of output shown
	max      int // bytes held: keep plus the longest secret
	buf      []byte
	dropped  bool
	secrets  []string
	replacer *strings.Replacer
}

func newTail(keep int, secrets []string) *tail {
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	// Longest first, so a secret that holds another is replaced whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	t := &tail{keep: keep, max: keep, secrets: secrets}
	var pairs []string
	for _, s := range secrets {
		pairs = append(pairs, s, "***")
	}
	if len(secrets) > 0 {
		t.max += len(secrets[0])
	}
	t.replacer = strings.NewReplacer(pairs...)
	return t
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.dropped = t.dropped || len(t.buf) > 0 || len(p) > t.max
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	// Compact once it doubles, so writes stay amortised O(len(p)).
	if len(t.buf) > 2*t.max {
		t.buf = t.buf[:copy(t.buf, t.buf[len(t.buf)-t.max:])]
		t.dropped = true
	}
	return n, nil
}

// String returns the redacted tail, at most keep bytes after a "…" line when
// output was cut.
func (t *tail) String() string {
	b := string(t.buf)
	cut := t.dropped
	if len(b) > t.max {
		b, cut = b[len(b)-t.max:], true
	}
	if cut && len(t.secrets) > 0 {
		// What is left of a secret whose start was cut away lies within the
		// first len(longest)-1 bytes; drop them, and any secret across that line.
		b = b[safeCut(b, len(t.secrets[0])-1, t.secrets):]
	}
	s := t.replacer.Replace(b)
	if len(s) > t.keep {
		s, cut = s[len(s)-t.keep:], true // after redaction: no secret left to split
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if cut {
		s = "…\n" + s
	}
	return s
}

// safeCut returns the first index ≥ from that is not inside an occurrence of
// a secret in b.
func safeCut(b string, from int, secrets []string) int {
	for moved := true; moved; {
		moved = false
		for _, s := range secrets {
			lo, hi := max(0, from-len(s)+1), min(len(b), from+len(s)-1)
			if lo >= hi {
				continue
			}
			// Any occurrence in b[lo:hi] starts before from and ends after it.
			if i := strings.Index(b[lo:hi], s); i >= 0 {
				from, moved = lo+i+len(s), true
			}
		}
	}
	return min(from, len(b))
}
