package setup_test

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/internal/htmltest"
	"github.com/railyard/railyard/setup"
)

const reachHeading = "GitHub cannot reach this address"

// TestIndexWarnsWhenGitHubCannotReach: before anything is registered, the
// page says when the address GitHub would be given is one it cannot deliver
// webhooks to, and what to do instead.
func TestIndexWarnsWhenGitHubCannotReach(t *testing.T) {
	cases := []struct {
		public     string // RAILYARD_PUBLIC_URL; "" takes it from target
		target     string
		wantPublic string
		wantReason string // "" = no warning
	}{
		{target: "http://localhost:8080/", wantPublic: "http://localhost:8080", wantReason: "a loopback address"},
		{target: "http://127.0.0.1:8080/", wantPublic: "http://127.0.0.1:8080", wantReason: "a loopback address"},
		{public: "http://[::1]:8080", wantReason: "a loopback address"},
		{public: "http://app.localhost:8080", wantReason: "a loopback address"},
		{public: "http://0.0.0.0:8080", wantReason: "the unspecified address"},
		{public: "http://192.168.1.20:8080", wantReason: "a private network address"},
		{public: "http://10.1.2.3", wantReason: "a private network address"},
		{public: "https://172.16.0.1", wantReason: "a private network address"},
		{public: "http://[fd12:3456:789a::1]:8080", wantReason: "a private network address"},
		{public: "http://[::ffff:192.168.0.1]", wantReason: "a private network address"},
		{public: "http://169.254.10.1", wantReason: "a link-local address"},
		{public: "http://[fe80::1]:8080", wantReason: "a link-local address"},
		{public: "http://100.101.102.103:8080", wantReason: "a carrier-grade NAT or VPN address"},
		{public: "http://laptop.local:8080", wantReason: "a .local name"},
		{public: "http://Laptop.Local.:8080", wantReason: "a .local name"},
		{public: "http://laptop:8080", wantReason: "a name without a domain"},
		{public: "https://railyard.example.net"},
		{public: "https://203.0.113.7"},
		{public: "https://[2001:db8::7]"},
		{public: "https://172.32.0.1"},
		{public: "https://local.example.com"},
		{target: "http://10.0.0.5:8080/", wantPublic: "https://deploy.example.org"}, // through a proxy, below
	}
	for _, c := range cases {
		target := cmp.Or(c.target, "http://10.0.0.5:8080/")
		wantPublic := cmp.Or(c.wantPublic, strings.TrimRight(c.public, "/"))
		t.Run(wantPublic, func(t *testing.T) {
			f := newFixture(t, c.public)
			var header http.Header
			if wantPublic == "https://deploy.example.org" {
				header = http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"deploy.example.org"}}
			}
			rec := f.do(t, "GET", target, nil, header)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", rec.Code)
			}
			doc := htmltest.Parse(t, rec.Body.String())
			text := visibleText(doc)
			if c.wantReason == "" {
				if strings.Contains(text, reachHeading) {
					t.Errorf("the page warns that GitHub cannot reach %s: %s", wantPublic, text)
				}
				if got := buttons(doc); !slices.Equal(got, []string{"Register on GitHub"}) {
					t.Errorf("buttons %q, want only Register on GitHub", got)
				}
				return
			}
			for _, want := range []string{
				reachHeading,
				"GitHub would send webhooks to " + wantPublic + ", which is " + c.wantReason,
				"forwards each request body unchanged",
				"cloudflared tunnel --url " + wantPublic,
				"ngrok http " + wantPublic,
				"Set RAILYARD_PUBLIC_URL to the tunnel's https URL, in the environment or in " + f.dotenv,
				"Restart Railyard and open this page at the tunnel's URL",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("the page does not say %q; it reads:\n%s", want, text)
				}
			}
			if strings.Index(text, reachHeading) > strings.Index(text, "Railyard has no GitHub App yet") {
				t.Error("the warning comes after the explanation; want it first")
			}
			if got := buttons(doc); !slices.Equal(got, []string{"Register anyway"}) {
				t.Errorf("buttons %q, want only Register anyway", got)
			}
		})
	}
}

// Registering an unreachable address takes the page's explicit "Register
// anyway"; a plain submission shows the warning again and starts nothing.
func TestRegisterUnreachable(t *testing.T) {
	const page = "http://localhost:8080/"
	f := newFixture(t, "")
	rec := f.do(t, "POST", page+"setup/register", url.Values{"organization": {"acme"}}, nil)
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("status %d, Location %q, cookies %v; want 400, no redirect, no cookie",
			rec.Code, rec.Header().Get("Location"), rec.Result().Cookies())
	}
	doc := htmltest.Parse(t, rec.Body.String())
	if text := visibleText(doc); !strings.Contains(text, reachHeading) {
		t.Errorf("the page does not warn; it reads:\n%s", text)
	}
	if got := findForm(t, doc).fields.Get("organization"); got != "acme" {
		t.Errorf("form shows organization %q, want acme kept", got)
	}

	// Pressing Register anyway goes on to GitHub, and the finished page
	// repeats that webhooks may not arrive.
	code := "code" + strconv.FormatInt(time.Now().UnixNano(), 36)
	app := f.gh.AddManifestCode(code)
	fm := findForm(t, htmltest.Parse(t, f.do(t, "GET", page, nil, nil).Body.String()))
	action, err := url.Parse(page)
	if err == nil {
		action, err = action.Parse(fm.action)
	}
	if err != nil {
		t.Fatal(err)
	}
	rec = f.do(t, fm.method, action.String(), fm.fields, nil)
	if rec.Code != http.StatusTemporaryRedirect {
		t.Fatalf("Register anyway: status %d, want 307", rec.Code)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	rec = f.do(t, "GET", page+"setup/callback?"+url.Values{"code": {code}, "state": {loc.Query().Get("state")}}.Encode(), nil, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("callback: status %d, want 200", rec.Code)
	}
	text := visibleText(htmltest.Parse(t, rec.Body.String()))
	for _, want := range []string{"Webhooks may not arrive", "http://localhost:8080, which is a loopback address", "/api/github/hook"} {
		if !strings.Contains(text, want) {
			t.Errorf("the finished page does not say %q; it reads:\n%s", want, text)
		}
	}
	if env, err := config.LoadEnv(func(string) (string, bool) { return "", false }, f.dotenv); err != nil || env.AppID != app.ID {
		t.Errorf("LoadEnv = App %d, %v; want App %d", env.AppID, err, app.ID)
	}
}

// TestFirstRunOnALaptop follows the README's walkthrough for a bot on a
// laptop: the page at localhost warns, the operator runs a tunnel, adds
// RAILYARD_PUBLIC_URL to .env and restarts, and registers through the tunnel.
func TestFirstRunOnALaptop(t *testing.T) {
	const tunnel = "https://quiet-river-1234.trycloudflare.com"

	// 1. The bot starts in setup mode; its page at localhost warns.
	f := newFixture(t, "")
	text := visibleText(htmltest.Parse(t, f.do(t, "GET", "http://localhost:8080/", nil, nil).Body.String()))
	for _, want := range []string{reachHeading, "cloudflared tunnel --url http://localhost:8080"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the page at localhost does not say %q; it reads:\n%s", want, text)
		}
	}

	// 2, 3. With the tunnel running, RAILYARD_PUBLIC_URL goes into .env and
	// the bot restarts: it reads .env and serves setup mode again.
	if err := os.WriteFile(f.dotenv, []byte("RAILYARD_PUBLIC_URL="+tunnel+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := config.LoadEnv(func(string) (string, bool) { return "", false }, f.dotenv)
	if err != nil || !env.SetupMode() || env.PublicURL != tunnel {
		t.Fatalf("LoadEnv = setup mode %t, public URL %q, %v; want setup mode at %s", env.SetupMode(), env.PublicURL, err, tunnel)
	}
	f.h, err = setup.New(setup.Options{
		ManifestPath: manifestFile, DotenvPath: f.dotenv,
		PublicURL: env.PublicURL, WebURL: f.gh.URL, V3APIURL: f.gh.URL,
	})
	if err != nil {
		t.Fatal(err)
	}

	// 4. The page at the tunnel's URL registers the App with the tunnel's URLs.
	rec := f.do(t, "GET", tunnel+"/", nil, nil)
	doc := htmltest.Parse(t, rec.Body.String())
	if text := visibleText(doc); strings.Contains(text, reachHeading) {
		t.Errorf("the page at the tunnel still warns: %s", text)
	}
	fm := findForm(t, doc)
	var m map[string]any
	if err := json.Unmarshal([]byte(fm.fields.Get("manifest")), &m); err != nil {
		t.Fatal(err)
	}
	if got := m["hook_attributes"].(map[string]any)["url"]; got != tunnel+"/api/github/hook" {
		t.Errorf("webhook URL sent to GitHub %v, want %s/api/github/hook", got, tunnel)
	}
	code := "code" + strconv.FormatInt(time.Now().UnixNano(), 36)
	app := f.gh.AddManifestCode(code)
	rec = f.do(t, fm.method, fm.action, fm.fields, nil)
	if rec.Code != http.StatusTemporaryRedirect {
		t.Fatalf("Register on GitHub: status %d, want 307", rec.Code)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"code": {code}, "state": {loc.Query().Get("state")}}
	if rec := f.do(t, "GET", tunnel+"/setup/callback?"+q.Encode(), nil, nil); rec.Code != http.StatusOK || !isClosed(f.h.Done()) {
		t.Fatalf("callback: status %d, Done closed %t; want 200 and closed", rec.Code, isClosed(f.h.Done()))
	}
	env, err = config.LoadEnv(func(string) (string, bool) { return "", false }, f.dotenv)
	if err != nil || env.AppID != app.ID || env.PublicURL != tunnel {
		t.Errorf("LoadEnv = App %d at %q, %v; want App %d at %s", env.AppID, env.PublicURL, err, app.ID, tunnel)
	}
}
