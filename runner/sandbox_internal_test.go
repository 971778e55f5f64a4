package runner

import (
	"os"
	"path/filepath"
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
