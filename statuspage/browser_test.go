package statuspage

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

const chromium = "/usr/bin/chromium"

// TestBrowser loads the page in headless Chromium and checks what a person
// sees once a real browser has parsed it.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no browser: %v", err)
	}
	srv := httptest.NewServer(New(halted(), Options{WebURL: web}))
	t.Cleanup(srv.Close)

	// Chromium's helper processes may still write to the profile after the
	// browser exits, so it is removed best-effort instead of by t.TempDir.
	profile, err := os.MkdirTemp("", "statuspage-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--dump-dom", srv.URL+"/status/octo/app")
	cmd.Env = append(os.Environ(), "HOME="+profile)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	doc := parseHTML(t, string(out))

	wantBanners := []string{
		`Pipeline stopped by @alice at 2026-11-21 10:00:00 UTC: <script>alert("x")</script> db on fire`,
		"Patch mode: prod at 3333333 by @bob at 2026-11-21 10:05:00 UTC: hotfix for login",
	}
	if got := banners(doc); !slices.Equal(got, wantBanners) {
		t.Errorf("banners = %q, want %q", got, wantBanners)
	}
	// Stage, state and blocked columns, as a person reads them.
	want := [][]string{
		{"build", "succeeded", "no"},
		{"staging", "rolled back", "blocked (rollback by @carol)"},
		{"prod", "in progress", "no"},
	}
	var got [][]string
	for _, row := range rows(doc, "stages") {
		got = append(got, row[:min(3, len(row))])
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("stages = %q, want %q", got, want)
	}
	// The reason's markup stayed text: the browser built no script from it.
	for range elements(doc, "script") {
		t.Errorf("the browser found a script element:\n%s", out)
		break
	}
}
