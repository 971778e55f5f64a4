package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// runTB stands in for a *testing.T outside a test: the fake GitHub and the
// webhook kit take a testing.TB. An error (a request GitHub's description
// refuses, say) is kept and fails the run; Fatalf panics. The embedded
// interface is nil: only the methods below may be called.
type runTB struct {
	testing.TB
	ctx context.Context

	mu       sync.Mutex
	errors   []string
	cleanups []func()
}

func newRunTB(ctx context.Context) *runTB { return &runTB{ctx: ctx} }

func (t *runTB) Helper()                  {}
func (t *runTB) Name() string             { return "fleet" }
func (t *runTB) Context() context.Context { return t.ctx }

func (t *runTB) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "fleet:", msg)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errors = append(t.errors, msg)
}

func (t *runTB) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *runTB) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	panic(fmt.Sprintf(format, args...))
}

func (t *runTB) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

func (t *runTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (t *runTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.errors) > 0
}

func (t *runTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// close runs the cleanups, last registered first, as testing does.
func (t *runTB) close() {
	t.mu.Lock()
	fs := slices.Clone(t.cleanups)
	t.cleanups = nil
	t.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}
