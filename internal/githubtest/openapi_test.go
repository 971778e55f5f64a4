package githubtest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/railyard/railyard/internal/githubmetrics"
)

// TestDescriptionKeepsEveryOperation: an operation added to routes or
// schemaOnly without `go generate` is caught here, naming the command.
func TestDescriptionKeepsEveryOperation(t *testing.T) {
	var desc reduced
	if err := json.Unmarshal(description, &desc); err != nil {
		t.Fatal(err)
	}
	for _, op := range Operations() {
		method, path, _ := strings.Cut(op, " ")
		if _, ok := desc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("testdata/api.github.com.json has no %s: run go generate ./internal/githubtest", op)
		}
	}
	if n := len(desc.All); n < 800 {
		t.Errorf("x-all-operations has %d paths, want all of GitHub's (811)", n)
	}
}

// TestServedRoutes: the fake serves the routes the bot calls, which
// githubmetrics lists, and testOnly besides; a handler neither names is a
// bot route missing from githubmetrics' list (its requests would be
// labelled "other") or a test route missing from testOnly.
func TestServedRoutes(t *testing.T) {
	served := map[string]bool{}
	for _, rt := range routes {
		served[githubmetrics.Template(rt.pattern)] = true
	}
	for op := range handlers {
		if !served[op] {
			t.Errorf("a handler answers %s, but neither githubmetrics' route list nor testOnly names it", op)
		}
	}
	for _, p := range testOnly {
		if slices.Contains(githubmetrics.Patterns(), p) {
			t.Errorf("testOnly names %s, which githubmetrics lists as a route the bot calls", p)
		}
	}
}
