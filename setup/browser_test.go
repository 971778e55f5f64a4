package setup_test

import (
	"cmp"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/internal/browsertest"
	"github.com/railyard/railyard/internal/htmltest"
	"github.com/railyard/railyard/setup"
)

// TestSetupPageInBrowser loads the setup page in headless Chromium and checks
// what a person sees: the explanation, the permissions and the button; and,
// at an address GitHub cannot reach (the test server's loopback), the warning
// first.
func TestSetupPageInBrowser(t *testing.T) {
	cases := []struct {
		name       string
		publicURL  string // "" = the test server's own loopback URL
		wantButton string
	}{
		{name: "public address", publicURL: "https://railyard.example.net", wantButton: "Register on GitHub"},
		{name: "loopback address", wantButton: "Register anyway"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dotenv := filepath.Join(t.TempDir(), ".env")
			h, err := setup.New(setup.Options{
				ManifestPath: manifestFile,
				DotenvPath:   dotenv,
				PublicURL:    c.publicURL,
				WebURL:       "https://github.example/",
				V3APIURL:     "https://github.example/api/v3/",
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			public := cmp.Or(c.publicURL, srv.URL)

			dom := browsertest.DumpDOM(t, srv.URL+"/")
			doc := htmltest.Parse(t, dom)
			text := visibleText(doc)
			app := appYAML(t)
			want := []string{
				"Set up Railyard",
				"creates a GitHub App named " + app["name"].(string),
				"on your GitHub account, or on the organization you enter",
				"private key to " + dotenv,
				"Organization (optional)",
				public + "/api/github/hook",
			}
			if c.publicURL == "" {
				want = append(want, reachHeading, "which is a loopback address",
					"cloudflared tunnel --url "+srv.URL, "Set RAILYARD_PUBLIC_URL to the tunnel's https URL")
			}
			for p, level := range app["default_permissions"].(map[string]any) {
				want = append(want, p+": "+level.(string))
			}
			for _, e := range app["default_events"].([]any) {
				want = append(want, e.(string))
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("the page as Chromium shows it lacks %q; it reads:\n%s", w, text)
				}
			}
			if c.publicURL != "" && strings.Contains(text, reachHeading) {
				t.Errorf("the page warns about a public address; it reads:\n%s", text)
			}
			if got := buttons(doc); !slices.Equal(got, []string{c.wantButton}) {
				t.Errorf("buttons %q, want %s", got, c.wantButton)
			}
			if fm := findForm(t, doc); fm.method != "POST" || fm.fields.Get("manifest") == "" {
				t.Errorf("form %s %s with fields %v, want a POST carrying the manifest", fm.method, fm.action, fm.fields)
			}
		})
	}
}
