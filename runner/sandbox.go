package runner

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// sandboxArg0 is the argv[0] under which the bot's own binary acts as the
// sandbox launcher (MaybeRunSandbox). Go cannot run code between fork and
// exec, so confining a step takes a process of its own that confines itself
// and then execs the step's shell.
const sandboxArg0 = "railyard-sandbox"

// launcher is the binary run as the launcher: the bot's own, even if an
// upgrade has replaced its file since it started.
const launcher = "/proc/self/exe"

// DefaultStepUser is who steps run as when the bot runs as root.
const DefaultStepUser = "nobody"

// SystemPaths are what a confined step may read (and execute) besides its
// workspace: the programs, libraries and configuration a build needs, and
// /proc and /sys, whose entries for other processes the kernel guards by
// itself (ptrace access). /tmp, /home, /root, /var, /run and /srv are not
// among them: the bot's files live there.
var SystemPaths = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc", "/sys"}

// linkedFiles are files under SystemPaths that are often links to outside
// them, whose targets a confined step may read too: on hosts with
// systemd-resolved, /etc/resolv.conf points into /run, and without it
// DNS fails.
var linkedFiles = []string{"/etc/resolv.conf"}

// devices a confined step may read and write.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

// landlockMinABI is the oldest Landlock ABI used: ABI 1 cannot let a step
// move a file from one of its folders to another.
const landlockMinABI = 2

// SandboxOptions configure NewSandbox.
type SandboxOptions struct {
	// User is who steps run as when the bot runs as root; "" is
	// DefaultStepUser. It must not be root.
	User string
	// Hidden are paths no step may read even where they lie under a
	// readable system path: the bot's working directory, the work
	// directory (a step gets only its own folders).
	Hidden []string
	// Secrets are files of secrets (.env, the App's key): hidden, and so
	// is the folder holding each, where other secrets often lie beside it
	// (a Kubernetes secret volume), unless that folder is / or a readable
	// system path itself.
	Secrets []string
	// Read replaces SystemPaths (tests).
	Read []string
}

// Sandbox confines the steps run with it: as root, a step runs as an
// unprivileged user; where the kernel offers Landlock, a step can read only
// system paths and write only its own folders, and cannot ptrace, signal or
// read /proc/<pid>/mem and environ of any process outside its own domain.
// NewSandbox makes one at start-up; Run uses it through Command.Sandbox.
type Sandbox struct {
	cred       *syscall.Credential // nil: steps run as the bot's user
	userName   string
	abi        int    // the Landlock ABI used; 0: none
	noLandlock string // why not, when abi is 0
	readDirs   []string
	readFiles  []string
}

// NewSandbox works out what confinement this process can give its steps.
// It fails, rather than confine steps less than asked, when it can give
// none at all: the bot is not root and the kernel has no Landlock. It also
// fails when, without Landlock, the step user could read a hidden file.
func NewSandbox(opts SandboxOptions) (*Sandbox, error) {
	if _, err := os.Stat(launcher); err != nil {
		return nil, fmt.Errorf("step isolation: find the bot's binary: %w", err)
	}
	s := &Sandbox{}
	var err error
	if os.Geteuid() == 0 {
		if s.cred, s.userName, err = lookupStepUser(cmp.Or(opts.User, DefaultStepUser)); err != nil {
			return nil, err
		}
	}
	abi, err := llsyscall.LandlockGetABIVersion()
	switch {
	case err != nil:
		s.noLandlock = "the kernel does not offer Landlock (" + err.Error() + ")"
	case abi < landlockMinABI:
		s.noLandlock = fmt.Sprintf("the kernel's Landlock ABI %d is older than %d", abi, landlockMinABI)
	default:
		s.abi = min(abi, len(landlockABIs))
	}
	read := opts.Read
	if read == nil {
		read = SystemPaths
	}
	var roots []string
	for _, r := range read {
		real, err := realPath(r)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("step isolation: %w", err)
		}
		roots = append(roots, real)
	}
	var hidden []string
	for _, h := range slices.Concat(opts.Hidden, opts.Secrets) {
		if h == "" {
			continue
		}
		r, err := realPath(h)
		if errors.Is(err, fs.ErrNotExist) {
			r, err = filepath.Abs(h) // hidden all the same, should it appear
		}
		if err != nil {
			return nil, fmt.Errorf("step isolation: %w", err)
		}
		hidden = append(hidden, r)
		if dir := filepath.Dir(r); slices.Contains(opts.Secrets, h) && dir != "/" && !slices.Contains(roots, dir) {
			hidden = append(hidden, dir)
		}
	}
	if err := s.enough(hidden); err != nil {
		return nil, err
	}
	if s.abi == 0 {
		return s, nil
	}
	for _, r := range roots {
		addReadable(r, hidden, &s.readDirs, &s.readFiles)
	}
	s.readFiles = append(s.readFiles, linkTargets(linkedFiles, roots, hidden)...)
	s.readDirs, s.readFiles = compactSorted(s.readDirs), compactSorted(s.readFiles)
	return s, nil
}

// MarshalZerologObject logs which protections steps get.
func (s *Sandbox) MarshalZerologObject(e *zerolog.Event) {
	if s.cred != nil {
		e.Str("step_user", s.userName).Uint32("step_uid", s.cred.Uid)
	} else {
		e.Str("step_user", "the bot's own user").Int("step_uid", os.Geteuid())
	}
	if s.abi > 0 {
		e.Int("landlock_abi", s.abi).Int("readable_paths", len(s.readDirs)+len(s.readFiles))
	} else {
		e.Str("landlock", "off: "+s.noLandlock)
	}
}

// enough fails when s would not keep steps away from the bot's secrets:
// without a step user nor Landlock, nothing separates them; with a step
// user but without Landlock, only file modes do, so none of the hidden
// files may be readable by it.
func (s *Sandbox) enough(hidden []string) error {
	if s.abi > 0 {
		return nil
	}
	if s.cred == nil {
		return fmt.Errorf("step isolation is not possible: the bot does not run as root, so steps cannot run as another user, and %s; "+
			"set RAILYARD_STEP_ISOLATION=off to run steps unconfined, with access to the bot's secrets", s.noLandlock)
	}
	for _, h := range hidden {
		if readableBy(h, s.cred) {
			return fmt.Errorf("step isolation: %s is readable by step user %s and %s to hide it: "+
				"make it readable by the bot's user only (chmod go-rwx)", h, s.userName, s.noLandlock)
		}
	}
	return nil
}

// LandlockABI is the Landlock ABI version steps are confined with; 0: none.
func (s *Sandbox) LandlockABI() int { return s.abi }

// lookupStepUser resolves name to the credentials a step runs with.
func lookupStepUser(name string) (*syscall.Credential, string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, "", fmt.Errorf("RAILYARD_STEP_USER: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, "", fmt.Errorf("RAILYARD_STEP_USER %s: %w", name, err)
	}
	if uid == 0 {
		return nil, "", fmt.Errorf("RAILYARD_STEP_USER %s is root; steps must run as an unprivileged user", name)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, "", fmt.Errorf("RAILYARD_STEP_USER %s: groups: %w", name, err)
	}
	for _, id := range ids {
		g, err := strconv.ParseUint(id, 10, 32)
		if err != nil || g == 0 {
			continue // never the root group
		}
		cred.Groups = append(cred.Groups, uint32(g))
	}
	return cred, name, nil
}

// Reachable fails when the step user cannot enter dir (the work
// directory) or one of the folders above it: its steps could not use
// their HOME and TMPDIR there.
func (s *Sandbox) Reachable(dir string) error {
	if s.cred == nil {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && !allows(&st, s.cred, 0o1) {
			return fmt.Errorf("step isolation: step user %s cannot enter %s, so its steps cannot use %s: "+
				"put RAILYARD_WORKDIR where it can (for example /var/lib/railyard/work), or open %s to it (chmod o+x)",
				s.userName, p, abs, p)
		}
		if p == "/" {
			return nil
		}
	}
}

// readableBy reports whether a step running as cred (nil: the bot's own
// user) could read the file at path by its mode. Folders do not count:
// the work directory must be open to steps, and a listing holds no secret.
func readableBy(path string, cred *syscall.Credential) bool {
	var st unix.Stat_t
	if cred == nil {
		return true
	}
	if unix.Stat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	return allows(&st, cred, 0o4)
}

// allows reports whether st's mode grants cred perm (4 read, 2 write,
// 1 execute or search), as the owner, the group or anyone else.
func allows(st *unix.Stat_t, cred *syscall.Credential, perm uint32) bool {
	switch {
	case st.Uid == cred.Uid:
		return st.Mode&(perm<<6) != 0
	case st.Gid == cred.Gid || slices.Contains(cred.Groups, st.Gid):
		return st.Mode&(perm<<3) != 0
	}
	return st.Mode&perm != 0
}

// addReadable adds root to the readable folders, or, when a hidden path lies
// inside it, root's entries instead, recursively, leaving the hidden paths
// out. Symbolic links among the entries are left out: a rule on one would
// grant its target.
func addReadable(root string, hidden []string, dirs, files *[]string) {
	inside := false
	for _, h := range hidden {
		if within(root, h) {
			return
		}
		inside = inside || within(h, root)
	}
	fi, err := os.Lstat(root)
	if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
		return
	}
	if !fi.IsDir() {
		*files = append(*files, root)
		return
	}
	if !inside {
		*dirs = append(*dirs, root)
		return
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		addReadable(filepath.Join(root, e.Name()), hidden, dirs, files)
	}
}

// linkTargets returns where the files among links lead, when that is
// outside roots and not hidden.
func linkTargets(links, roots, hidden []string) []string {
	var out []string
	for _, l := range links {
		target, err := realPath(l)
		if err != nil {
			continue
		}
		in := func(dir string) bool { return within(target, dir) }
		if !slices.ContainsFunc(roots, in) && !slices.ContainsFunc(hidden, in) {
			out = append(out, target)
		}
	}
	return out
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

func compactSorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// sandboxSpec is what the launcher is told, as JSON in its argv[1].
type sandboxSpec struct {
	UID       *uint32  `json:"uid,omitempty"`
	GID       uint32   `json:"gid,omitempty"`
	Groups    []uint32 `json:"groups,omitempty"`
	ABI       int      `json:"abi,omitempty"` // Landlock; 0: none
	ReadDirs  []string `json:"read_dirs,omitempty"`
	ReadFiles []string `json:"read_files,omitempty"`
	Write     []string `json:"write,omitempty"`
}

// stepFolders are where a step in dir may write: dir, and the home and
// temporary folders the Workspace keeps beside it.
func stepFolders(dir string) (home, tmp string) {
	return filepath.Join(filepath.Dir(dir), homeDir), filepath.Join(filepath.Dir(dir), tmpDir)
}

// envFD is the launcher's file descriptor from which it reads the step's
// environment (fd 3 is Run's lifeline).
const envFD = 4

// confine makes cmd, not yet started, run its program through the
// launcher, confined. The launcher itself runs with an empty environment:
// the step's is the pipeline author's, and an LD_PRELOAD in it would run
// their code in the launcher, before the confinement (as root, if the bot
// is root). It gets the step's environment through a pipe instead, not in
// its arguments, which every process may read. started must be called
// once cmd.Start has returned, with whether it started.
func (s *Sandbox) confine(cmd *exec.Cmd) (started func(ok bool), err error) {
	if len(cmd.ExtraFiles) != envFD-3 {
		return nil, fmt.Errorf("sandbox: %d extra files, want %d", len(cmd.ExtraFiles), envFD-3)
	}
	home, tmp := stepFolders(cmd.Dir)
	write := []string{cmd.Dir, home, tmp}
	for _, p := range write {
		// A Landlock rule follows a link: it would open the link's target.
		if fi, err := os.Lstat(p); err == nil && !fi.IsDir() {
			return nil, fmt.Errorf("sandbox: %s is not a folder", p)
		}
	}
	spec := sandboxSpec{ABI: s.abi, ReadDirs: s.readDirs, ReadFiles: s.readFiles, Write: write}
	if s.cred != nil {
		spec.UID, spec.GID, spec.Groups = &s.cred.Uid, s.cred.Gid, s.cred.Groups
	}
	specJSON, _ := json.Marshal(spec) // plain fields: cannot fail
	env := cmd.Env
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "TMPDIR=") }) {
		env = append(env, "TMPDIR="+tmp)
	}
	envJSON, _ := json.Marshal(env)

	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	cmd.Path, cmd.Args = launcher, append([]string{sandboxArg0, string(specJSON)}, cmd.Args...)
	cmd.Env = []string{}
	return func(ok bool) {
		r.Close()
		if !ok {
			w.Close()
			return
		}
		// Past the pipe's buffer the write waits for the launcher, which
		// reads it all first thing; should the launcher die, it fails.
		go func() {
			_, _ = w.Write(envJSON)
			w.Close()
		}()
	}, nil
}

// MaybeRunSandbox turns this process into the sandbox launcher when it was
// started as one, and never returns then; otherwise it does nothing. Call it
// first thing in main, and in TestMain of packages whose tests run steps in
// a Sandbox (their test binary is then the launcher).
func MaybeRunSandbox() {
	if filepath.Base(os.Args[0]) != sandboxArg0 {
		return
	}
	err := errors.New("usage: " + sandboxArg0 + " SPEC PROGRAM [ARG...]")
	if len(os.Args) >= 3 {
		err = enterSandbox(os.Args[1], os.Args[2:])
	}
	// The step's output: the failure shows in its check run.
	fmt.Fprintf(os.Stderr, "%s: %v\n", sandboxArg0, err)
	os.Exit(126)
}

// enterSandbox drops to the step user, confines this process with Landlock
// and execs argv with the environment read from envFD; it returns only on
// failure.
func enterSandbox(specJSON string, argv []string) error {
	var spec sandboxSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("bad spec: %w", err)
	}
	envFile := os.NewFile(envFD, "step-environment")
	var env []string
	err := json.NewDecoder(envFile).Decode(&env)
	envFile.Close()
	if err != nil {
		return fmt.Errorf("read the step's environment: %w", err)
	}
	if spec.UID != nil {
		// Go applies these to every thread. Groups first: after setuid we
		// could not change them.
		groups := make([]int, len(spec.Groups))
		for i, g := range spec.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(int(spec.GID)); err != nil {
			return fmt.Errorf("setgid: %w", err)
		}
		if err := syscall.Setuid(int(*spec.UID)); err != nil {
			return fmt.Errorf("setuid: %w", err)
		}
		if syscall.Getuid() != int(*spec.UID) || syscall.Geteuid() != int(*spec.UID) || syscall.Getegid() != int(spec.GID) {
			return errors.New("privileges were not dropped")
		}
	}
	// Setuid programs (sudo, su) must not undo the drop.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if spec.ABI > 0 {
		if err := landlockConfig(spec.ABI).Restrict(
			landlock.RODirs(spec.ReadDirs...).IgnoreIfMissing(),
			landlock.ROFiles(spec.ReadFiles...).IgnoreIfMissing(),
			landlock.RWDirs(spec.Write...).WithRefer().IgnoreIfMissing(),
			landlock.RWFiles(devices...).WithIoctlDev().IgnoreIfMissing(),
		); err != nil {
			return fmt.Errorf("landlock: %w", err)
		}
	}
	return syscall.Exec(argv[0], argv, env)
}

var landlockABIs = []landlock.Config{
	landlock.V1, landlock.V2, landlock.V3, landlock.V4, landlock.V5, landlock.V6,
	landlock.V7, landlock.V8, landlock.V9, landlock.V10, landlock.V11,
}

// landlockConfig restricts what ABI abi can restrict of files and IPC
// scopes, exactly: no best effort, which would quietly restrict nothing on
// a kernel without Landlock. The network stays open; builds fetch.
func landlockConfig(abi int) landlock.Config {
	c := landlockABIs[abi-1]
	return landlock.Config{HandledAccessFS: c.HandledAccessFS, Scoped: c.Scoped}
}
