package runner

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/internal/ghname"
)

// DefaultKeep is how many unpacked revisions of a repository Prune keeps.
const DefaultKeep = 5

// The folders beside a repository's revisions that are a step's HOME and
// TMPDIR; Prune keeps them.
const (
	homeDir = ".home"
	tmpDir  = ".tmp"
)

// staleAfter is when a leftover temporary folder (from a crash, or another
// process sharing Root) is surely abandoned.
const staleAfter = time.Hour

var validSHA = regexp.MustCompile(`^[0-9a-fA-F]{1,64}$`)

// Workspace keeps unpacked revisions under Root/<owner>/<repo>/<sha>. A
// folder's modification time is its last use. Names starting with "." are
// temporary: being unpacked or waiting to be deleted.
type Workspace struct {
	Root   string
	Keep   int    // revisions per repository Prune keeps; 0: DefaultKeep
	Limits Limits // for Unpack
	// Sandbox is what steps run in these folders are confined by (nil:
	// none). With a step user, revisions and the HOME and TMPDIR folders
	// belong to that user, so its steps can build in them.
	Sandbox *Sandbox

	mu        sync.Mutex
	held      map[string]*lease  // by folder path: in use, never pruned
	unpacking map[string]*flight // by revision folder
}

// lease counts the users of one unpacked revision. Its path changes when a
// fresh unpack replaces the revision while it is in use.
type lease struct {
	path  string
	users int
}

// flight is an unpack under way; err is set before done closes.
type flight struct {
	done chan struct{}
	err  error
}

// NewWorkspace returns a Workspace rooted at root.
func NewWorkspace(root string) *Workspace {
	return &Workspace{Root: root, Keep: DefaultKeep}
}

// Prepare returns the folder of repo ("owner/name") at sha, unpacking it
// from fetch when absent or when fresh is true (cache=skip). It unpacks into
// a temporary folder beside it and renames that into place, so a crash never
// leaves a half-unpacked revision that looks ready. Concurrent calls for the
// same revision unpack it once. The folder is in use, and never pruned, until
// release is called. A fresh unpack of a revision in use moves the old copy
// aside; it is deleted once its users release it.
func (w *Workspace) Prepare(ctx context.Context, repo, sha string, fresh bool, fetch func(context.Context) (io.ReadCloser, error)) (dir string, release func(), err error) {
	parent, err := w.repoDir(repo)
	if err != nil {
		return "", nil, err
	}
	if !validSHA.MatchString(sha) {
		return "", nil, fmt.Errorf("workspace: bad revision %q", sha)
	}
	dir = filepath.Join(parent, sha)
	if err := w.stepFolders(parent); err != nil {
		return "", nil, err
	}
	log := zerolog.Ctx(ctx)
	for {
		w.mu.Lock()
		if u := w.unpacking[dir]; u != nil {
			w.mu.Unlock()
			select {
			case <-u.done:
			case <-ctx.Done():
				return "", nil, ctx.Err()
			}
			switch {
			case u.err == nil:
				fresh = false // what we waited for was fetched just now
			case isContextErr(u.err) && ctx.Err() == nil:
				// The caller that was unpacking gave up; we have not.
			default:
				return "", nil, u.err
			}
			continue
		}
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() && !fresh {
			release := w.acquireLocked(dir, log)
			w.mu.Unlock()
			// Unpacked before steps ran as the step user (isolation was off).
			if !w.ownedByStepUser(fi) {
				if err := w.giveToStepUser(dir); err != nil {
					release()
					return "", nil, err
				}
			}
			log.Debug().Str("railyard_sha", sha).Msg("Reusing unpacked revision.")
			return dir, release, nil
		}
		u := &flight{done: make(chan struct{})}
		if w.unpacking == nil {
			w.unpacking = map[string]*flight{}
		}
		w.unpacking[dir] = u
		w.mu.Unlock()
		return w.unpack(ctx, dir, fetch, u)
	}
}

// unpack fetches and unpacks a revision into dir and finishes u.
func (w *Workspace) unpack(ctx context.Context, dir string, fetch func(context.Context) (io.ReadCloser, error), u *flight) (string, func(), error) {
	log := zerolog.Ctx(ctx)
	start := time.Now()
	tmp, err := w.unpackTemp(ctx, dir, fetch)

	var release func()
	var remove []string
	w.mu.Lock()
	if err == nil {
		var old string
		old, err = w.swapLocked(tmp, dir)
		remove = append(remove, old)
		if err == nil {
			release = w.acquireLocked(dir, log)
		} else {
			remove = append(remove, tmp)
		}
	}
	delete(w.unpacking, dir)
	u.err = err
	close(u.done)
	w.mu.Unlock()

	for _, p := range remove {
		if p == "" {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			log.Warn().Err(err).Msg("Cannot delete a temporary folder.")
		}
	}
	if err != nil {
		return "", nil, err
	}
	log.Info().Str("railyard_sha", filepath.Base(dir)).Dur("took", time.Since(start)).Msg("Unpacked revision.")
	return dir, release, nil
}

// unpackTemp fetches and unpacks into a new temporary folder beside dir.
func (w *Workspace) unpackTemp(ctx context.Context, dir string, fetch func(context.Context) (io.ReadCloser, error)) (string, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("workspace: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-*")
	if err != nil {
		return "", fmt.Errorf("workspace: %w", err)
	}
	if err := fetchInto(ctx, tmp, fetch, w.Limits); err != nil {
		return "", errors.Join(err, os.RemoveAll(tmp))
	}
	if err := w.giveToStepUser(tmp); err != nil {
		return "", errors.Join(err, os.RemoveAll(tmp))
	}
	return tmp, nil
}

// stepFolders makes the HOME and TMPDIR folders of confined steps in parent.
func (w *Workspace) stepFolders(parent string) error {
	if w.Sandbox == nil {
		return nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	for _, name := range []string{homeDir, tmpDir} {
		p := filepath.Join(parent, name)
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("workspace: %w", err)
		}
		if c := w.Sandbox.cred; c != nil {
			// Lchown: a step may have put a link in place of its folder.
			if err := os.Lchown(p, int(c.Uid), int(c.Gid)); err != nil {
				return fmt.Errorf("workspace: %w", err)
			}
		}
	}
	return nil
}

// ownedByStepUser reports whether fi belongs to the step user, or there is
// none.
func (w *Workspace) ownedByStepUser(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return w.Sandbox == nil || w.Sandbox.cred == nil || !ok || st.Uid == w.Sandbox.cred.Uid
}

// giveToStepUser makes the step user the owner of everything under dir.
func (w *Workspace) giveToStepUser(dir string) error {
	if w.Sandbox == nil || w.Sandbox.cred == nil {
		return nil
	}
	uid, gid := int(w.Sandbox.cred.Uid), int(w.Sandbox.cred.Gid)
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("workspace: hand the revision to the step user: %w", err)
	}
	return nil
}

// fetchInto fetches an archive and unpacks it into dest.
func fetchInto(ctx context.Context, dest string, fetch func(context.Context) (io.ReadCloser, error), lim Limits) error {
	body, err := fetch(ctx)
	if err != nil {
		return fmt.Errorf("fetch revision: %w", err)
	}
	defer body.Close()
	err = Unpack(body, dest, lim)
	if ctx.Err() != nil {
		// A cancelled download looks like a short archive; say what happened.
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("unpack revision: %w", err)
	}
	return nil
}

// swapLocked moves tmp to dir. An old dir is moved aside first; the returned
// path is for the caller to delete, or "" when someone still uses it.
func (w *Workspace) swapLocked(tmp, dir string) (remove string, err error) {
	if _, err := os.Lstat(dir); err == nil {
		old := trashPath(dir)
		if err := os.Rename(dir, old); err != nil {
			return "", fmt.Errorf("workspace: replace revision: %w", err)
		}
		if l := w.held[dir]; l != nil {
			delete(w.held, dir)
			l.path = old
			w.held[old] = l
		} else {
			remove = old
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return remove, fmt.Errorf("workspace: %w", err)
	}
	return remove, nil
}

// acquireLocked marks dir in use and returns the function that ends the use.
func (w *Workspace) acquireLocked(dir string, log *zerolog.Logger) func() {
	if w.held == nil {
		w.held = map[string]*lease{}
	}
	l := w.held[dir]
	if l == nil {
		l = &lease{path: dir}
		w.held[dir] = l
	}
	l.users++
	touch(dir)
	return sync.OnceFunc(func() {
		w.mu.Lock()
		l.users--
		retired, last, path := l.path != dir, l.users == 0, l.path
		if last {
			delete(w.held, path)
		}
		if !retired {
			touch(dir)
		}
		w.mu.Unlock()
		if retired && last {
			if err := os.RemoveAll(path); err != nil {
				log.Warn().Err(err).Msg("Cannot delete a replaced unpacked revision.")
			}
		}
	})
}

// Prune deletes the unpacked revisions of repo beyond the Keep most recently
// used, never one in use, and temporary folders long abandoned.
func (w *Workspace) Prune(repo string) error {
	parent, err := w.repoDir(repo)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	keep := w.Keep
	if keep <= 0 {
		keep = DefaultKeep
	}
	type revision struct {
		path string
		used time.Time
	}
	var revs []revision
	var remove []string
	var errs []error

	w.mu.Lock()
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.IsDir() {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if e.Name() == homeDir || e.Name() == tmpDir {
			continue
		}
		if !strings.HasPrefix(e.Name(), ".") {
			revs = append(revs, revision{p, info.ModTime()})
		} else if w.held[p] == nil && time.Since(info.ModTime()) > staleAfter {
			remove = append(remove, p)
		}
	}
	slices.SortFunc(revs, func(a, b revision) int { return b.used.Compare(a.used) })
	for _, r := range revs[min(keep, len(revs)):] {
		if w.held[r.path] != nil {
			continue
		}
		// Renamed under the lock so that Prepare cannot take it meanwhile.
		old := trashPath(r.path)
		if err := os.Rename(r.path, old); err != nil {
			errs = append(errs, fmt.Errorf("prune: %w", err))
			continue
		}
		remove = append(remove, old)
	}
	w.mu.Unlock()

	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("prune: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (w *Workspace) repoDir(repo string) (string, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || !ghname.Valid(owner) || !ghname.Valid(name) {
		return "", fmt.Errorf("workspace: bad repository name %q", repo)
	}
	return filepath.Join(w.Root, owner, name), nil
}

// trashPath is a unique temporary name beside dir for it to be deleted.
func trashPath(dir string) string {
	return filepath.Join(filepath.Dir(dir), ".trash-"+filepath.Base(dir)+"-"+rand.Text())
}

// touch records a use of dir in its modification time.
func touch(dir string) {
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
