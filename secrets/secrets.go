// Package secrets reads the credentials an operator grants a stage of a
// repository, from files outside any repository, and lists the forms in
// which a value must be hidden from what Railyard shows. It never logs,
// returns in an error, or otherwise shows a value.
package secrets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/joho/godotenv"
)

// maxFile bounds a secrets file; a dotenv file of credentials is far smaller.
const maxFile = 1 << 20

// Missing is a job's secret that cannot be had; Error names it and why,
// never a value.
type Missing struct {
	Names []string // the secrets the job does not get
	Why   string
}

func (m *Missing) Error() string {
	return fmt.Sprintf("secret %s: %s", strings.Join(m.Names, ", "), m.Why)
}

// Path is the file that holds the secrets of stage in repository
// owner/name under dir.
func Path(dir, owner, name, stage string) string {
	return filepath.Join(dir, owner, name, stage+".env")
}

// Load reads the named secrets of a stage from its file under dir, afresh on
// every call so that a rotated file takes effect at the next job. Every
// name must be in the file; the file must be a regular file (a symbolic
// link to one, as Kubernetes mounts a Secret, is followed) that other users
// cannot read and no one but its owner can write. Errors are *Missing.
func Load(dir, owner, name, stage string, names []string) (map[string]string, error) {
	if len(names) == 0 {
		return map[string]string{}, nil
	}
	fail := func(format string, args ...any) error {
		return &Missing{Names: slices.Clone(names), Why: fmt.Sprintf(format, args...)}
	}
	if dir == "" {
		return nil, fail("RAILYARD_SECRETS_DIR is not set, so this Railyard grants no secrets")
	}
	for _, part := range []string{owner, name, stage} {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "/\\\x00") {
			return nil, fail("%q cannot name a secrets file", part)
		}
	}
	rel := filepath.Join(owner, name, stage+".env")
	f, err := os.Open(Path(dir, owner, name, stage))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fail("there is no file %s in RAILYARD_SECRETS_DIR", rel)
	}
	if err != nil {
		return nil, fail("cannot open %s: %v", rel, errors.Unwrap(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fail("cannot read %s: %v", rel, errors.Unwrap(err))
	}
	switch mode := info.Mode(); {
	case !mode.IsRegular():
		return nil, fail("%s is not a regular file", rel)
	case mode.Perm()&0o007 != 0:
		return nil, fail("%s is open to other users (mode %04o); make it 0600, or 0440 for a group the steps are not in", rel, mode.Perm())
	case mode.Perm()&0o020 != 0:
		return nil, fail("%s is writable by its group (mode %04o); make it 0600 or 0440", rel, mode.Perm())
	case info.Size() > maxFile:
		return nil, fail("%s is larger than %d bytes", rel, maxFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile))
	if err != nil {
		return nil, fail("cannot read %s: %v", rel, errors.Unwrap(err))
	}
	all, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		// godotenv's messages quote the file, which holds the values.
		return nil, fail("%s is not a dotenv file (KEY=value lines)", rel)
	}
	out := make(map[string]string, len(names))
	var absent []string
	for _, n := range names {
		v, ok := all[n]
		if !ok {
			absent = append(absent, n)
			continue
		}
		out[n] = v
	}
	if len(absent) > 0 {
		return nil, &Missing{Names: absent, Why: fmt.Sprintf("not in %s", rel)}
	}
	return out, nil
}
