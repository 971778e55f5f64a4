package githubtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// specPath is where GitHub's description lives, relative to a directory that
// holds the shared material (/work/shared beside the /work/main checkout).
var specPath = filepath.Join("shared", "github", "openapi", "api.github.com.json")

// spec is GitHub's REST description, reduced to the operations the fake
// serves, plus a router over every path of the full description so that a
// request for a real but unserved endpoint says so.
type spec struct {
	served routers.Router // operations the fake serves, with their schemas
	all    routers.Router // every GitHub operation, without schemas
}

// loadSpec reads the description once per test binary. Loading all 13 MB
// with kin-openapi takes ~2 s, and ~40 s under the race detector, so only the
// served operations and the components they reference are handed to it.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	file, err := findUp(specPath)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read OpenAPI description: %w", err)
	}
	var full struct {
		OpenAPI    string                                `json:"openapi"`
		Info       json.RawMessage                       `json:"info"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(raw, &full); err != nil {
		return nil, fmt.Errorf("decode OpenAPI description: %w", err)
	}

	served, err := servedDoc(full.OpenAPI, full.Info, full.Paths, full.Components)
	if err != nil {
		return nil, err
	}
	servedRouter, err := gorillamux.NewRouter(served)
	if err != nil {
		return nil, fmt.Errorf("route OpenAPI description: %w", err)
	}

	skeleton := &openapi3.T{OpenAPI: full.OpenAPI, Paths: openapi3.NewPaths()}
	for path, item := range full.Paths {
		pi := &openapi3.PathItem{}
		for method := range item {
			if m := strings.ToUpper(method); slices.Contains(httpMethods, m) {
				pi.SetOperation(m, &openapi3.Operation{})
			}
		}
		skeleton.Paths.Set(path, pi)
	}
	allRouter, err := gorillamux.NewRouter(skeleton)
	if err != nil {
		return nil, fmt.Errorf("route OpenAPI paths: %w", err)
	}
	return &spec{served: servedRouter, all: allRouter}, nil
})

var httpMethods = []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete,
	http.MethodOptions, http.MethodHead, http.MethodPatch, http.MethodTrace}

var componentRef = regexp.MustCompile(`"\$ref":\s*"#/components/([^/"]+)/([^/"]+)"`)

// servedDoc builds a description holding only the operations in routes and
// every component they reach through $ref.
func servedDoc(version string, info json.RawMessage, paths, components map[string]map[string]json.RawMessage) (*openapi3.T, error) {
	keptPaths := map[string]map[string]json.RawMessage{}
	var todo []json.RawMessage
	for _, rt := range routes {
		item, ok := paths[rt.path]
		op, ok2 := item[strings.ToLower(rt.method)]
		if !ok || !ok2 {
			return nil, fmt.Errorf("OpenAPI description has no %s %s", rt.method, rt.path)
		}
		if keptPaths[rt.path] == nil {
			keptPaths[rt.path] = map[string]json.RawMessage{}
			if params, ok := item["parameters"]; ok {
				keptPaths[rt.path]["parameters"] = params
				todo = append(todo, params)
			}
		}
		keptPaths[rt.path][strings.ToLower(rt.method)] = op
		todo = append(todo, op)
	}

	kept := map[string]map[string]json.RawMessage{}
	for len(todo) > 0 {
		next := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, m := range componentRef.FindAllSubmatch(next, -1) {
			kind, name := string(m[1]), string(m[2])
			if _, seen := kept[kind][name]; seen {
				continue
			}
			body, ok := components[kind][name]
			if !ok {
				return nil, fmt.Errorf("OpenAPI description has no component %s/%s", kind, name)
			}
			if kept[kind] == nil {
				kept[kind] = map[string]json.RawMessage{}
			}
			kept[kind][name] = body
			todo = append(todo, body)
		}
	}

	data, err := json.Marshal(map[string]any{
		"openapi": version,
		"info":    info,
		// Any host: each test's server listens on its own port.
		"servers":    []map[string]string{{"url": "/"}},
		"paths":      keptPaths,
		"components": kept,
	})
	if err != nil {
		return nil, fmt.Errorf("encode reduced OpenAPI description: %w", err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI description: %w", err)
	}
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

// findUp looks for rel in the working directory and each of its parents.
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", rel, err)
	}
	for {
		candidate := filepath.Join(dir, rel)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find %s: not in any parent directory", rel)
		}
		dir = parent
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
