package runner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/awaittest"
	"github.com/railyard/railyard/runner"
)

const repo = "octo/app"

// fetcher serves archives in turn (the last one again when out) and counts calls.
type fetcher struct {
	calls    atomic.Int32
	archives [][]byte
	gate     chan struct{} // when set, fetches wait for it to close
}

func (f *fetcher) fetch(ctx context.Context) (io.ReadCloser, error) {
	n := int(f.calls.Add(1))
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return io.NopCloser(bytes.NewReader(f.archives[min(n, len(f.archives))-1])), nil
}

func sha(i int) string { return fmt.Sprintf("%040x", i) }

func readme(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPrepareReusesAnUnpackedRevision(t *testing.T) {
	w := runner.NewWorkspace(t.TempDir())
	f := &fetcher{archives: [][]byte{repoTarball(t, "v1")}}

	dir1, release1, err := w.Prepare(t.Context(), repo, sha(1), false, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	release1()
	dir2, release2, err := w.Prepare(t.Context(), repo, sha(1), false, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()

	if want := filepath.Join(w.Root, "octo", "app", sha(1)); dir1 != want || dir2 != want {
		t.Errorf("dirs %s, %s; want %s", dir1, dir2, want)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("fetched %d times, want 1", got)
	}
	if got := readme(t, dir2); got != "v1" {
		t.Errorf("README = %q", got)
	}
}

func TestPrepareFreshRefetches(t *testing.T) {
	w := runner.NewWorkspace(t.TempDir())
	f := &fetcher{archives: [][]byte{repoTarball(t, "v1"), repoTarball(t, "v2")}}
	dir, releaseOld, err := w.Prepare(t.Context(), repo, sha(1), false, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	// A step still runs in the old copy.
	old, err := os.Open(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	dir2, release, err := w.Prepare(t.Context(), repo, sha(1), true, f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if dir2 != dir || readme(t, dir2) != "v2" || f.calls.Load() != 2 {
		t.Errorf("fresh Prepare: dir %s, README %q, %d fetches; want %s, v2, 2", dir2, readme(t, dir2), f.calls.Load(), dir)
	}
	if b, err := io.ReadAll(old); err != nil || string(b) != "v1" {
		t.Errorf("the old copy in use reads %q, %v", b, err)
	}
	releaseOld()
	release()
	if names := dirNames(t, filepath.Dir(dir)); !slices.Equal(names, []string{sha(1)}) {
		t.Errorf("after release the repository folder holds %v", names)
	}
}

func TestPrepareConcurrentUnpacksOnce(t *testing.T) {
	w := runner.NewWorkspace(t.TempDir())
	f := &fetcher{archives: [][]byte{repoTarball(t, "v1")}, gate: make(chan struct{})}
	const n = 8
	var entered atomic.Int32
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			entered.Add(1)
			var release func()
			dirs[i], release, errs[i] = w.Prepare(t.Context(), repo, sha(1), i%2 == 0, f.fetch)
			if release != nil {
				release()
			}
		})
	}
	// Hold the first fetch until every caller is on its way.
	awaittest.Until(t, 10*time.Second, "every caller, and the first fetch, to start", func() bool { return entered.Load() == n && f.calls.Load() >= 1 })
	close(f.gate)
	wg.Wait()

	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("fetched %d times, want 1", got)
	}
	if slices.ContainsFunc(dirs, func(d string) bool { return d != dirs[0] }) || readme(t, dirs[0]) != "v1" {
		t.Errorf("dirs %v", dirs)
	}
}

func TestPrepareFailedUnpackLeavesNothingToReuse(t *testing.T) {
	tests := []struct {
		name  string
		fetch func(context.Context) (io.ReadCloser, error)
		is    error
	}{
		{name: "unsafe archive", is: runner.ErrUnsafeArchive, fetch: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(tarball(t, dir(top), file(top+"ok", "1"), file(top+"../x", "2")))), nil
		}},
		{name: "truncated archive", fetch: func(context.Context) (io.ReadCloser, error) {
			b := repoTarball(t, "v1")
			return io.NopCloser(bytes.NewReader(b[:len(b)/2])), nil
		}},
		{name: "fetch fails", is: errFetch, fetch: func(context.Context) (io.ReadCloser, error) { return nil, errFetch }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := runner.NewWorkspace(t.TempDir())
			_, _, err := w.Prepare(t.Context(), repo, sha(1), false, tt.fetch)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("Prepare = %v, want %v", err, tt.is)
			}
			if names := dirNames(t, filepath.Join(w.Root, "octo", "app")); len(names) != 0 {
				t.Errorf("left behind %v", names)
			}
			f := &fetcher{archives: [][]byte{repoTarball(t, "v1")}}
			dir, release, err := w.Prepare(t.Context(), repo, sha(1), false, f.fetch)
			if err != nil || f.calls.Load() != 1 || readme(t, dir) != "v1" {
				t.Errorf("next Prepare: %v, %d fetches", err, f.calls.Load())
			}
			release()
		})
	}
}

var errFetch = errors.New("fetch failed")

func TestPrepareRefusesBadNames(t *testing.T) {
	w := runner.NewWorkspace(t.TempDir())
	f := &fetcher{archives: [][]byte{repoTarball(t, "v1")}}
	for _, tt := range []struct{ repo, sha string }{
		{"octo", sha(1)}, {"../app", sha(1)}, {"octo/..", sha(1)}, {"octo/app/x", sha(1)},
		{repo, "../../etc"}, {repo, ""}, {repo, "main"},
	} {
		if _, _, err := w.Prepare(t.Context(), tt.repo, tt.sha, false, f.fetch); err == nil {
			t.Errorf("Prepare(%q, %q) succeeded", tt.repo, tt.sha)
		}
	}
	if f.calls.Load() != 0 {
		t.Errorf("fetched for a bad name")
	}
}

func TestPruneKeepsTheMostRecentAndThoseInUse(t *testing.T) {
	w := runner.NewWorkspace(t.TempDir())
	f := &fetcher{archives: [][]byte{repoTarball(t, "v1")}}
	parent := filepath.Join(w.Root, "octo", "app")
	base := time.Now().Add(-time.Hour)
	var releaseOldest func()
	for i := range 7 {
		dir, release, err := w.Prepare(t.Context(), repo, sha(i), false, f.fetch)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			releaseOldest = release // still in use
		} else {
			release()
		}
		// sha(i) was last used i minutes after base.
		if err := os.Chtimes(dir, base, base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// Leftovers of a crash: an old half-unpacked folder goes, a new one may be in progress.
	// Steps' HOME and TMPDIR stay however old.
	for name, age := range map[string]time.Duration{".unpack-crashed": 2 * time.Hour, ".unpack-now": 0, ".home": 2 * time.Hour, ".tmp": 2 * time.Hour} {
		p := filepath.Join(parent, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, time.Now(), time.Now().Add(-age)); err != nil {
			t.Fatal(err)
		}
	}

	if err := w.Prune(repo); err != nil {
		t.Fatal(err)
	}
	want := []string{".home", ".tmp", ".unpack-now", sha(0), sha(2), sha(3), sha(4), sha(5), sha(6)}
	if got := dirNames(t, parent); !slices.Equal(got, want) {
		t.Errorf("after Prune: %v\nwant %v", got, want)
	}

	// Released, sha(0) is the most recently used.
	releaseOldest()
	if err := w.Prune(repo); err != nil {
		t.Fatal(err)
	}
	want = []string{".home", ".tmp", ".unpack-now", sha(0), sha(3), sha(4), sha(5), sha(6)}
	if got := dirNames(t, parent); !slices.Equal(got, want) {
		t.Errorf("after release and Prune: %v\nwant %v", got, want)
	}
	if err := w.Prune("octo/never-seen"); err != nil {
		t.Errorf("Prune of an unknown repository = %v", err)
	}
}

func TestPrepareWaiterRetriesWhenTheUnpackerGivesUp(t *testing.T) {
	w := runner.NewWorkspace(t.TempDir())
	f := &fetcher{archives: [][]byte{repoTarball(t, "v1")}, gate: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error)
	go func() {
		_, _, err := w.Prepare(ctx, repo, sha(1), false, f.fetch)
		first <- err
	}()
	awaittest.Until(t, 10*time.Second, "the fetch to start", func() bool { return f.calls.Load() == 1 })
	second := make(chan error)
	go func() {
		_, release, err := w.Prepare(t.Context(), repo, sha(1), false, f.fetch)
		if err == nil {
			release()
		}
		second <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Prepare = %v", err)
	}
	close(f.gate)
	if err := <-second; err != nil {
		t.Errorf("second Prepare = %v", err)
	}
	if names := dirNames(t, filepath.Join(w.Root, "octo", "app")); !slices.Equal(names, []string{sha(1)}) {
		t.Errorf("repository folder holds %v", names)
	}
}
