// Package webhooktest builds GitHub webhook deliveries for tests: real
// payloads from testdata/webhooks, optionally edited, signed and wrapped in
// a request exactly as GitHub sends it.
//
// It is test-only and must not be imported by production code. It edits
// payloads but never invents them: every delivery starts from a real one.
package webhooktest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// HookPath is where Railyard takes webhooks.
const HookPath = "/api/github/hook"

// Edit changes one value of a payload; see Set and SetRepo.
type Edit struct {
	Path  string // dotted JSON path; array elements by index ("commits.0.id")
	Value any

	apply func(doc map[string]any) error // nil: set Path to Value
}

// Set sets the value at a dotted JSON path, e.g. Set("comment.body", "/help").
// The parent must exist; the last key is created if missing.
func Set(path string, value any) Edit { return Edit{Path: path, Value: value} }

// SetRepo moves the payload to repository fullName ("owner/name"):
// repository.full_name, .name, .owner.login, .owner.name (when present) and
// the repository's URLs all change together.
func SetRepo(fullName string) Edit {
	return Edit{Path: "repository.full_name", Value: fullName, apply: func(doc map[string]any) error {
		owner, name, ok := strings.Cut(fullName, "/")
		if !ok {
			return fmt.Errorf("SetRepo(%q): want owner/name", fullName)
		}
		repo, ok := doc["repository"].(map[string]any)
		if !ok {
			return fmt.Errorf("SetRepo: payload has no repository")
		}
		old, _ := repo["full_name"].(string)
		oldOwner, _, _ := strings.Cut(old, "/")
		replaceStrings(repo, old, fullName)
		repo["full_name"], repo["name"] = fullName, name
		if o, ok := repo["owner"].(map[string]any); ok {
			replaceStrings(o, "/"+oldOwner, "/"+owner)
			o["login"] = owner
			if _, ok := o["name"]; ok {
				o["name"] = owner
			}
		}
		return nil
	}}
}

// replaceStrings replaces old with new in every string inside v.
func replaceStrings(v any, old, new string) {
	if old == "" {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok {
				v[k] = strings.ReplaceAll(s, old, new)
			} else {
				replaceStrings(x, old, new)
			}
		}
	case []any:
		for i, x := range v {
			if s, ok := x.(string); ok {
				v[i] = strings.ReplaceAll(s, old, new)
			} else {
				replaceStrings(x, old, new)
			}
		}
	}
}

// Payload reads testdata/webhooks/<name> (name like
// "push/with-installation.payload.json") from the module root and applies
// edits in order. With no edits the file's bytes are returned unchanged.
func Payload(t testing.TB, name string, edits ...Edit) []byte {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "testdata", "webhooks", filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
	}
	if len(edits) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep IDs exactly as they are
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("webhooktest: decode %s: %v", name, err)
	}
	for _, e := range edits {
		apply := e.apply
		if apply == nil {
			apply = func(doc map[string]any) error { return set(doc, e.Path, e.Value) }
		}
		if err := apply(doc); err != nil {
			t.Fatalf("webhooktest: %s: %v", name, err)
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // GitHub sends <, > and & as they are
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		t.Fatalf("webhooktest: encode %s: %v", name, err)
	}
	return out.Bytes()
}

// set puts value (re-decoded as plain JSON, so structs and RawMessages work)
// at path in doc.
func set(doc map[string]any, path string, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("set %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("set %s: %w", path, err)
	}

	keys := strings.Split(path, ".")
	var cur any = doc
	for i, key := range keys {
		last := i == len(keys)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[key] = v
				return nil
			}
			next, ok := c[key]
			if !ok || next == nil {
				return fmt.Errorf("set %s: %s is missing", path, strings.Join(keys[:i+1], "."))
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(key)
			if err != nil || n < 0 || n >= len(c) {
				return fmt.Errorf("set %s: %s is not an index of an array of %d", path, key, len(c))
			}
			if last {
				c[n] = v
				return nil
			}
			cur = c[n]
		default:
			return fmt.Errorf("set %s: %s is not an object or array", path, strings.Join(keys[:i], "."))
		}
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value GitHub computes for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// signSHA1 is the legacy X-Hub-Signature GitHub still sends alongside.
func signSHA1(secret, body []byte) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

// Request builds the POST HookPath request GitHub would send for a delivery
// of event, for a handler's ServeHTTP. To send it to a running server
// instead, set its URL and clear RequestURI.
func Request(t testing.TB, secret, event, deliveryID string, body []byte) *http.Request {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, HookPath, bytes.NewReader(body))
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitHub-Hookshot/044aadd")
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", deliveryID)
	h.Set("X-GitHub-Hook-ID", "292430182")
	h.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	h.Set("X-GitHub-Hook-Installation-Target-ID", "1")
	h.Set("X-Hub-Signature", signSHA1([]byte(secret), body))
	h.Set("X-Hub-Signature-256", Sign([]byte(secret), body))
	return req
}

// moduleRoot is the nearest directory above the working directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
