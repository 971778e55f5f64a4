package runner_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/runner"
)

func TestUnpackGitHubTarball(t *testing.T) {
	dest := t.TempDir()
	archive := tarball(t,
		dir(top),
		file(top+"README.md", "hello\n"),
		dir(top+"scripts/"),
		script(top+"scripts/deploy.sh", "#!/bin/sh\necho deployed\n"),
		file(top+"nested/deep/config.yml", "a: 1\n"), // no folder entries before it
		symlink(top+"docs/readme", "../README.md"),
		hardlink(top+"README.copy", top+"README.md"),
	)
	if err := runner.Unpack(bytes.NewReader(archive), dest, runner.Limits{}); err != nil {
		t.Fatal(err)
	}

	for name, want := range map[string]struct {
		body string
		mode fs.FileMode
	}{
		"README.md":              {"hello\n", 0o644},
		"scripts/deploy.sh":      {"#!/bin/sh\necho deployed\n", 0o755},
		"nested/deep/config.yml": {"a: 1\n", 0o644},
		"docs/readme":            {"hello\n", 0o644}, // through the link
		"README.copy":            {"hello\n", 0o644},
	} {
		p := filepath.Join(dest, name)
		body, err := os.ReadFile(p)
		if err != nil || string(body) != want.body {
			t.Errorf("%s = %q, %v; want %q", name, body, err, want.body)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want.mode {
			t.Errorf("%s mode = %v, %v; want %v", name, fi.Mode().Perm(), err, want.mode)
		}
	}
	if out, err := exec.Command(filepath.Join(dest, "scripts/deploy.sh")).Output(); err != nil || string(out) != "deployed\n" {
		t.Errorf("running scripts/deploy.sh = %q, %v", out, err)
	}
	names, _ := os.ReadDir(dest)
	for _, e := range names {
		if strings.Contains(e.Name(), "pax") || e.Name() == strings.TrimSuffix(top, "/") {
			t.Errorf("unexpected %q in dest", e.Name())
		}
	}
}

func TestUnpackRefusesHostileArchives(t *testing.T) {
	// Each archive is built for the sentinel folder holding dest, so that an
	// escape would land somewhere the test looks.
	tests := []struct {
		name    string
		lim     runner.Limits
		entries func(sentinel string) []entry
		refused string // the entry refused
	}{
		{name: "absolute path", refused: "<sentinel>/x", entries: func(s string) []entry {
			return []entry{dir(top), file(filepath.Join(s, "x"), "pwned")}
		}},
		{name: "absolute path in /etc", refused: "/etc/x", entries: func(string) []entry {
			return []entry{dir(top), file("/etc/x", "pwned")}
		}},
		{name: "dot dot", refused: top + "../x", entries: func(string) []entry {
			return []entry{dir(top), file(top+"../x", "pwned")}
		}},
		{name: "dot dot deeper", refused: top + "a/../../x", entries: func(string) []entry {
			return []entry{dir(top), file(top+"a/../../x", "pwned")}
		}},
		{name: "outside the top folder", refused: "other/x", entries: func(string) []entry {
			return []entry{dir(top), file("other/x", "pwned")}
		}},
		{name: "symlink to /etc", refused: top + "l", entries: func(string) []entry {
			return []entry{dir(top), symlink(top+"l", "/etc"), file(top+"l/x", "pwned")}
		}},
		{name: "symlink to absolute sentinel", refused: top + "l", entries: func(s string) []entry {
			return []entry{dir(top), symlink(top+"l", s), file(top+"l/x", "pwned")}
		}},
		{name: "symlink up two", refused: top + "l", entries: func(string) []entry {
			return []entry{dir(top), symlink(top+"l", "../../x")}
		}},
		{name: "symlink up one from the root", refused: top + "l", entries: func(string) []entry {
			return []entry{dir(top), symlink(top+"l", "../x")}
		}},
		{name: "symlink up from a folder", refused: top + "a/l", entries: func(string) []entry {
			return []entry{dir(top), dir(top + "a/"), symlink(top+"a/l", "../../x")}
		}},
		{name: "symlink climbing out of another link", refused: top + "b", entries: func(string) []entry {
			// c -> . is harmless, but then c/.. is dest/.. — the sentinel.
			return []entry{dir(top), symlink(top+"c", "."), symlink(top+"b", "c/..")}
		}},
		{name: "write through a symlink", refused: top + "l/x", entries: func(string) []entry {
			return []entry{dir(top), dir(top + "sub/"), symlink(top+"l", "sub"), file(top+"l/x", "pwned")}
		}},
		{name: "write through a symlink to the root", refused: top + "l/l2", entries: func(string) []entry {
			return []entry{dir(top), symlink(top+"l", "."), symlink(top+"l/l2", "../x")}
		}},
		{name: "replace a symlink", refused: top + "l/", entries: func(string) []entry {
			return []entry{dir(top), dir(top + "sub/"), symlink(top+"l", "sub"), dir(top + "l/")}
		}},
		{name: "hard link outside", refused: top + "h", entries: func(string) []entry {
			return []entry{dir(top), hardlink(top+"h", top+"../outside.txt")}
		}},
		{name: "hard link absolute", refused: top + "h", entries: func(s string) []entry {
			return []entry{dir(top), hardlink(top+"h", filepath.Join(s, "outside.txt"))}
		}},
		{name: "hard link through a symlink", refused: top + "h", entries: func(string) []entry {
			return []entry{dir(top), symlink(top+"up", "."), hardlink(top+"h", top+"up/x")}
		}},
		{name: "char device", refused: top + "null", entries: func(string) []entry {
			return []entry{dir(top), special(top+"null", tar.TypeChar)}
		}},
		{name: "block device", refused: top + "disk", entries: func(string) []entry {
			return []entry{dir(top), special(top+"disk", tar.TypeBlock)}
		}},
		{name: "fifo", refused: top + "fifo", entries: func(string) []entry {
			return []entry{dir(top), special(top+"fifo", tar.TypeFifo)}
		}},
		{name: "file twice", refused: top + "a", entries: func(string) []entry {
			return []entry{dir(top), file(top+"a", "1"), file(top+"a", "2")}
		}},
		{name: "over MaxFiles", lim: runner.Limits{MaxFiles: 3}, refused: top + "c", entries: func(string) []entry {
			return []entry{dir(top), file(top+"a", "1"), file(top+"b", "2"), file(top+"c", "3")}
		}},
		{name: "over MaxBytes", lim: runner.Limits{MaxBytes: 50}, refused: top + "b", entries: func(string) []entry {
			return []entry{dir(top), file(top+"a", strings.Repeat("a", 30)), file(top+"b", strings.Repeat("b", 30))}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sentinel := t.TempDir()
			dest := filepath.Join(sentinel, "dest")
			outside := filepath.Join(sentinel, "outside.txt")
			if err := os.Mkdir(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(outside, []byte("untouched"), 0o644); err != nil {
				t.Fatal(err)
			}

			err := runner.Unpack(bytes.NewReader(tarball(t, tt.entries(sentinel)...)), dest, tt.lim)

			if !errors.Is(err, runner.ErrUnsafeArchive) {
				t.Fatalf("Unpack = %v, want ErrUnsafeArchive", err)
			}
			ue, ok := errors.AsType[*runner.UnsafeEntryError](err)
			if want := strings.ReplaceAll(tt.refused, "<sentinel>", sentinel); !ok || ue.Name != want {
				t.Errorf("refused entry = %+v, want %q", ue, want)
			}
			if names := dirNames(t, sentinel); !slices.Equal(names, []string{"dest", "outside.txt"}) {
				t.Errorf("sentinel folder holds %v, want only dest and outside.txt", names)
			}
			if b, _ := os.ReadFile(outside); string(b) != "untouched" {
				t.Errorf("outside.txt = %q", b)
			}
			if _, err := os.Stat("/etc/x"); err == nil {
				t.Errorf("/etc/x exists")
			}
			assertNoEscape(t, dest)
		})
	}
}

// assertNoEscape fails if anything in dest resolves outside it.
func assertNoEscape(t *testing.T, dest string) {
	t.Helper()
	_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		real, err := filepath.EvalSymlinks(p)
		if err == nil && real != dest && !strings.HasPrefix(real, dest+"/") {
			t.Errorf("%s resolves to %s, outside dest", p, real)
		}
		return nil
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestUnpackWantsAnEmptyFolder(t *testing.T) {
	dest := t.TempDir()
	if err := os.WriteFile(filepath.Join(dest, "old"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := runner.Unpack(bytes.NewReader(repoTarball(t, "x")), dest, runner.Limits{})
	if err == nil || errors.Is(err, runner.ErrUnsafeArchive) {
		t.Fatalf("Unpack into a non-empty folder = %v, want a plain error", err)
	}
}
