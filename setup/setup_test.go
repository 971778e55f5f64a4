package setup_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/internal/awaittest"
	"github.com/railyard/railyard/internal/githubtest"
	"github.com/railyard/railyard/internal/htmltest"
	"github.com/railyard/railyard/internal/logtest"
	"github.com/railyard/railyard/setup"
)

// manifestFile is the real app.yml at the root of the module.
const manifestFile = "../app.yml"

const conversionOp = "apps/create-from-manifest"

type fixture struct {
	h      *setup.Handler
	gh     *githubtest.Server
	dotenv string
	now    time.Time // the handler's clock
	logs   logtest.Buffer
	jar    http.CookieJar // the browser's cookies, sent and kept by do
}

func newFixture(t *testing.T, publicURL string) *fixture {
	t.Helper()
	f := &fixture{gh: githubtest.New(t), dotenv: filepath.Join(t.TempDir(), ".env"), now: time.Now(), jar: newJar(t)}
	h, err := setup.New(setup.Options{
		ManifestPath: manifestFile,
		DotenvPath:   f.dotenv,
		PublicURL:    publicURL,
		WebURL:       f.gh.URL,
		V3APIURL:     f.gh.URL,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.SetClock(func() time.Time { return f.now })
	f.h = h
	return f
}

func newJar(t *testing.T) http.CookieJar {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

// do serves one request as f.jar's browser would send it, with a logger
// writing to f.logs in its context, and keeps the cookies it sets.
func (f *fixture) do(t *testing.T, method, target string, form url.Values, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	maps.Copy(req.Header, header)
	for _, c := range f.jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	logger := zerolog.New(&f.logs)
	req = req.WithContext(logger.WithContext(t.Context()))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	f.jar.SetCookies(req.URL, rec.Result().Cookies())
	return rec
}

// register loads the setup page and submits its form as a browser would,
// returning the GitHub URL it is sent on to.
func (f *fixture) register(t *testing.T, org string) *url.URL {
	t.Helper()
	const page = "http://railyard.test/"
	rec := f.do(t, "GET", page, nil, nil)
	fm := findForm(t, htmltest.Parse(t, rec.Body.String()))
	fm.fields.Set("organization", org)
	action, err := url.Parse(page)
	if err == nil {
		action, err = action.Parse(fm.action)
	}
	if err != nil {
		t.Fatalf("form action %q: %v", fm.action, err)
	}
	rec = f.do(t, fm.method, action.String(), fm.fields, nil)
	if rec.Code != http.StatusTemporaryRedirect {
		t.Fatalf("submitting the form: status %d, want 307; page: %s", rec.Code, visibleText(htmltest.Parse(t, rec.Body.String())))
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatalf("Location: %v", err)
	}
	return loc
}

// state registers on the user's account and returns the state GitHub echoes back.
func (f *fixture) state(t *testing.T) string {
	t.Helper()
	return f.register(t, "").Query().Get("state")
}

func (f *fixture) callback(t *testing.T, code, state string) *httptest.ResponseRecorder {
	t.Helper()
	q := url.Values{"code": {code}, "state": {state}}
	return f.do(t, "GET", "http://railyard.test/setup/callback?"+q.Encode(), nil, nil)
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// appYAML is app.yml as plain data, independent of the package's own types.
func appYAML(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantManifest is app.yml with this server's URLs filled in, as JSON data.
func wantManifest(t *testing.T, public string) map[string]any {
	t.Helper()
	m := appYAML(t)
	m["url"] = public
	m["hook_attributes"].(map[string]any)["url"] = public + "/api/github/hook"
	m["redirect_url"] = public + "/setup/callback"
	return jsonData(t, m)
}

func jsonData(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIndexShowsManifest(t *testing.T) {
	cases := []struct {
		name       string
		publicURL  string // Options.PublicURL
		target     string
		header     http.Header
		wantPublic string
	}{
		{name: "from RAILYARD_PUBLIC_URL", publicURL: "https://railyard.example.net/", target: "http://10.0.0.5:8080/",
			wantPublic: "https://railyard.example.net"},
		{name: "public URL beats proxy headers", publicURL: "https://railyard.example.net",
			target: "http://10.0.0.5:8080/", header: http.Header{"X-Forwarded-Host": {"other.example"}},
			wantPublic: "https://railyard.example.net"},
		{name: "from the request Host", target: "http://bot.internal:8080/", wantPublic: "http://bot.internal:8080"},
		{name: "from the request Host over TLS", target: "https://bot.internal/", wantPublic: "https://bot.internal"},
		{name: "from proxy headers", target: "http://10.0.0.5:8080/",
			header:     http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"deploy.example.org, proxy.local"}},
			wantPublic: "https://deploy.example.org"},
	}
	app := appYAML(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.publicURL)
			rec := f.do(t, "GET", c.target, nil, c.header)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", rec.Code)
			}
			doc := htmltest.Parse(t, rec.Body.String())
			fm := findForm(t, doc)
			var got map[string]any
			if err := json.Unmarshal([]byte(fm.fields.Get("manifest")), &got); err != nil {
				t.Fatalf("the form's manifest is not JSON: %v", err)
			}
			if want := wantManifest(t, c.wantPublic); !reflect.DeepEqual(got, want) {
				t.Errorf("manifest posted to GitHub:\n got %v\nwant %v", got, want)
			}

			text := visibleText(doc)
			for p, level := range app["default_permissions"].(map[string]any) {
				if want := p + ": " + level.(string); !strings.Contains(text, want) {
					t.Errorf("page does not list the permission %q", want)
				}
			}
			for _, e := range app["default_events"].([]any) {
				if !strings.Contains(text, e.(string)) {
					t.Errorf("page does not list the event %q", e)
				}
			}
			for _, want := range []string{app["name"].(string), c.wantPublic + "/api/github/hook", ".env"} {
				if !strings.Contains(text, want) {
					t.Errorf("page does not mention %q", want)
				}
			}
			if !slices.Contains(buttons(doc), "Register on GitHub") {
				t.Errorf("buttons %q, want a Register on GitHub button", buttons(doc))
			}
			// The form posts to the public URL, then on to GitHub.
			gh, _ := url.Parse(f.gh.URL)
			wantAction := "form-action 'self' " + gh.Scheme + "://" + gh.Host
			if c.publicURL != "" {
				wantAction += " " + c.wantPublic
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, wantAction+";") {
				t.Errorf("Content-Security-Policy %q, want %q", csp, wantAction)
			}
		})
	}
}

func TestIndexWithoutUsableHost(t *testing.T) {
	f := newFixture(t, "")
	rec := f.do(t, "GET", "http://10.0.0.5/", nil, http.Header{"X-Forwarded-Host": {"evil.example/path?x"}})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", rec.Code)
	}
	if text := visibleText(htmltest.Parse(t, rec.Body.String())); !strings.Contains(text, "RAILYARD_PUBLIC_URL") {
		t.Errorf("page %q does not tell to set RAILYARD_PUBLIC_URL", text)
	}
}

func TestRegisterSendsToGitHub(t *testing.T) {
	cases := []struct {
		org, wantPath string
	}{
		{"", "/settings/apps/new"},
		{"acme-inc", "/organizations/acme-inc/settings/apps/new"},
		{"  Acme  ", "/organizations/Acme/settings/apps/new"},
	}
	for _, c := range cases {
		t.Run(strconv.Quote(c.org), func(t *testing.T) {
			f := newFixture(t, "")
			first, second := f.register(t, c.org), f.register(t, c.org)
			web, _ := url.Parse(f.gh.URL)
			if first.Host != web.Host || first.Path != c.wantPath {
				t.Errorf("sent to %s, want %s%s", first, strings.TrimSuffix(f.gh.URL, "/"), c.wantPath)
			}
			s1, s2 := first.Query().Get("state"), second.Query().Get("state")
			if len(s1) < 16 || s1 == s2 {
				t.Errorf("states %q and %q: want long random states, different per press", s1, s2)
			}
		})
	}
}

func TestRegisterRefusesBadOrganization(t *testing.T) {
	for _, org := range []string{"acme/../x", "-acme", "acme inc", strings.Repeat("a", 40)} {
		t.Run(org, func(t *testing.T) {
			f := newFixture(t, "")
			rec := f.do(t, "POST", "http://railyard.test/setup/register", url.Values{"organization": {org}}, nil)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", rec.Code)
			}
			doc := htmltest.Parse(t, rec.Body.String())
			if text := visibleText(doc); !strings.Contains(text, "is not a GitHub organization name") {
				t.Errorf("page %q does not say the organization is wrong", text)
			}
			if got := findForm(t, doc).fields.Get("organization"); got != org {
				t.Errorf("form shows organization %q, want %q kept", got, org)
			}
		})
	}
}

func TestCallbackWritesDotenv(t *testing.T) {
	f := newFixture(t, "")
	const kept = "# written by hand\nRAILYARD_LOG_LEVEL=debug\n"
	if err := os.WriteFile(f.dotenv, []byte(kept), 0o644); err != nil {
		t.Fatal(err)
	}
	code := "code" + strconv.FormatInt(time.Now().UnixNano(), 36)
	app := f.gh.AddManifestCode(code)
	state := f.state(t)

	rec := f.callback(t, code, state)
	if rec.Code != http.StatusOK {
		t.Fatalf("callback: status %d, want 200; page: %s", rec.Code, rec.Body)
	}
	if !isClosed(f.h.Done()) {
		t.Fatal("Done is not closed after the credentials were written")
	}
	doc := htmltest.Parse(t, rec.Body.String())
	wantInstall := f.gh.URL + "apps/" + app.Slug + "/installations/new"
	if !slices.Contains(links(doc), wantInstall) {
		t.Errorf("links %q, want the install link %q", links(doc), wantInstall)
	}

	fi, err := os.Stat(f.dotenv)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf(".env mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(f.dotenv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), kept) {
		t.Errorf(".env lost its existing lines:\n%s", data)
	}
	env, err := config.LoadEnv(func(string) (string, bool) { return "", false }, f.dotenv)
	if err != nil {
		t.Fatalf("LoadEnv on the written .env: %v", err)
	}
	if env.SetupMode() || env.AppID != app.ID || env.WebhookSecret != app.WebhookSecret ||
		!bytes.Equal(env.PrivateKey, app.PEM) || env.LogLevel != zerolog.DebugLevel {
		t.Errorf("LoadEnv = %v, want App %d with GitHub's secret and key, log level debug kept", env, app.ID)
	}
	wantCreds := map[string]string{
		"GITHUB_APP_INTEGRATION_ID": strconv.FormatInt(app.ID, 10),
		"GITHUB_APP_WEBHOOK_SECRET": app.WebhookSecret,
		"GITHUB_APP_PRIVATE_KEY":    string(app.PEM),
	}
	if got := f.h.Credentials(); !maps.Equal(got, wantCreds) {
		t.Errorf("Credentials() has keys %v, want %v with GitHub's values", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(wantCreds)))
	}

	// A reload shows the same page and does not spend the code again.
	again := f.callback(t, code, state)
	if again.Code != http.StatusOK || !slices.Contains(links(htmltest.Parse(t, again.Body.String())), wantInstall) {
		t.Errorf("reload: status %d, want 200 with the install link", again.Code)
	}
	if n := f.gh.Count(conversionOp); n != 1 {
		t.Errorf("GitHub got %d conversions, want 1", n)
	}

	secrets := []string{app.WebhookSecret, app.ClientSecret, pemBody(app.PEM), code}
	for _, page := range []string{rec.Body.String(), again.Body.String()} {
		assertNoSecret(t, "page", page, secrets)
	}
	assertNoSecret(t, "logs", f.logs.String(), secrets)
}

func TestCallbackRefused(t *testing.T) {
	cases := []struct {
		name       string
		call       func(t *testing.T, f *fixture, code string) *httptest.ResponseRecorder
		wantStatus int
		wantText   string
		wantCalls  int // conversions GitHub saw
	}{
		{
			name: "forged state",
			call: func(t *testing.T, f *fixture, code string) *httptest.ResponseRecorder {
				return f.callback(t, code, "forged-state")
			},
			wantStatus: http.StatusBadRequest, wantText: "This setup link is not valid",
		},
		{
			name:       "no state",
			call:       func(t *testing.T, f *fixture, code string) *httptest.ResponseRecorder { return f.callback(t, code, "") },
			wantStatus: http.StatusBadRequest, wantText: "This setup link is not valid",
		},
		{
			name: "state older than an hour",
			call: func(t *testing.T, f *fixture, code string) *httptest.ResponseRecorder {
				state := f.state(t)
				f.now = f.now.Add(time.Hour + time.Minute)
				return f.callback(t, code, state)
			},
			wantStatus: http.StatusBadRequest, wantText: "This setup link is not valid",
		},
		{
			name: "unknown code",
			call: func(t *testing.T, f *fixture, _ string) *httptest.ResponseRecorder {
				return f.callback(t, "never-issued", f.state(t))
			},
			wantStatus: http.StatusBadRequest, wantText: "GitHub did not accept the registration", wantCalls: 1,
		},
		{
			name: "code GitHub answers 422 for",
			call: func(t *testing.T, f *fixture, code string) *httptest.ResponseRecorder {
				f.gh.FailNext("POST", "/app-manifests/", 1, http.StatusUnprocessableEntity, nil)
				return f.callback(t, code, f.state(t))
			},
			wantStatus: http.StatusBadRequest, wantText: "GitHub did not accept the registration", wantCalls: 1,
		},
		{
			name: "code that would change the request path",
			call: func(t *testing.T, f *fixture, _ string) *httptest.ResponseRecorder {
				return f.callback(t, "../../app", f.state(t))
			},
			wantStatus: http.StatusBadRequest, wantText: "GitHub did not accept the registration",
		},
		// A state anyone can fetch must not finish a registration in
		// someone else's browser.
		{
			name:       "state from another browser, in one that never pressed Register",
			call:       fromAnotherBrowser(func(t *testing.T, f *fixture) {}),
			wantStatus: http.StatusBadRequest, wantText: "This registration was started in another browser",
		},
		{
			name:       "state from another browser, in one that pressed Register itself",
			call:       fromAnotherBrowser(func(t *testing.T, f *fixture) { f.state(t) }),
			wantStatus: http.StatusBadRequest, wantText: "This registration was started in another browser",
		},
		{
			name: "state from another browser, in one with a made-up cookie",
			call: fromAnotherBrowser(func(t *testing.T, f *fixture) {
				u, _ := url.Parse("http://railyard.test/")
				f.jar.SetCookies(u, []*http.Cookie{{Name: "railyard_setup", Value: "forged", Path: "/"}})
			}),
			wantStatus: http.StatusBadRequest, wantText: "This registration was started in another browser",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "")
			const before = "RAILYARD_WORKERS=2\n"
			if err := os.WriteFile(f.dotenv, []byte(before), 0o644); err != nil {
				t.Fatal(err)
			}
			code := "code" + strconv.FormatInt(time.Now().UnixNano(), 36)
			app := f.gh.AddManifestCode(code)

			rec := c.call(t, f, code)
			if rec.Code != c.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, c.wantStatus)
			}
			doc := htmltest.Parse(t, rec.Body.String())
			if text := visibleText(doc); !strings.Contains(text, c.wantText) {
				t.Errorf("page %q does not say %q", text, c.wantText)
			}
			if !slices.Contains(links(doc), "/") {
				t.Errorf("links %q, want a link back to /", links(doc))
			}
			if data, _ := os.ReadFile(f.dotenv); string(data) != before {
				t.Errorf(".env changed to:\n%s", data)
			}
			if isClosed(f.h.Done()) || f.h.Credentials() != nil {
				t.Error("Done closed or credentials returned, want neither")
			}
			if n := f.gh.Count(conversionOp); n != c.wantCalls {
				t.Errorf("GitHub got %d conversions, want %d", n, c.wantCalls)
			}
			assertNoSecret(t, "logs", f.logs.String(), []string{code, app.WebhookSecret, pemBody(app.PEM)})
		})
	}
}

// fromAnotherBrowser presses Register in f's browser, then calls back with
// its state from a fresh browser that prepare sets up.
func fromAnotherBrowser(prepare func(t *testing.T, f *fixture)) func(t *testing.T, f *fixture, code string) *httptest.ResponseRecorder {
	return func(t *testing.T, f *fixture, code string) *httptest.ResponseRecorder {
		state := f.state(t)
		f.jar = newJar(t)
		prepare(t, f)
		return f.callback(t, code, state)
	}
}

// A callback refused in another browser spends nothing: the browser that
// pressed Register still finishes, and the other then sees only a conflict.
func TestCallbackFromAnotherBrowserLeavesTheRegistration(t *testing.T) {
	f := newFixture(t, "")
	code := "code" + strconv.FormatInt(time.Now().UnixNano(), 36)
	app := f.gh.AddManifestCode(code)
	state := f.state(t)
	first := f.jar

	f.jar = newJar(t)
	if rec := f.callback(t, code, state); rec.Code != http.StatusBadRequest {
		t.Fatalf("callback in another browser: status %d, want 400", rec.Code)
	}
	f.jar = first
	if rec := f.callback(t, code, state); rec.Code != http.StatusOK || !isClosed(f.h.Done()) {
		t.Fatalf("callback in the first browser: status %d, want 200 and Done closed", rec.Code)
	}
	env, err := config.LoadEnv(func(string) (string, bool) { return "", false }, f.dotenv)
	if err != nil || env.AppID != app.ID {
		t.Errorf("LoadEnv = App %d, %v; want App %d", env.AppID, err, app.ID)
	}
	f.jar = newJar(t)
	if rec := f.callback(t, code, state); rec.Code != http.StatusConflict {
		t.Errorf("the other browser after registration: status %d, want 409", rec.Code)
	}
}

func TestRegisterSetsBrowserCookie(t *testing.T) {
	cases := []struct {
		name       string
		publicURL  string
		header     http.Header
		wantSecure bool
	}{
		{name: "plain http", wantSecure: false},
		{name: "https public URL", publicURL: "https://railyard.example.net", wantSecure: true},
		{name: "https behind a proxy", header: http.Header{"X-Forwarded-Proto": {"https"}}, wantSecure: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.publicURL)
			var values []string
			for range 2 { // two presses in one browser share its cookie
				rec := f.do(t, "POST", "http://railyard.test/setup/register", url.Values{}, c.header)
				if rec.Code != http.StatusTemporaryRedirect {
					t.Fatalf("status %d, want 307", rec.Code)
				}
				cookies := rec.Result().Cookies()
				if len(cookies) != 1 {
					t.Fatalf("cookies %v, want one", cookies)
				}
				ck := cookies[0]
				if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure != c.wantSecure || ck.Path != "/" || ck.MaxAge != 3600 {
					t.Errorf("cookie %s, want HttpOnly, SameSite=Lax, Secure %t, Path=/, Max-Age=3600", ck, c.wantSecure)
				}
				values = append(values, ck.Value)
				if c.wantSecure { // the jar would not send it back over http
					f.jar.SetCookies(&url.URL{Scheme: "http", Host: "railyard.test", Path: "/"},
						[]*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/"}})
				}
			}
			if len(values[0]) < 16 || values[0] != values[1] {
				t.Errorf("cookie values %q, want one long random value kept across presses", values)
			}
		})
	}
}

// A failure after the user confirmed on GitHub is fixed by reloading the
// callback page.
func TestCallbackReloadAfterFailure(t *testing.T) {
	cases := []struct {
		name       string
		breakIt    func(t *testing.T, f *fixture) (fix func())
		wantStatus int
		wantText   string
		wantCalls  int // conversions GitHub saw in the end: the code is spent once
	}{
		{
			name: "GitHub unavailable",
			breakIt: func(t *testing.T, f *fixture) func() {
				f.gh.FailNext("POST", "/app-manifests/", 1, http.StatusBadGateway, nil)
				return func() {}
			},
			wantStatus: http.StatusBadGateway, wantText: "Could not get the App's credentials from GitHub", wantCalls: 2,
		},
		{
			name: ".env not writable",
			breakIt: func(t *testing.T, f *fixture) func() {
				f.dotenv = filepath.Join(t.TempDir(), "missing", ".env")
				h, err := setup.New(setup.Options{ManifestPath: manifestFile, DotenvPath: f.dotenv, WebURL: f.gh.URL, V3APIURL: f.gh.URL})
				if err != nil {
					t.Fatal(err)
				}
				f.h = h
				return func() {
					if err := os.Mkdir(filepath.Dir(f.dotenv), 0o700); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantStatus: http.StatusInternalServerError, wantText: "Could not write the credentials", wantCalls: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "")
			fix := c.breakIt(t, f)
			code := "code" + strconv.FormatInt(time.Now().UnixNano(), 36)
			app := f.gh.AddManifestCode(code)
			state := f.state(t)

			rec := f.callback(t, code, state)
			if rec.Code != c.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, c.wantStatus)
			}
			if text := visibleText(htmltest.Parse(t, rec.Body.String())); !strings.Contains(text, c.wantText) {
				t.Errorf("page %q does not say %q", text, c.wantText)
			}
			if _, err := os.Stat(f.dotenv); err == nil || isClosed(f.h.Done()) {
				t.Fatal(".env written or Done closed after a failure")
			}

			fix()
			rec = f.callback(t, code, state)
			if rec.Code != http.StatusOK || !isClosed(f.h.Done()) {
				t.Fatalf("reload: status %d, Done closed %t; want 200 and closed", rec.Code, isClosed(f.h.Done()))
			}
			env, err := config.LoadEnv(func(string) (string, bool) { return "", false }, f.dotenv)
			if err != nil || env.AppID != app.ID {
				t.Errorf("LoadEnv = App %d, %v; want App %d", env.AppID, err, app.ID)
			}
			if n := f.gh.Count(conversionOp); n != c.wantCalls {
				t.Errorf("GitHub got %d conversions, want %d", n, c.wantCalls)
			}
		})
	}
}

// Two submissions racing: the second waits for the first and shows its result.
func TestCallbackDoubleSubmission(t *testing.T) {
	f := newFixture(t, "")
	code := "code" + strconv.FormatInt(time.Now().UnixNano(), 36)
	f.gh.AddManifestCode(code)
	state := f.state(t)
	release := f.gh.Hold("POST", "/app-manifests/")

	var wg sync.WaitGroup
	codes := make([]int, 2)
	wg.Go(func() { codes[0] = f.callback(t, code, state).Code })
	if !awaittest.Poll(5*time.Second, func() bool { return f.gh.Count(conversionOp) > 0 }) {
		release()
		t.Fatal("the first callback never reached GitHub")
	}
	wg.Go(func() { codes[1] = f.callback(t, code, state).Code })
	release()
	wg.Wait()

	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Errorf("statuses %v, want both 200", codes)
	}
	if n := f.gh.Count(conversionOp); n != 1 {
		t.Errorf("GitHub got %d conversions, want 1", n)
	}
}

func TestCallbackAfterDoneWithOtherState(t *testing.T) {
	f := newFixture(t, "")
	code := "code" + strconv.FormatInt(time.Now().UnixNano(), 36)
	f.gh.AddManifestCode(code)
	other := f.state(t)
	if rec := f.callback(t, code, f.state(t)); rec.Code != http.StatusOK {
		t.Fatalf("callback: status %d", rec.Code)
	}
	written, _ := os.ReadFile(f.dotenv)

	rec := f.callback(t, "another", other)
	if rec.Code != http.StatusConflict {
		t.Errorf("status %d, want 409", rec.Code)
	}
	if data, _ := os.ReadFile(f.dotenv); !bytes.Equal(data, written) {
		t.Error(".env changed by a second registration")
	}
	if n := f.gh.Count(conversionOp); n != 1 {
		t.Errorf("GitHub got %d conversions, want 1", n)
	}
}

func TestOtherPaths(t *testing.T) {
	cases := []struct {
		method, path string
		wantStatus   int
		wantText     string
	}{
		{"GET", "/healthz", http.StatusOK, "ok"},
		{"POST", "/api/github/hook", http.StatusServiceUnavailable, "Railyard is in setup mode"},
		{"GET", "/status/octo/app", http.StatusServiceUnavailable, "Railyard is in setup mode"},
		{"GET", "/readyz", http.StatusServiceUnavailable, "Railyard is in setup mode"},
		{"GET", "/setup/register", http.StatusServiceUnavailable, "Railyard is in setup mode"},
	}
	f := newFixture(t, "")
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			rec := f.do(t, c.method, "http://railyard.test"+c.path, nil, nil)
			if rec.Code != c.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, c.wantStatus)
			}
			if !strings.Contains(rec.Body.String(), c.wantText) {
				t.Errorf("body %q does not say %q", rec.Body, c.wantText)
			}
			if c.wantStatus != http.StatusOK && !slices.Contains(links(htmltest.Parse(t, rec.Body.String())), "/") {
				t.Error("no link to the setup page")
			}
		})
	}
}

func TestNewRefusesBadManifest(t *testing.T) {
	cases := map[string]string{
		"unknown field":      "name: X\nurl: https://x\ndefault_permission:\n  checks: write\n",
		"bad level":          "name: X\nurl: https://x\ndefault_permissions:\n  checks: all\n",
		"no name":            "url: https://x\n",
		"event listed twice": "name: X\ndefault_events: [push, push]\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.yml")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := setup.New(setup.Options{ManifestPath: path}); err == nil {
				t.Error("New accepted the manifest, want an error")
			}
		})
	}
}

func TestNewRefusesURLsNotHTTP(t *testing.T) {
	cases := map[string]setup.Options{
		"web URL":    {WebURL: "github.com"},
		"API URL":    {V3APIURL: "ftp://api.github.com/"},
		"public URL": {PublicURL: "/railyard"},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := setup.New(opts); err == nil || !strings.Contains(err.Error(), "http(s) URL") {
				t.Errorf("New: %v, want an error saying the URL is not http(s)", err)
			}
		})
	}
}

func assertNoSecret(t *testing.T, where, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s show a secret (%d characters)", where, len(s))
		}
	}
}

// pemBody is one line from the middle of a PEM key: the part that must not leak.
func pemBody(p []byte) string {
	lines := strings.Split(string(p), "\n")
	return lines[len(lines)/2]
}

// HTML helpers: what a person sees and what the browser submits.

type form struct {
	method, action string
	fields         url.Values
}

func findForm(t *testing.T, doc *html.Node) form {
	t.Helper()
	for n := range htmltest.Elements(doc, "form") {
		fm := form{method: strings.ToUpper(htmltest.Attr(n, "method")), action: htmltest.Attr(n, "action"), fields: url.Values{}}
		for in := range n.Descendants() {
			// The pages' forms have one submit button, sent when pressed.
			if (in.DataAtom == atom.Input || in.DataAtom == atom.Button) && htmltest.Attr(in, "name") != "" {
				fm.fields.Add(htmltest.Attr(in, "name"), htmltest.Attr(in, "value"))
			}
		}
		return fm
	}
	t.Fatal("the page has no form")
	return form{}
}

func links(doc *html.Node) []string {
	var out []string
	for n := range htmltest.Elements(doc, "a") {
		out = append(out, htmltest.Attr(n, "href"))
	}
	return out
}

func buttons(doc *html.Node) []string {
	var out []string
	for n := range htmltest.Elements(doc, "button") {
		out = append(out, htmltest.Text(n))
	}
	return out
}

// visibleText is the text of the page's body, whitespace collapsed.
func visibleText(doc *html.Node) string {
	for n := range htmltest.Elements(doc, "body") {
		return htmltest.Text(n)
	}
	return ""
}
