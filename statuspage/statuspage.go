package statuspage

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/internal/ghname"
)

// auditLimit is how many audit entries the pages show
// (docs/reference.md#status-pages).
const auditLimit = 50

// Options configure the pages.
type Options struct {
	// WebURL is GitHub's web URL, for commit links; default https://github.com/.
	WebURL string
	// User and Password turn on basic auth; set both or neither. Either one
	// alone still requires credentials, so a half-configured page is closed.
	User, Password string
	// Warning, when set, is shown at the top of every page.
	Warning string
}

// errUnknownRepo marks a repository Railyard has never seen.
var errUnknownRepo = errors.New("repository not known to Railyard")

type handler struct {
	src  Source
	web  string // GitHub web URL ending in "/"
	warn string // Options.Warning
	user []byte // SHA-256 of the expected user and password, so the
	pass []byte // constant-time compare does not leak their lengths
}

// New returns the handler of GET /status/{owner}/{repo} (HTML) and
// GET /api/status/{owner}/{repo} (JSON). Mount it on both prefixes.
func New(src Source, opts Options) http.Handler {
	web := cmp.Or(opts.WebURL, "https://github.com/")
	if !strings.HasSuffix(web, "/") {
		web += "/"
	}
	h := &handler{src: src, web: web, warn: opts.Warning}
	if opts.User != "" || opts.Password != "" {
		u, p := sha256.Sum256([]byte(opts.User)), sha256.Sum256([]byte(opts.Password))
		h.user, h.pass = u[:], p[:]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status/{owner}/{repo}", h.serveHTML)
	mux.HandleFunc("GET /api/status/{owner}/{repo}", h.serveJSON)
	return h.guard(mux)
}

// guard sets headers every answer needs and asks for credentials when
// configured, before anything else (even a 404) is revealed.
func (h *handler) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if h.user != nil && !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Railyard status", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *handler) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	// Both compares always run, so timing does not tell which one failed.
	return subtle.ConstantTimeCompare(u[:], h.user)&subtle.ConstantTimeCompare(p[:], h.pass) == 1
}

// httpError is a failure with the status code and message a user sees.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// load reads and shapes the state of the repository named in the request.
func (h *handler) load(r *http.Request) (*status, error) {
	owner, name := r.PathValue("owner"), r.PathValue("repo")
	if !ghname.Valid(owner) || !ghname.Valid(name) {
		return nil, &httpError{http.StatusBadRequest, "owner and repository must be GitHub names ([A-Za-z0-9_.-])"}
	}
	ctx, repo := r.Context(), owner+"/"+name
	st, err := h.status(ctx, repo)
	switch {
	case errors.Is(err, errUnknownRepo):
		return nil, &httpError{http.StatusNotFound, fmt.Sprintf("%s: %v", repo, err)}
	case err != nil:
		// The cause goes to the log only: it may name store internals.
		zerolog.Ctx(ctx).Error().Err(err).Str("repository", repo).Msg("Status page could not read state.")
		return nil, &httpError{http.StatusInternalServerError, "state is unavailable, try again later"}
	}
	return st, nil
}

// seen tells a stored pipeline from the empty one the engine returns for a
// repository it has never seen.
func seen(p *engine.Pipeline) bool {
	return p != nil && (len(p.Stages) > 0 || p.Branch != "" || p.Stopped != nil || p.Patched != nil || p.InstallationID != 0)
}

// status is the JSON document of docs/reference.md#status-pages; the HTML
// page shows the same.
type status struct {
	Repository string       `json:"repository"`
	Branch     string       `json:"branch"`
	Stopped    *stopped     `json:"stopped"`
	Patch      *patch       `json:"patch"`
	Stages     []stage      `json:"stages"`
	Audit      []auditEntry `json:"audit"`
	// GitHubDelays is why the installation's writes to GitHub (check
	// runs, comments) have waited more than a minute, when they have.
	GitHubDelays []delay `json:"github_delays"`
}

type delay struct {
	Class   string    `json:"class"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Message string    `json:"message"`
}

type stopped struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

type patch struct {
	Stage  string    `json:"stage"`
	SHA    string    `json:"sha"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

type stage struct {
	Name        string   `json:"name"`
	State       string   `json:"state"`
	Blocked     bool     `json:"blocked"`
	BlockedBy   string   `json:"blocked_by"`
	Current     string   `json:"current"`
	Waiting     *waiting `json:"waiting"`
	CheckRunURL string   `json:"check_run_url"`
}

type waiting struct {
	SHA       string `json:"sha"`
	Reason    string `json:"reason"`
	Operation string `json:"operation"`
}

type auditEntry struct {
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Operation string    `json:"operation"`
	Stage     string    `json:"stage"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
}

func (h *handler) status(ctx context.Context, repo string) (*status, error) {
	p, err := h.src.Pipeline(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("read pipeline: %w", err)
	}
	if !seen(p) {
		return nil, errUnknownRepo
	}
	entries, err := h.src.Audit(ctx, repo, auditLimit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	st := &status{
		Repository: cmp.Or(p.Repo, repo),
		Branch:     p.Branch,
		Stages:     make([]stage, 0, len(p.Stages)),
		Audit:      make([]auditEntry, 0, min(len(entries), auditLimit)),
	}
	if s := p.Stopped; s != nil {
		st.Stopped = &stopped{Actor: s.Actor, Reason: s.Reason, At: s.At.UTC()}
	}
	if s := p.Patched; s != nil {
		st.Patch = &patch{Stage: s.Stage, SHA: s.SHA, Actor: s.Actor, Reason: s.Reason, At: s.At.UTC()}
	}
	for _, s := range p.Stages {
		st.Stages = append(st.Stages, h.stage(ctx, st.Repository, s))
	}
	// The engine keeps the log newest first; sorting again costs nothing
	// and keeps the promise whatever the source.
	entries = slices.Clone(entries)
	slices.SortStableFunc(entries, func(a, b engine.AuditEntry) int { return b.At.Compare(a.At) })
	for _, a := range entries[:min(len(entries), auditLimit)] {
		st.Audit = append(st.Audit, auditEntry{
			At: a.At.UTC(), Actor: a.Actor, Operation: string(a.Operation), Stage: a.Stage,
			From: a.From, To: a.To, Reason: a.Reason,
		})
	}
	st.GitHubDelays = h.delays(ctx, st.Repository, p.InstallationID)
	return st, nil
}

// delays reads why the installation's writes to GitHub wait, if the source
// knows; a failure costs the line, not the page.
func (h *handler) delays(ctx context.Context, repo string, installationID int64) []delay {
	out := []delay{}
	src, ok := h.src.(Delays)
	if !ok || installationID == 0 {
		return out
	}
	ds, err := src.GitHubDelays(ctx, installationID)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("repository", repo).Msg("GitHub write delays lookup failed.")
		return out
	}
	for _, d := range ds {
		out = append(out, delay{Class: d.Class, Reason: d.Why, Since: d.Since.UTC(), Until: d.Until.UTC(), Message: d.Message()})
	}
	return out
}

func (h *handler) stage(ctx context.Context, repo string, s *engine.StageState) stage {
	out := stage{Name: s.Name, State: string(s.State), Blocked: s.Blocked, BlockedBy: s.BlockedBy, Current: s.Current}
	if w := s.Waiting; w != nil {
		out.Waiting = &waiting{SHA: w.SHA, Reason: w.Hold, Operation: string(w.Operation)}
	}
	if s.Job != nil {
		u, err := h.src.CheckRunURL(ctx, repo, engine.CheckRunKey(s.Job.ID))
		if err != nil {
			// A missing link is not worth failing the page for.
			zerolog.Ctx(ctx).Warn().Err(err).Str("repository", repo).Str("railyard_stage", s.Name).Msg("Check run link lookup failed.")
			u = ""
		}
		out.CheckRunURL = u
	}
	return out
}

func (h *handler) serveJSON(w http.ResponseWriter, r *http.Request) {
	st, err := h.load(r)
	if err != nil {
		writeJSON(r.Context(), w, codeOf(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(r.Context(), w, http.StatusOK, st)
}

func writeJSON(ctx context.Context, w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Status response not written.")
	}
}

func codeOf(err error) int {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he.code
	}
	return http.StatusInternalServerError
}
