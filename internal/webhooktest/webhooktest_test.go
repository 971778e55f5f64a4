package webhooktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"
)

// recorder is a testing.TB that keeps Fatalf instead of stopping the test.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(r)
}

// capture runs f and returns the Fatalf message it raised, if any.
func capture(t *testing.T, f func(tb testing.TB)) (msg string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		msg = r.fatal
	}()
	f(r)
	return ""
}

func TestPayloadUnchangedWithoutEdits(t *testing.T) {
	for _, name := range []string{"push/with-installation.payload.json", "issue_comment/created.on-pull-request.payload.json", "ping/payload.json"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", name))
			if err != nil {
				t.Fatal(err)
			}
			if got := Payload(t, name); !bytes.Equal(got, want) {
				t.Errorf("Payload(%q) differs from the file", name)
			}
		})
	}
}

func TestPayloadEdits(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		edits []Edit
		check func(t *testing.T, doc map[string]any)
	}{
		{
			name:  "top-level string",
			file:  "push/with-installation.payload.json",
			edits: []Edit{Set("ref", "refs/heads/main")},
			check: func(t *testing.T, doc map[string]any) { want(t, doc, "ref", "refs/heads/main") },
		},
		{
			name:  "nested string and number",
			file:  "issue_comment/created.with-installation.payload.json",
			edits: []Edit{Set("comment.body", "/rollback stage=prod to=abc1234 reason=\"bad <migration>\""), Set("installation.id", 42)},
			check: func(t *testing.T, doc map[string]any) {
				want(t, doc, "comment.body", "/rollback stage=prod to=abc1234 reason=\"bad <migration>\"")
				want(t, doc, "installation.id", json.Number("42"))
			},
		},
		{
			name: "new object key",
			file: "issue_comment/created.with-installation.payload.json",
			edits: []Edit{Set("issue.pull_request", map[string]any{
				"url": "https://api.github.com/repos/o/r/pulls/1", "merged_at": nil,
			})},
			check: func(t *testing.T, doc map[string]any) {
				want(t, doc, "issue.pull_request.url", "https://api.github.com/repos/o/r/pulls/1")
				want(t, doc, "issue.pull_request.merged_at", nil)
			},
		},
		{
			name:  "array element",
			file:  "push/with-new-branch.payload.json",
			edits: []Edit{Set("commits.0.message", "deploy it")},
			check: func(t *testing.T, doc map[string]any) { want(t, doc, "commits.0.message", "deploy it") },
		},
		{
			name:  "repository moves together",
			file:  "push/with-installation.payload.json",
			edits: []Edit{SetRepo("octo/app")},
			check: func(t *testing.T, doc map[string]any) {
				want(t, doc, "repository.full_name", "octo/app")
				want(t, doc, "repository.name", "app")
				want(t, doc, "repository.owner.login", "octo")
				want(t, doc, "repository.owner.name", "octo")
				want(t, doc, "repository.html_url", "https://github.com/octo/app")
				want(t, doc, "repository.url", "https://github.com/octo/app")
				want(t, doc, "repository.owner.html_url", "https://github.com/octo")
				want(t, doc, "repository.id", json.Number("186853002"))
			},
		},
		{
			name:  "later edits win",
			file:  "push/with-installation.payload.json",
			edits: []Edit{SetRepo("octo/app"), Set("repository.name", "other")},
			check: func(t *testing.T, doc map[string]any) { want(t, doc, "repository.name", "other") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := Payload(t, tt.file, tt.edits...)
			var doc map[string]any
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("edited payload is not JSON: %v", err)
			}
			tt.check(t, doc)
		})
	}
}

func TestPayloadRefusesBadEdits(t *testing.T) {
	tests := []struct {
		name, file string
		edit       Edit
		wantErr    string
	}{
		{"missing parent", "push/payload.json", Set("nope.body", "x"), "nope is missing"},
		{"index out of range", "push/with-new-branch.payload.json", Set("commits.5.id", "x"), "not an index"},
		{"into a string", "push/payload.json", Set("ref.x", "y"), "not an object or array"},
		{"repo without owner", "push/payload.json", SetRepo("app"), "want owner/name"},
		{"missing file", "push/nope.json", Set("ref", "x"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := capture(t, func(tb testing.TB) { Payload(tb, tt.file, tt.edit) })
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("Fatalf message = %q, want it to mention %q", msg, tt.wantErr)
			}
		})
	}
}

func TestRequestValidatesLikeGitHub(t *testing.T) {
	body := Payload(t, "issue_comment/created.on-pull-request.payload.json", Set("comment.body", "/status"))
	tests := []struct {
		name, signWith, checkWith string
		wantValid                 bool
	}{
		{"same secret", "s3cret", "s3cret", true},
		{"other secret", "s3cret", "guess", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request(t, tt.signWith, "issue_comment", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body)
			got, err := github.ValidatePayload(req, []byte(tt.checkWith))
			if (err == nil) != tt.wantValid {
				t.Fatalf("ValidatePayload error = %v, want valid=%v", err, tt.wantValid)
			}
			if !tt.wantValid {
				return
			}
			if req.Method != "POST" || req.URL.Path != HookPath {
				t.Errorf("request = %s %s, want POST %s", req.Method, req.URL.Path, HookPath)
			}
			if !strings.HasPrefix(req.Header.Get("User-Agent"), "GitHub-Hookshot/") {
				t.Errorf("User-Agent = %q", req.Header.Get("User-Agent"))
			}
			if d := github.DeliveryID(req); d != "72d3162e-cc78-11e3-81ab-4c9367dc0958" {
				t.Errorf("DeliveryID = %q", d)
			}
			event, err := github.ParseWebHook(github.WebHookType(req), got)
			if err != nil {
				t.Fatalf("ParseWebHook: %v", err)
			}
			ic, ok := event.(*github.IssueCommentEvent)
			if !ok {
				t.Fatalf("event is %T, want *github.IssueCommentEvent", event)
			}
			if !ic.GetIssue().IsPullRequest() || ic.GetComment().GetBody() != "/status" || ic.GetInstallation().GetID() != 1 {
				t.Errorf("decoded event: pull request %v, body %q, installation %d", ic.GetIssue().IsPullRequest(), ic.GetComment().GetBody(), ic.GetInstallation().GetID())
			}
		})
	}
}

func TestSignMatchesGitHub(t *testing.T) {
	body := Payload(t, "ping/payload.json")
	tests := []struct {
		secret string
		body   []byte
	}{
		{"s3cret", body},
		{"", body},
		{"s3cret", nil},
	}
	for _, tt := range tests {
		sig := Sign([]byte(tt.secret), tt.body)
		if err := github.ValidateSignature(sig, tt.body, []byte(tt.secret)); err != nil {
			t.Errorf("Sign(%q, %d bytes) = %q: %v", tt.secret, len(tt.body), sig, err)
		}
		if err := github.ValidateSignature(sig, append(tt.body, ' '), []byte(tt.secret)); err == nil {
			t.Errorf("Sign(%q) also validates a changed body", tt.secret)
		}
	}
}

func TestOnPullRequestPayloadOnlyAddsPullRequest(t *testing.T) {
	var base, pr map[string]any
	if err := json.Unmarshal(Payload(t, "issue_comment/created.with-installation.payload.json"), &base); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(Payload(t, "issue_comment/created.on-pull-request.payload.json"), &pr); err != nil {
		t.Fatal(err)
	}
	added := pr["issue"].(map[string]any)["pull_request"]
	delete(pr["issue"].(map[string]any), "pull_request")
	if a, b := mustJSON(t, base), mustJSON(t, pr); a != b {
		t.Errorf("on-pull-request payload differs from with-installation beyond issue.pull_request")
	}
	keys := []string{}
	for k := range added.(map[string]any) {
		keys = append(keys, k)
	}
	if len(keys) != 5 {
		t.Errorf("issue.pull_request has keys %v, want url, html_url, diff_url, patch_url, merged_at", keys)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// want checks the value at a dotted path of a decoded payload.
func want(t *testing.T, doc map[string]any, path string, value any) {
	t.Helper()
	var cur any = doc
	for _, key := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[key]
		case []any:
			var i int
			fmt.Sscan(key, &i)
			cur = c[i]
		}
	}
	if cur != value {
		t.Errorf("%s = %#v, want %#v", path, cur, value)
	}
}
