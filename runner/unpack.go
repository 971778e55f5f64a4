package runner

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Default limits of an unpacked archive.
const (
	DefaultMaxBytes int64 = 2 << 30
	DefaultMaxFiles       = 100_000
)

// Limits bound what Unpack writes. Zero fields take the defaults.
type Limits struct {
	MaxBytes int64 // total size of regular files
	MaxFiles int   // number of entries
}

// ErrUnsafeArchive is what every *UnsafeEntryError is (errors.Is).
var ErrUnsafeArchive = errors.New("unsafe archive")

// UnsafeEntryError is an archive entry Unpack refused.
type UnsafeEntryError struct {
	Name   string // the entry's name as the archive spells it
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("unsafe archive entry %q: %s", e.Name, e.Reason)
}

func (e *UnsafeEntryError) Unwrap() error { return ErrUnsafeArchive }

// Unpack extracts a gzip tarball as GitHub serves it into dest, which must
// exist and be empty. It skips the pax_global_header, strips the single
// top-level folder (owner-repo-shortsha/), keeps the executable bit of files
// and creates directories as needed.
//
// It refuses, with an *UnsafeEntryError, entries with absolute paths or ".."
// elements, symbolic links that are absolute or could resolve outside dest,
// hard links to anything but a file already unpacked, entries written
// through or over a symbolic link, devices and fifos, and archives over lim.
// Every check happens before the entry is written, and writes go through an
// os.Root, so nothing is ever written outside dest; on error the caller
// deletes dest.
func Unpack(r io.Reader, dest string, lim Limits) error {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	if lim.MaxFiles <= 0 {
		lim.MaxFiles = DefaultMaxFiles
	}
	entries, err := os.ReadDir(dest)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("unpack: %s is not empty", dest)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer root.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer zr.Close()

	u := unpacker{root: root, lim: lim, symlinks: map[string]bool{}}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, tar.ErrInsecurePath):
			return &UnsafeEntryError{Name: hdr.Name, Reason: "insecure path"}
		case err != nil:
			return fmt.Errorf("unpack: read archive: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
}

type unpacker struct {
	root     *os.Root
	lim      Limits
	top      string // the archive's top-level folder
	files    int
	bytes    int64
	symlinks map[string]bool // symbolic links written so far, by name in dest
}

func (u *unpacker) entry(hdr *tar.Header, body io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	unsafe := func(format string, args ...any) error {
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf(format, args...)}
	}
	if u.files++; u.files > u.lim.MaxFiles {
		return unsafe("more than %d entries", u.lim.MaxFiles)
	}
	name, reason := u.destName(hdr.Name)
	if reason != "" {
		return unsafe("%s", reason)
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return unsafe("top-level entry is not a folder")
		}
		return nil
	}
	if link := u.symlinkOn(name); link != "" {
		return unsafe("written through the symbolic link %q", link)
	}
	if hdr.Typeflag != tar.TypeDir {
		if err := u.root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return fmt.Errorf("unpack %q: %w", hdr.Name, err)
		}
	}

	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = u.root.MkdirAll(name, 0o755)
	case tar.TypeReg:
		if u.bytes += hdr.Size; u.bytes > u.lim.MaxBytes {
			return unsafe("archive holds more than %d bytes", u.lim.MaxBytes)
		}
		err = u.writeFile(name, hdr, body)
	case tar.TypeSymlink:
		if reason := linkEscapes(name, hdr.Linkname); reason != "" {
			return unsafe("%s", reason)
		}
		err = u.root.Symlink(hdr.Linkname, name)
		u.symlinks[name] = true
	case tar.TypeLink:
		target, reason := u.destName(hdr.Linkname)
		if reason != "" || target == "" {
			return unsafe("hard link to %q, outside the archive", hdr.Linkname)
		}
		if link := u.symlinkOn(target); link != "" {
			return unsafe("hard link through the symbolic link %q", link)
		}
		if fi, err := u.root.Lstat(target); err != nil || !fi.Mode().IsRegular() {
			return unsafe("hard link to %q, not a file unpacked before it", hdr.Linkname)
		}
		err = u.root.Link(target, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return unsafe("device or fifo")
	default:
		return unsafe("unsupported entry type %q", hdr.Typeflag)
	}
	if errors.Is(err, fs.ErrExist) {
		return unsafe("appears twice")
	}
	if err != nil {
		return fmt.Errorf("unpack %q: %w", hdr.Name, err)
	}
	return nil
}

func (u *unpacker) writeFile(name string, hdr *tar.Header, body io.Reader) error {
	mode := fs.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, body)
	// Chmod so the umask cannot strip the executable bit.
	err = errors.Join(err, f.Chmod(mode), f.Close())
	return err
}

// destName maps an archive name to its name in dest: the top-level folder
// stripped, cleaned, "" for the folder itself. A non-empty reason says why
// the name is refused.
func (u *unpacker) destName(raw string) (name, reason string) {
	if path.IsAbs(raw) {
		return "", "absolute path"
	}
	if slices.Contains(strings.Split(raw, "/"), "..") {
		return "", `path has a ".." element`
	}
	top, rest, _ := strings.Cut(path.Clean(raw), "/")
	if u.top == "" {
		u.top = top
	}
	if top != u.top || top == "." {
		return "", "outside the archive's top-level folder"
	}
	if rest == "" {
		return "", ""
	}
	return rest, ""
}

// symlinkOn returns the symbolic link written earlier that name is, or is
// under, or "".
func (u *unpacker) symlinkOn(name string) string {
	for i := range len(name) + 1 {
		if i == len(name) || name[i] == '/' {
			if u.symlinks[name[:i]] {
				return name[:i]
			}
		}
	}
	return ""
}

// linkEscapes says why a symbolic link at name pointing to target could
// resolve outside dest, or "" when it cannot. The target may only climb
// ("..") out of the link's own folders, which are real folders, and then
// descend: a ".." after a name is refused, as that name could be (or later
// become) a link itself and send ".." anywhere.
func linkEscapes(name, target string) string {
	switch {
	case target == "":
		return "symbolic link with an empty target"
	case path.IsAbs(target):
		return "symbolic link with an absolute target"
	}
	depth := strings.Count(name, "/") // folders the link sits in
	descended := false
	for _, elem := range strings.Split(target, "/") {
		switch elem {
		case "", ".":
		case "..":
			if descended {
				return `symbolic link target has ".." after a name`
			}
			if depth--; depth < 0 {
				return "symbolic link points outside the archive"
			}
		default:
			descended = true
		}
	}
	return ""
}
