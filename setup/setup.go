package setup

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/config"
)

const (
	hookPath     = "/api/github/hook"
	registerPath = "/setup/register"
	callbackPath = "/setup/callback"

	stateTTL = time.Hour
	// browserCookie ties a state to the browser that pressed Register, so a
	// state fetched by someone else is worthless in a victim's browser.
	browserCookie = "railyard_setup"
	// maxStates bounds the memory that presses of the Register button take.
	maxStates = 100
)

var (
	// A manifest code goes into the path of the conversion request: anything
	// that is not a plain token could change that path, so it is not sent.
	codePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	orgPattern  = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	hostPattern = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)
	// tokenPattern is what rand.Text returns: a browser cookie of another
	// shape was not set by this handler and is replaced.
	tokenPattern = regexp.MustCompile(`^[A-Z2-7]{26}$`)

	// errCodeRefused means GitHub does not know the manifest code: it was used
	// already, expired, or never issued.
	errCodeRefused = errors.New("GitHub refused the manifest code")
)

// Options configure a Handler. Only ManifestPath and DotenvPath matter in
// production; the URLs come from config.Env.
type Options struct {
	ManifestPath string       // app.yml; default "app.yml"
	DotenvPath   string       // .env to write; default ".env"
	PublicURL    string       // RAILYARD_PUBLIC_URL; "" = derive from the request (X-Forwarded-Proto/Host honoured only if set, else r.Host and TLS)
	WebURL       string       // GITHUB_WEB_URL, e.g. https://github.com/
	V3APIURL     string       // GITHUB_V3_API_URL
	HTTPClient   *http.Client // optional; default: a client with a 30s timeout
}

// Handler serves setup mode. It is safe for concurrent use.
type Handler struct {
	opts       Options
	manifest   manifest
	formAction string // where the page's form may post, for the Content-Security-Policy
	github     *github.Client
	mux        *http.ServeMux
	now        func() time.Time

	// mu serialises registrations and callbacks. A callback holds it while it
	// talks to GitHub, so a double submission waits and then sees the result.
	mu     sync.Mutex
	states map[string]*attempt
	app    *registeredApp // set, before done is closed, once the credentials are written
	done   chan struct{}
}

// attempt is one press of the Register button, found again by its state.
type attempt struct {
	expires time.Time
	browser string // the browserCookie of the browser that pressed the button
	// app is set once the code was exchanged. GitHub answers a code only
	// once, so if writing .env fails a reload retries the write alone.
	app *registeredApp
}

type registeredApp struct {
	id         int64
	name       string
	installURL string
	env        map[string]string // the variables written to .env
	state      string            // the attempt that wrote them
	browser    string            // and its browser
}

// New checks opts and reads the manifest once.
func New(opts Options) (*Handler, error) {
	opts.ManifestPath = cmp.Or(opts.ManifestPath, "app.yml")
	opts.DotenvPath = cmp.Or(opts.DotenvPath, ".env")
	web, err := baseURL("WebURL", cmp.Or(opts.WebURL, "https://github.com/"))
	if err != nil {
		return nil, err
	}
	api, err := baseURL("V3APIURL", cmp.Or(opts.V3APIURL, "https://api.github.com/"))
	if err != nil {
		return nil, err
	}
	opts.WebURL = web.String()
	// The form posts to the public URL, and the browser is sent on to GitHub.
	formAction := "'self' " + web.Scheme + "://" + web.Host
	if opts.PublicURL != "" {
		u, ok := config.HTTPURL(opts.PublicURL)
		if !ok {
			return nil, fmt.Errorf("setup: PublicURL %q is not an absolute http(s) URL", opts.PublicURL)
		}
		opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
		formAction += " " + u.Scheme + "://" + u.Host
	}
	m, err := readManifest(opts.ManifestPath)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}

	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	gh := github.NewClient(client)
	// Set directly: WithEnterpriseURLs would append api/v3/ to a test server's URL.
	gh.BaseURL = api

	h := &Handler{
		opts:       opts,
		manifest:   m,
		formAction: formAction,
		github:     gh,
		mux:        http.NewServeMux(),
		now:        time.Now,
		states:     map[string]*attempt{},
		done:       make(chan struct{}),
	}
	h.mux.HandleFunc("GET /{$}", h.index)
	h.mux.HandleFunc("POST "+registerPath, h.register)
	h.mux.HandleFunc("GET "+callbackPath, h.callback)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	h.mux.HandleFunc("/", h.setupMode)
	return h, nil
}

func baseURL(name, v string) (*url.URL, error) {
	u, ok := config.HTTPURL(v)
	if !ok {
		return nil, fmt.Errorf("setup: %s %q is not an http(s) URL", name, v)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// Done is closed once credentials were written to .env.
func (h *Handler) Done() <-chan struct{} { return h.done }

// Credentials returns the variables written to .env (GITHUB_APP_INTEGRATION_ID,
// GITHUB_APP_WEBHOOK_SECRET, GITHUB_APP_PRIVATE_KEY) once Done is closed, and
// nil before.
func (h *Handler) Credentials() map[string]string {
	select {
	case <-h.done:
		return maps.Clone(h.app.env)
	default:
		return nil
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// The callback URL holds the one-time code: no caching, no Referer.
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	// form-action covers the redirect of the form to GitHub too.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "+
		"form-action "+h.formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	if app := h.registered(); app != nil {
		h.renderDone(w, r, app)
		return
	}
	h.renderIndex(w, r, http.StatusOK, "", "")
}

// register sends the browser on to GitHub's "new App" page for the account
// or organization, with a fresh state.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	if app := h.registered(); app != nil {
		h.renderDone(w, r, app)
		return
	}
	org := strings.TrimSpace(r.PostFormValue("organization"))
	if org != "" && !orgPattern.MatchString(org) {
		h.renderIndex(w, r, http.StatusBadRequest, org,
			fmt.Sprintf("%q is not a GitHub organization name: use its login, as in github.com/LOGIN.", org))
		return
	}
	target := h.opts.WebURL + "settings/apps/new"
	if org != "" {
		target = h.opts.WebURL + "organizations/" + org + "/settings/apps/new"
	}
	public, err := h.publicURL(r)
	if err != nil {
		h.renderIndex(w, r, http.StatusBadRequest, org, "") // explains the missing address
		return
	}
	if unreachable(public) != "" && r.PostFormValue("anyway") != "yes" {
		// Only the page's "Register anyway" button sends this: the warning
		// was on the screen when it was pressed.
		h.renderIndex(w, r, http.StatusBadRequest, org, "")
		return
	}
	browser := browserOf(r)
	if browser == "" {
		browser = rand.Text()
	}
	// Lax: GitHub brings the browser back with a top-level GET, which Lax
	// cookies accompany and cross-site subrequests do not.
	http.SetCookie(w, &http.Cookie{
		Name: browserCookie, Value: browser, Path: "/", MaxAge: int(stateTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(public, "https://"),
	})
	state := rand.Text()
	h.mu.Lock()
	h.addStateLocked(state, browser)
	h.mu.Unlock()

	zerolog.Ctx(r.Context()).Info().Str("organization", org).Msg("Sending the App manifest to GitHub.")
	// 307 keeps the method and the body: the browser posts this same form,
	// with the manifest, to GitHub.
	http.Redirect(w, r, target+"?state="+url.QueryEscape(state), http.StatusTemporaryRedirect)
}

// browserOf returns the browser's setup cookie, or "" when it sent none of
// this handler's making.
func browserOf(r *http.Request) string {
	c, err := r.Cookie(browserCookie)
	if err != nil || !tokenPattern.MatchString(c.Value) {
		return ""
	}
	return c.Value
}

// sameBrowser compares cookies in constant time.
func sameBrowser(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// addStateLocked remembers state for an hour, dropping expired states and,
// past maxStates, the oldest.
func (h *Handler) addStateLocked(state, browser string) {
	now := h.now()
	maps.DeleteFunc(h.states, func(_ string, a *attempt) bool { return now.After(a.expires) })
	for len(h.states) >= maxStates {
		var oldest string
		for s, a := range h.states {
			if oldest == "" || a.expires.Before(h.states[oldest].expires) {
				oldest = s
			}
		}
		delete(h.states, oldest)
	}
	h.states[state] = &attempt{expires: now.Add(stateTTL), browser: browser}
}

// callback is where GitHub sends the browser back with the manifest code.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx)
	state, code := r.URL.Query().Get("state"), r.URL.Query().Get("code")
	browser := browserOf(r)

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.app != nil {
		if state == h.app.state && sameBrowser(h.app.browser, browser) {
			h.renderDone(w, r, h.app) // a reload or double submission
			return
		}
		h.renderMessage(w, r, http.StatusConflict, message{
			Title: "Railyard is already registered",
			Text:  "This Railyard already has a GitHub App. Nothing was changed.",
		})
		return
	}
	a := h.states[state]
	if a == nil || h.now().After(a.expires) {
		log.Warn().Msg("Setup callback with an unknown or expired state; nothing written.")
		h.renderMessage(w, r, http.StatusBadRequest, message{
			Title: "This setup link is not valid",
			Text: "It was not started from this Railyard's setup page, or it is more than an hour old. " +
				"Nothing was written. Start again from the setup page.",
		})
		return
	}
	if !sameBrowser(a.browser, browser) {
		// Someone else's state: exchanging its code would register their
		// App here, or this browser's session would finish their setup.
		log.Warn().Msg("Setup callback from a browser that did not press Register; nothing written.")
		h.renderMessage(w, r, http.StatusBadRequest, message{
			Title: "This registration was started in another browser",
			Text: "Railyard finishes a registration only in the browser that pressed Register on its setup page, " +
				"and this browser did not (or it does not keep cookies). Nothing was written. " +
				"Start again from the setup page, in this browser.",
		})
		return
	}

	if a.app == nil {
		app, err := h.exchange(ctx, code)
		switch {
		case errors.Is(err, errCodeRefused):
			log.Warn().Msg("GitHub refused the manifest code; nothing written.")
			h.renderMessage(w, r, http.StatusBadRequest, message{
				Title: "GitHub did not accept the registration",
				Text: "GitHub does not know this registration code: a code works once and for an hour only. " +
					"Nothing was written. Start again from the setup page.",
			})
			return
		case err != nil:
			log.Error().Err(err).Msg("Could not exchange the manifest code with GitHub.")
			h.renderMessage(w, r, http.StatusBadGateway, message{
				Title:  "Could not get the App's credentials from GitHub",
				Text:   "Nothing was written. Reload this page to try again; if it keeps failing, start again from the setup page.",
				Detail: err.Error(),
			})
			return
		}
		a.app = app
	}

	if err := config.WriteDotenv(h.opts.DotenvPath, a.app.env); err != nil {
		log.Error().Err(err).Int64("github_app_id", a.app.id).Msg("Could not write the App credentials to .env.")
		h.renderMessage(w, r, http.StatusInternalServerError, message{
			Title: "Could not write the credentials",
			Text: "GitHub created the App, but its credentials could not be written to " + h.opts.DotenvPath +
				". Fix that, then reload this page: Railyard still holds them and does not ask GitHub again.",
			Detail: err.Error(),
		})
		return
	}
	a.app.state, a.app.browser = state, a.browser
	h.app = a.app
	clear(h.states)
	close(h.done)
	log.Info().Int64("github_app_id", h.app.id).Str("path", h.opts.DotenvPath).
		Msg("Registered the GitHub App and wrote its credentials.")
	h.renderDone(w, r, h.app)
}

// registered returns the App once its credentials are written, else nil.
func (h *Handler) registered() *registeredApp {
	select {
	case <-h.done:
		return h.app // written before done was closed
	default:
		return nil
	}
}

// exchange trades the manifest code for the App's credentials.
func (h *Handler) exchange(ctx context.Context, code string) (*registeredApp, error) {
	if !codePattern.MatchString(code) {
		return nil, errCodeRefused
	}
	cfg, resp, err := h.github.Apps.CompleteAppManifest(ctx, code)
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnprocessableEntity) {
			return nil, errCodeRefused
		}
		return nil, fmt.Errorf("exchange the manifest code: %w", withoutURL(err, resp))
	}
	env := map[string]string{
		"GITHUB_APP_INTEGRATION_ID": strconv.FormatInt(cfg.GetID(), 10),
		"GITHUB_APP_WEBHOOK_SECRET": cfg.GetWebhookSecret(),
		"GITHUB_APP_PRIVATE_KEY":    cfg.GetPEM(),
	}
	// Check the answer as the bot will read it, so a bad one is not written.
	got, err := config.LoadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	if err != nil {
		return nil, fmt.Errorf("GitHub's answer is not usable: %w", err)
	}
	if got.SetupMode() {
		return nil, errors.New("GitHub's answer holds no credentials")
	}
	return &registeredApp{
		id:         got.AppID,
		name:       cmp.Or(cfg.GetName(), h.manifest.Name),
		installURL: h.installURL(cfg),
		env:        env,
	}, nil
}

// withoutURL describes a failed request without its URL, which holds the
// one-time code.
func withoutURL(err error, resp *github.Response) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if resp != nil && resp.StatusCode >= 300 {
		return fmt.Errorf("GitHub answered %s", resp.Status)
	}
	return errors.New("GitHub's answer could not be read")
}

func (h *Handler) installURL(cfg *github.AppConfig) string {
	if u, ok := config.HTTPURL(cfg.GetHTMLURL()); ok {
		return u.JoinPath("installations", "new").String()
	}
	return h.opts.WebURL + "apps/" + url.PathEscape(cfg.GetSlug()) + "/installations/new"
}

// setupMode answers every other path: nothing but setup runs yet.
func (h *Handler) setupMode(w http.ResponseWriter, r *http.Request) {
	h.renderMessage(w, r, http.StatusServiceUnavailable, message{
		Title: "Railyard is in setup mode",
		Text:  "Railyard has no GitHub App yet, so it serves only its setup page until the App is registered.",
	})
}

// publicURL is this server's URL as GitHub and the browser reach it, without
// a trailing slash.
func (h *Handler) publicURL(r *http.Request) (string, error) {
	if h.opts.PublicURL != "" {
		return h.opts.PublicURL, nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
		scheme = strings.ToLower(p)
	}
	host := r.Host
	if fh := firstValue(r.Header.Get("X-Forwarded-Host")); fh != "" {
		host = fh
	}
	if (scheme != "http" && scheme != "https") || !hostPattern.MatchString(host) {
		return "", errors.New("cannot tell this server's public URL from the request")
	}
	return scheme + "://" + host, nil
}

// firstValue returns the first of a proxy header's comma-separated values:
// what the browser asked the first proxy for.
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// home is the setup page's URL for links.
func (h *Handler) home() string { return h.opts.PublicURL + "/" }
