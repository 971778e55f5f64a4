package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// full is a description in GitHub's shape: path-level parameters, $refs
// between components, operations that are not kept.
const full = `{
  "openapi": "3.0.3",
  "info": {"title": "t", "version": "1"},
  "servers": [{"url": "https://api.github.com"}],
  "paths": {
    "/repos/{owner}/{repo}": {
      "parameters": [{"$ref": "#/components/parameters/owner"}],
      "get": {"responses": {"200": {"$ref": "#/components/responses/repo"}}},
      "delete": {"responses": {"204": {"description": "gone"}}}
    },
    "/emojis": {"get": {"responses": {"200": {"$ref": "#/components/responses/unused"}}}}
  },
  "components": {
    "parameters": {"owner": {"name": "owner", "in": "path", "required": true, "schema": {"type": "string"}}},
    "responses": {
      "repo": {"description": "a <repository> & more", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/repo"}}}},
      "unused": {"description": "not kept"}
    },
    "schemas": {
      "repo": {"type": "object", "properties": {"owner": {"$ref": "#/components/schemas/user"}}},
      "user": {"type": "object"},
      "unused": {"type": "string"}
    }
  }
}`

func TestReduce(t *testing.T) {
	out, err := reduce([]byte(full), []string{"GET /repos/{owner}/{repo}"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "\n ") {
		t.Errorf("output is indented:\n%s", out)
	}
	if !strings.Contains(string(out), "a <repository> & more") {
		t.Errorf("output escapes text that needs no escaping:\n%s", out)
	}
	var got struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
		All        map[string][]string                   `json:"x-all-operations"`
		Servers    []map[string]string                   `json:"servers"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	keys := func(m map[string]json.RawMessage) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		return ks
	}
	if len(got.Paths) != 1 || len(got.Paths["/repos/{owner}/{repo}"]) != 2 {
		t.Errorf("paths = %v, want only /repos/{owner}/{repo} with get and its parameters", got.Paths)
	}
	wantComponents := map[string][]string{"parameters": {"owner"}, "responses": {"repo"}, "schemas": {"repo", "user"}}
	for kind, names := range wantComponents {
		ks := keys(got.Components[kind])
		if len(ks) != len(names) {
			t.Errorf("components/%s = %v, want %v", kind, ks, names)
		}
		for _, n := range names {
			if _, ok := got.Components[kind][n]; !ok {
				t.Errorf("components/%s has no %s", kind, n)
			}
		}
	}
	wantAll := map[string][]string{"/repos/{owner}/{repo}": {"get", "delete"}, "/emojis": {"get"}}
	if !reflect.DeepEqual(got.All, wantAll) {
		t.Errorf("x-all-operations = %v, want %v", got.All, wantAll)
	}
	if len(got.Servers) != 1 || got.Servers[0]["url"] != "https://api.github.com" {
		t.Errorf("servers = %v, want GitHub's", got.Servers)
	}

	again, err := reduce([]byte(full), []string{"GET /repos/{owner}/{repo}"})
	if err != nil || string(again) != string(out) {
		t.Errorf("a second run differs: %v", err)
	}
}

func TestReduceRefusesUnknownOperations(t *testing.T) {
	for _, op := range []string{"POST /repos/{owner}/{repo}", "GET /nope", "/repos/{owner}/{repo}", "FETCH /emojis"} {
		if _, err := reduce([]byte(full), []string{op}); err == nil {
			t.Errorf("reduce(%q) succeeded, want an error", op)
		}
	}
}
