package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// Without Landlock, the bot must refuse to start rather than run steps that
// could read its secrets.
func TestSandboxEnoughFailsClosed(t *testing.T) {
	dir := t.TempDir()
	open, closed := filepath.Join(dir, "open.env"), filepath.Join(dir, "closed.env")
	for path, mode := range map[string]os.FileMode{open: 0o644, closed: 0o600} {
		if err := os.WriteFile(path, []byte("SECRET=1"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	// Someone other than this test, which owns the files.
	stepUser := &syscall.Credential{Uid: uint32(os.Geteuid()) + 1, Gid: uint32(os.Getegid()) + 1}
	const noLandlock = "the kernel does not offer Landlock"
	tests := []struct {
		name    string
		sandbox Sandbox
		hidden  []string
		wantErr string // "" when enough
	}{
		{name: "same user, no Landlock", sandbox: Sandbox{noLandlock: noLandlock}, wantErr: "step isolation is not possible"},
		{name: "same user, Landlock", sandbox: Sandbox{abi: 7}, hidden: []string{open}},
		{name: "step user, no Landlock, files closed", sandbox: Sandbox{cred: stepUser, userName: "nobody", noLandlock: noLandlock},
			hidden: []string{closed, filepath.Join(dir, "missing"), dir}},
		{name: "step user, no Landlock, a file open to it", sandbox: Sandbox{cred: stepUser, userName: "nobody", noLandlock: noLandlock},
			hidden: []string{closed, open}, wantErr: open + " is readable by step user nobody"},
		{name: "step user, Landlock", sandbox: Sandbox{cred: stepUser, abi: 7}, hidden: []string{open}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.sandbox.enough(tt.hidden)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("enough = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// As root, steps run as another user, who must be able to enter the work
// directory.
func TestSandboxReachable(t *testing.T) {
	root := t.TempDir()
	open, shut := filepath.Join(root, "open", "work"), filepath.Join(root, "shut", "work")
	for dir, mode := range map[string]os.FileMode{filepath.Dir(open): 0o755, filepath.Dir(shut): 0o700} {
		if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{root, filepath.Dir(root)} { // t.TempDir's are 0700
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	other := &Sandbox{cred: &syscall.Credential{Uid: uint32(os.Geteuid()) + 1, Gid: uint32(os.Getegid()) + 1}, userName: "someone"}
	if err := other.Reachable(open); err != nil {
		t.Errorf("Reachable(%s) = %v, want nil", open, err)
	}
	if err := other.Reachable(filepath.Join(open, "not", "made", "yet")); err != nil {
		t.Errorf("Reachable of a folder still to be made = %v, want nil", err)
	}
	if err := other.Reachable(shut); err == nil || !strings.Contains(err.Error(), "cannot enter "+filepath.Dir(shut)) {
		t.Errorf("Reachable(%s) = %v, want it to name %s", shut, err, filepath.Dir(shut))
	}
	if err := (&Sandbox{}).Reachable(shut); err != nil {
		t.Errorf("steps as the bot's own user: Reachable = %v, want nil", err)
	}
}

// A link under a readable path that leads outside (resolv.conf into /run)
// makes its target readable, unless that is hidden.
func TestLinkTargets(t *testing.T) {
	root := t.TempDir()
	etc, run, secret := filepath.Join(root, "etc"), filepath.Join(root, "run"), filepath.Join(root, "secret")
	for _, d := range []string{etc, run, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for target, link := range map[string]string{
		filepath.Join(run, "stub-resolv.conf"): filepath.Join(etc, "resolv.conf"),
		filepath.Join(etc, "hosts.real"):       filepath.Join(etc, "hosts"),
		filepath.Join(secret, "key.pem"):       filepath.Join(etc, "key.pem"),
	} {
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	links := []string{filepath.Join(etc, "resolv.conf"), filepath.Join(etc, "hosts"), filepath.Join(etc, "key.pem"), filepath.Join(etc, "missing")}
	got := linkTargets(links, []string{etc}, []string{secret})
	if want := []string{filepath.Join(run, "stub-resolv.conf")}; !slices.Equal(got, want) {
		t.Errorf("linkTargets = %v, want %v", got, want)
	}
}
