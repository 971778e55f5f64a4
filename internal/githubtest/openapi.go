package githubtest

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/railyard/railyard/internal/githubmetrics"
)

//go:generate go run ./internal/gen-openapi -out testdata/api.github.com.json

// description is GitHub's REST description reduced to the operations of
// Operations, with the method and path of every other GitHub operation
// (testdata/README.md says where it comes from). It is embedded so that a
// test finds it from any working directory.
//
//go:embed testdata/api.github.com.json
var description []byte

// schemaOnly are operations whose schemas the description keeps although
// the fake does not serve them yet, so that serving one is a handler, a
// line in testOnly or githubmetrics' route list, and no new download.
var schemaOnly = []string{
	"GET /repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks",
}

// Operations lists, as "METHOD /path", every operation the embedded
// description keeps: those the fake serves (routes) and schemaOnly.
// gen-openapi reads it, so serving an endpoint is a handler, a line in
// githubmetrics' route list (or testOnly, or schemaOnly), and then
// `go generate ./internal/githubtest`.
func Operations() []string {
	var ops []string
	for _, rt := range routes {
		if op := githubmetrics.Template(rt.pattern); !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	for _, op := range schemaOnly {
		if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	return ops
}

// spec is the description as the fake uses it: a router over the operations
// it serves, with their schemas, and one over every GitHub operation, so
// that a request for a real but unserved endpoint says so.
type spec struct {
	served routers.Router // operations the fake serves, with their schemas
	all    routers.Router // every GitHub operation, without schemas
}

// reduced is the shape of the embedded description.
type reduced struct {
	OpenAPI    string                                `json:"openapi"`
	Info       json.RawMessage                       `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components json.RawMessage                       `json:"components"`
	All        map[string][]string                   `json:"x-all-operations"`
}

// loadSpec reads the description once per test binary. Only the served
// operations are handed to kin-openapi, which is slow under the race
// detector.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	var desc reduced
	if err := json.Unmarshal(description, &desc); err != nil {
		return nil, fmt.Errorf("decode OpenAPI description: %w", err)
	}
	served, err := servedDoc(desc)
	if err != nil {
		return nil, err
	}
	servedRouter, err := gorillamux.NewRouter(served)
	if err != nil {
		return nil, fmt.Errorf("route OpenAPI description: %w", err)
	}

	skeleton := &openapi3.T{OpenAPI: desc.OpenAPI, Paths: openapi3.NewPaths()}
	for path, methods := range desc.All {
		pi := &openapi3.PathItem{}
		for _, method := range methods {
			pi.SetOperation(strings.ToUpper(method), &openapi3.Operation{})
		}
		skeleton.Paths.Set(path, pi)
	}
	allRouter, err := gorillamux.NewRouter(skeleton)
	if err != nil {
		return nil, fmt.Errorf("route OpenAPI paths: %w", err)
	}
	return &spec{served: servedRouter, all: allRouter}, nil
})

// servedDoc is the description with only the operations in routes.
func servedDoc(desc reduced) (*openapi3.T, error) {
	paths := map[string]map[string]json.RawMessage{}
	for _, rt := range routes {
		method, path := rt.operation()
		op, ok := desc.Paths[path][method]
		if !ok {
			return nil, fmt.Errorf("testdata/api.github.com.json has no %s: run go generate ./internal/githubtest", rt.pattern)
		}
		if paths[path] == nil {
			paths[path] = map[string]json.RawMessage{}
			if params, ok := desc.Paths[path]["parameters"]; ok {
				paths[path]["parameters"] = params
			}
		}
		paths[path][method] = op
	}
	data, err := json.Marshal(map[string]any{
		"openapi":    desc.OpenAPI,
		"info":       desc.Info,
		"paths":      paths,
		"components": desc.Components,
	})
	if err != nil {
		return nil, fmt.Errorf("encode served OpenAPI description: %w", err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI description: %w", err)
	}
	// Any host: each test's server listens on its own port.
	doc.Servers = openapi3.Servers{{URL: "/"}}
	widenCreatedFilter(doc)
	return doc, nil
}

// widenCreatedFilter lets the workflow-run `created` filter take GitHub's
// search ranges (">=2026-01-02T00:00:00Z", "a..b"), which GitHub documents
// and accepts although the description types the parameter as a date-time.
func widenCreatedFilter(doc *openapi3.T) {
	if p := doc.Components.Parameters["created"]; p != nil && p.Value != nil && p.Value.Schema != nil {
		p.Value.Schema.Value.Format = ""
		p.Value.Schema.Value.Pattern = `^(>=|<=|>|<)?[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]+(Z|[+-][0-9:]+))?(\.\.(\*|[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]+(Z|[+-][0-9:]+))?))?$`
	}
}

// errNoOperation and errNotServed tell the two ways a request can miss.
var (
	errNoOperation = errors.New("GitHub's API has no such operation")
	errNotServed   = errors.New("GitHub has this operation but githubtest does not serve it")
)

// validate finds the operation for r and checks its parameters and body
// against the description. r.Body must be replayable (the caller buffers it).
func (sp *spec) validate(r *http.Request) (*routers.Route, error) {
	route, params, err := sp.served.FindRoute(routable(r))
	if err != nil {
		if _, _, err := sp.all.FindRoute(routable(r)); err == nil {
			return nil, errNotServed
		}
		return nil, errNoOperation
	}
	// SkipSettingDefaults: kin-openapi would otherwise write the described
	// defaults (sha=none, …) into the request the handlers then read.
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true}
	opts.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		return fmt.Sprintf("at %q: %s", "/"+strings.Join(err.JSONPointer(), "/"), err.Reason)
	})
	err = openapi3filter.ValidateRequest(r.Context(), &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options:    opts,
	})
	return route, err
}

// restParams are the path parameters GitHub lets span several segments
// (a file path, a branch name with a slash). The router matches one segment
// per parameter, so their slashes are escaped for routing.
var restParams = regexp.MustCompile(`^(/repos/[^/]+/[^/]+/(?:contents|commits|tarball)/)(.+)$`)

func routable(r *http.Request) *http.Request {
	m := restParams.FindStringSubmatch(r.URL.EscapedPath())
	if m == nil || !strings.Contains(m[2], "/") {
		return r
	}
	if strings.HasSuffix(m[1], "/commits/") && isCommitSubresource(m[2]) {
		return r
	}
	r2 := r.Clone(r.Context())
	u := *r.URL
	u.RawPath = m[1] + strings.ReplaceAll(m[2], "/", "%2F")
	u.Path, _ = url.PathUnescape(u.RawPath)
	r2.URL = &u
	r2.Body = r.Body
	return r2
}

// isCommitSubresource reports whether rest (after /commits/) names one of
// GitHub's per-commit endpoints rather than a ref containing a slash.
func isCommitSubresource(rest string) bool {
	_, sub, _ := strings.Cut(rest, "/")
	return slices.Contains([]string{"check-runs", "check-suites", "status", "statuses", "comments",
		"branches-where-head", "pulls"}, sub)
}
