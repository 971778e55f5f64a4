package githubtest

import (
	"encoding/json"
	"strings"
	"testing"
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
