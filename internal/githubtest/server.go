package githubtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/railyard/railyard/internal/githubmetrics"
)

// Server is a fake GitHub REST API for one test. Its zero value is not
// usable; call New.
type Server struct {
	// URL is the base URL of both the API and the web pages, with a trailing
	// slash, as GITHUB_V3_API_URL and GITHUB_WEB_URL expect.
	URL string

	t    testing.TB
	spec *spec
	srv  *httptest.Server
	mux  *http.ServeMux
	ids  atomic.Int64

	// checkResponses makes the server validate its own answers too, which
	// the kit's own tests turn on.
	checkResponses bool

	mu            sync.Mutex
	repos         map[string]*Repo // by lower-case full name
	tokens        map[string]int64 // installation access token → installation ID
	requests      []Request
	faults        []*fault
	holds         []*hold
	manifestCodes map[string]ManifestApp
	users         map[string]int64 // login → user ID
	rates         map[int64]*rateLimit
	secondary     *secondaryLimit // nil: none (LimitSecondary)
	rateRule      *rateRule       // nil: the rate limit is announced, not enforced (LimitRate)
	flight        inFlight
}

// Request is one request the server received.
type Request struct {
	Method      string
	Path        string
	Query       url.Values
	Body        []byte
	OperationID string // GitHub's operationId, e.g. "checks/create"; empty when none matched
	Route       string // the operation's method and path, e.g. "POST /repos/{owner}/{repo}/check-runs"; empty when none matched
	At          time.Time
}

// New starts a fake GitHub for t; it is closed when t ends. The first call in
// a test binary loads GitHub's OpenAPI description.
func New(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// start is New; checkResponses also validates the fake's own answers.
func start(t testing.TB, checkResponses bool) *Server {
	t.Helper()
	sp, err := loadSpec()
	if err != nil {
		t.Fatalf("githubtest: %v", err)
	}
	s := &Server{
		t:              t,
		checkResponses: checkResponses,
		spec:           sp,
		mux:            http.NewServeMux(),
		repos:          map[string]*Repo{},
		tokens:         map[string]int64{},
		manifestCodes:  map[string]ManifestApp{},
		users:          map[string]int64{},
		rates:          map[int64]*rateLimit{},
	}
	s.ids.Store(1000) // distinct from installation and app IDs, which are small
	for _, rt := range routes {
		s.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if ctx, ok := s.authenticate(w, r, rt.auth); ok {
				if inst, ok := ctx.Value(installationKey{}).(int64); ok {
					defer s.enter(inst)()
				}
				rt.handle(s, w, r.WithContext(ctx))
			}
		})
	}
	// Downloads GitHub serves from other hosts (codeload, raw) live under /_fake/.
	s.mux.HandleFunc("GET /_fake/tarball/{owner}/{repo}/{sha}", s.downloadTarball)
	s.mux.HandleFunc("GET /_fake/raw/{owner}/{repo}/{sha}/{path...}", s.downloadRaw)
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL + "/"
	t.Cleanup(func() {
		s.mu.Lock()
		holds := s.holds
		s.holds = nil
		s.mu.Unlock()
		for _, h := range holds {
			h.release()
		}
		s.srv.Close()
	})
	return s
}

type authKind int

const (
	authInstallation authKind = iota // an installation access token
	authApp                          // the App's JWT
	authNone
)

// route is one GitHub operation the fake serves. pattern is its
// http.ServeMux pattern, "METHOD /path", where a last parameter that may
// contain slashes is written {name...}.
type route struct {
	pattern string
	handler
}

// operation returns the method, lower case, and the path of rt as GitHub's
// description keys them.
func (rt route) operation() (method, path string) {
	method, path, _ = strings.Cut(githubmetrics.Template(rt.pattern), " ")
	return strings.ToLower(method), path
}

// handler is how the fake answers one operation.
type handler struct {
	auth   authKind
	handle func(s *Server, w http.ResponseWriter, r *http.Request)
}

// handlers answer the operations, keyed "METHOD /path" as GitHub's
// description writes them. Which of them are served is routes' business.
var handlers = map[string]handler{
	"POST /app/installations/{installation_id}/access_tokens": {authApp, (*Server).createToken},
	"GET /app":                               {authApp, (*Server).getApp},
	"GET /repos/{owner}/{repo}/installation": {authApp, (*Server).getRepoInstallation},
	"POST /app-manifests/{code}/conversions": {authNone, (*Server).convertManifest},

	"GET /repos/{owner}/{repo}":                             {authInstallation, (*Server).getRepo},
	"GET /repos/{owner}/{repo}/contents/{path}":             {authInstallation, (*Server).getContent},
	"GET /repos/{owner}/{repo}/commits/{ref}":               {authInstallation, (*Server).getCommit},
	"GET /repos/{owner}/{repo}/tarball/{ref}":               {authInstallation, (*Server).getTarball},
	"GET /repos/{owner}/{repo}/compare/{basehead}":          {authInstallation, (*Server).compare},
	"GET /repos/{owner}/{repo}/pulls/{pull_number}":         {authInstallation, (*Server).getPull},
	"GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews": {authInstallation, (*Server).listReviews},
	"GET /repos/{owner}/{repo}/commits/{ref}/check-runs":    {authInstallation, (*Server).listCheckRunsForRef},
	"GET /repos/{owner}/{repo}/commits/{ref}/status":        {authInstallation, (*Server).getCombinedStatus},
	"GET /repos/{owner}/{repo}/branches/{branch}":           {authInstallation, (*Server).getBranch},
	"GET /repos/{owner}/{repo}/rules/branches/{branch}":     {authInstallation, (*Server).getBranchRules},

	"POST /repos/{owner}/{repo}/check-runs":                 {authInstallation, (*Server).createCheckRun},
	"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}": {authInstallation, (*Server).updateCheckRun},
	"GET /repos/{owner}/{repo}/check-runs/{check_run_id}":   {authInstallation, (*Server).getCheckRun},

	"POST /repos/{owner}/{repo}/deployments":                          {authInstallation, (*Server).createDeployment},
	"GET /repos/{owner}/{repo}/deployments":                           {authInstallation, (*Server).listDeployments},
	"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses": {authInstallation, (*Server).createDeploymentStatus},
	"GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses":  {authInstallation, (*Server).listDeploymentStatuses},

	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments":         {authInstallation, (*Server).createComment},
	"GET /repos/{owner}/{repo}/issues/{issue_number}/comments":          {authInstallation, (*Server).listComments},
	"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}":          {authInstallation, (*Server).updateComment},
	"POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions": {authInstallation, (*Server).createReaction},
	"GET /repos/{owner}/{repo}/collaborators/{username}/permission":     {authInstallation, (*Server).getPermission},

	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches": {authInstallation, (*Server).dispatchWorkflow},
	"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs":        {authInstallation, (*Server).listWorkflowRuns},
	"GET /repos/{owner}/{repo}/actions/runs":                                {authInstallation, (*Server).listWorkflowRuns},
	"GET /repos/{owner}/{repo}/actions/runs/{run_id}":                       {authInstallation, (*Server).getWorkflowRun},
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel":               {authInstallation, (*Server).cancelWorkflowRun},
}

// testOnly are the operations the fake serves although the bot's
// instrumented GitHub client never calls them, in http.ServeMux form.
var testOnly = []string{
	"GET /app",                                                 // tests check the App a manifest made
	"GET /repos/{owner}/{repo}/installation",                   // likewise, its installation
	"POST /app-manifests/{code}/conversions",                   // setup's one call, before there is an App, on a client without metrics
	"GET /repos/{owner}/{repo}/check-runs/{check_run_id}",      // tests read a check run back
	"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}", // tests edit a comment as a person would
	"GET /repos/{owner}/{repo}/actions/runs",                   // tests list runs of every workflow
}

// routes are the operations the fake serves: every route the bot calls
// (githubmetrics owns that list, and which parameters span segments) and
// testOnly, each with its handler.
var routes = servedRoutes()

func servedRoutes() []route {
	var out []route
	for _, pattern := range append(githubmetrics.Patterns(), testOnly...) {
		h, ok := handlers[githubmetrics.Template(pattern)]
		if !ok {
			panic("githubtest: no handler serves " + pattern + ", which the bot calls")
		}
		out = append(out, route{pattern: pattern, handler: h})
	}
	return out
}

type installationKey struct{}

// ServeHTTP records, validates, holds or fails the request as the test asked,
// then answers it like GitHub.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, At: time.Now()}
	r.Body = io.NopCloser(bytes.NewReader(body))

	var route *routers.Route
	var invalid error
	if kind, ok := strings.CutPrefix(r.URL.Path, "/_fake/"); ok {
		kind, _, _ = strings.Cut(kind, "/")
		rec.OperationID = "githubtest/" + kind
	} else {
		route, invalid = s.spec.validate(withoutNullBody(r, body))
		if route != nil {
			rec.OperationID = route.Operation.OperationID
			rec.Route = route.Method + " " + route.Path
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	switch {
	case errors.Is(invalid, errNoOperation), errors.Is(invalid, errNotServed):
		s.t.Errorf("githubtest: %s %s: %v", r.Method, r.URL.RequestURI(), invalid)
		s.writeError(w, http.StatusNotFound, "Not Found")
		return
	case invalid != nil:
		s.t.Errorf("githubtest: %s %s (%s): invalid request: %v", r.Method, r.URL.RequestURI(), rec.OperationID, invalid)
		s.writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}

	if err := s.waitHolds(r); err != nil {
		return // the client gave up
	}
	if f := s.takeFault(r); f != nil {
		if f.loss != nil {
			s.serveLost(w, r, *f.loss)
			return
		}
		maps.Copy(w.Header(), f.header)
		s.writeJSON(w, f.status, faultBody(f))
		return
	}
	if !s.checkResponses || route == nil {
		s.mux.ServeHTTP(w, r)
		return
	}
	s.serveChecked(w, r, route)
}

// withoutNullBody drops a body that is the JSON literal null, which GitHub
// takes as no body: ghinstallation sends one when it asks for a token.
func withoutNullBody(r *http.Request, body []byte) *http.Request {
	if string(bytes.TrimSpace(body)) != "null" {
		return r
	}
	r2 := r.Clone(r.Context())
	r2.Body, r2.ContentLength = http.NoBody, 0
	r2.Header.Del("Content-Type")
	return r2
}

// serveChecked answers r and reports an answer that GitHub's description
// does not allow: it means the fake itself is wrong.
func (s *Server) serveChecked(w http.ResponseWriter, r *http.Request, route *routers.Route) {
	rr := httptest.NewRecorder()
	s.mux.ServeHTTP(rr, r)
	_, params, _ := s.spec.served.FindRoute(routable(r))
	// GitHub answers errors the description does not list (401, some 422s);
	// those are checked only when listed.
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true, IncludeResponseStatus: rr.Code < 400}
	err := openapi3filter.ValidateResponse(r.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts},
		Status:                 rr.Code,
		Header:                 rr.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rr.Body.Bytes())),
		Options:                opts,
	})
	if err != nil {
		s.t.Errorf("githubtest: answer to %s %s does not match GitHub's description: %v", r.Method, r.URL.RequestURI(), err)
	}
	maps.Copy(w.Header(), rr.Header())
	w.WriteHeader(rr.Code)
	w.Write(rr.Body.Bytes())
}

// authenticate checks the Authorization header the way the route needs and
// puts the installation ID of a token in the context.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, kind authKind) (context.Context, bool) {
	if kind == authNone {
		return r.Context(), true
	}
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	scheme = strings.ToLower(scheme)
	if kind == authApp {
		// Any JWT will do: the fake trusts the client to sign with its key.
		if scheme == "bearer" && strings.Count(cred, ".") == 2 {
			return r.Context(), true
		}
		s.writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return nil, false
	}
	s.mu.Lock()
	inst, ok := s.tokens[cred]
	retryAfter, over, exhausted := 0, false, false
	if ok {
		if exhausted = s.countRequest(w, inst); !exhausted {
			retryAfter, over = s.overSecondary(inst, r.Method)
		}
	}
	s.mu.Unlock()
	if !ok || (scheme != "token" && scheme != "bearer") {
		s.writeError(w, http.StatusUnauthorized, "Bad credentials")
		return nil, false
	}
	if exhausted {
		s.writeJSON(w, http.StatusForbidden, faultBody(&fault{status: http.StatusForbidden, header: w.Header()}))
		return nil, false
	}
	if over {
		s.refuseSecondary(w, retryAfter)
		return nil, false
	}
	return context.WithValue(r.Context(), installationKey{}, inst), true
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count returns how many requests had GitHub's operationId, e.g.
// "checks/create" or "repos/create-deployment-status".
func (s *Server) Count(operationID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.OperationID == operationID {
			n++
		}
	}
	return n
}

type fault struct {
	method, prefix string
	left           int
	status         int
	header         http.Header
	loss           *Loss // performed, then its answer lost (LoseAnswers)
}

// FailNext makes the next n requests whose method is method (any when empty)
// and whose path starts with pathPrefix answer status with GitHub's error
// JSON and the given headers, for example 502; 403 with X-RateLimit-Remaining
// "0" and X-RateLimit-Reset; or 429 with Retry-After. They are still recorded.
func (s *Server) FailNext(method, pathPrefix string, n int, status int, header http.Header) {
	h := http.Header{}
	for k, v := range header {
		h[http.CanonicalHeaderKey(k)] = slices.Clone(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: pathPrefix, left: n, status: status, header: h})
}

func (s *Server) takeFault(r *http.Request) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if matches(f.method, f.prefix, r) {
			f.left--
			if f.left <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			return f
		}
	}
	return nil
}

// faultBody is GitHub's error for a fault: rate limits carry the
// documentation links go-github tells them apart by.
func faultBody(f *fault) obj {
	const limits = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
	msg, doc := http.StatusText(f.status), "https://docs.github.com/rest"
	switch {
	case f.header.Get("X-RateLimit-Remaining") == "0":
		msg, doc = "API rate limit exceeded for installation ID 1.", limits+"#about-rate-limits"
	case f.header.Get("Retry-After") != "":
		msg, doc = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", limits+"#about-secondary-rate-limits"
	case f.status >= 500:
		msg = "Server Error"
	}
	return obj{"message": msg, "documentation_url": doc, "status": strconv.Itoa(f.status)}
}

func matches(method, prefix string, r *http.Request) bool {
	return (method == "" || method == r.Method) && strings.HasPrefix(r.URL.Path, prefix)
}

type hold struct {
	method, prefix string
	done           chan struct{}
	release        func()
}

// Hold blocks every request whose method is method (any when empty) and whose
// path starts with pathPrefix until release is called, or the client gives
// up. Held requests are recorded on arrival. Holds are released when the test
// ends.
func (s *Server) Hold(method, pathPrefix string) (release func()) {
	h := &hold{method: method, prefix: pathPrefix, done: make(chan struct{})}
	h.release = sync.OnceFunc(func() {
		close(h.done)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.holds = slices.DeleteFunc(s.holds, func(o *hold) bool { return o == h })
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds = append(s.holds, h)
	return h.release
}

func (s *Server) waitHolds(r *http.Request) error {
	s.mu.Lock()
	var waits []chan struct{}
	for _, h := range s.holds {
		if matches(h.method, h.prefix, r) {
			waits = append(waits, h.done)
		}
	}
	s.mu.Unlock()
	for _, done := range waits {
		select {
		case <-done:
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
	return nil
}

func (s *Server) newID() int64 { return s.ids.Add(1) }

// writeJSON answers v as GitHub does, with its usual headers.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Request-Id", strconv.FormatInt(s.newID(), 16))
	for k, v := range map[string]string{
		"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Used": "1",
		"X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10), "X-RateLimit-Resource": "core",
	} {
		if h.Get(k) == "" {
			h.Set(k, v)
		}
	}
	w.WriteHeader(status)
	if status == http.StatusNoContent {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, status int, message string) {
	body := map[string]any{"message": message, "documentation_url": "https://docs.github.com/rest", "status": strconv.Itoa(status)}
	if status == http.StatusUnprocessableEntity && message == "Validation Failed" {
		body["errors"] = []any{}
	}
	s.writeJSON(w, status, body)
}

// repoWithBody is repo for a request with a JSON body, which it reads into
// in; on a body that is not JSON it answers 400 as GitHub does.
func (s *Server) repoWithBody(w http.ResponseWriter, req *http.Request, in any) (*Repo, bool) {
	r, ok := s.repo(w, req)
	if !ok {
		return nil, false
	}
	if err := json.NewDecoder(req.Body).Decode(in); err != nil && !errors.Is(err, io.EOF) {
		s.writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return nil, false
	}
	return r, true
}

// validationFailed answers 422 as GitHub does for a field it refuses:
// e names the resource, field, code and message; doc is the operation's
// documentation.
func (s *Server) validationFailed(w http.ResponseWriter, doc string, e obj) {
	s.writeJSON(w, http.StatusUnprocessableEntity, obj{
		"message": "Validation Failed", "documentation_url": doc, "errors": []obj{e},
	})
}

// pathID reads an integer path parameter.
func pathID(r *http.Request, name string) int64 {
	id, _ := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id
}

// randomToken returns a GitHub-looking token with the given prefix.
func randomToken(prefix string) string {
	return prefix + strings.ToLower(rand.Text()) + strings.ToLower(rand.Text())[:10]
}
