package statuspage

import (
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/railyard/railyard/internal/browsertest"
	"github.com/railyard/railyard/internal/htmltest"
)

// TestBrowser loads the page in headless Chromium and checks what a person
// sees once a real browser has parsed it.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(New(halted(), Options{WebURL: web}))
	t.Cleanup(srv.Close)
	out := browsertest.DumpDOM(t, srv.URL+"/status/octo/app")
	doc := htmltest.Parse(t, out)

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
	for range htmltest.Elements(doc, "script") {
		t.Errorf("the browser found a script element:\n%s", out)
		break
	}
}
