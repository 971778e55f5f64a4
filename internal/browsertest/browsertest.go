// Package browsertest loads pages in headless Chromium, for tests that check
// what a person sees once a real browser has parsed a page. Tests that use it
// skip where Chromium is not installed.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// DumpDOM loads url in headless Chromium and returns the DOM it built, as
// HTML. It skips t when no Chromium is installed.
func DumpDOM(t testing.TB, url string) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("Chromium is not installed (apt-get install chromium)")
	}
	// Chromium's helper processes may still write to the profile after the
	// browser exits, so it is removed best-effort instead of by t.TempDir.
	profile, err := os.MkdirTemp("", "railyard-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}
