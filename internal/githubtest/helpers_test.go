package githubtest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v62/github"
)

// newServer is New with the fake's own answers checked against GitHub's
// description too.
func newServer(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

// recordingTB keeps what the server reports instead of failing the test, so
// tests can assert on it.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) reported() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// statusOf returns the HTTP status of a go-github error, or 0.
func statusOf(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// messageOf returns GitHub's message of a go-github error.
func messageOf(err error) string {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return er.Message
	}
	return ""
}

// setup is a repository with two commits on main, a feature branch and a tag.
type setup struct {
	s      *Server
	repo   *Repo
	gh     *github.Client
	first  string // on main
	second string // main's head
	tagged string // = first, tagged v1
	branch string // feature/x head
}

func newSetup(t *testing.T) setup {
	s := newServer(t)
	r := s.AddRepo("octo/app", "main")
	first := r.Commit("main", map[string]File{
		".github/railyard.yml": {Content: "branch: main\n"},
		"deploy.sh":            {Content: "#!/bin/sh\necho deploy\n", Mode: 0o755},
		"old.txt":              {Content: "only in the first commit\n"},
	})
	second := r.Commit("main", map[string]File{
		".github/railyard.yml":         {Content: "branch: main\nstages: []\n"},
		".github/workflows/deploy.yml": {Content: "on: workflow_dispatch\n"},
		"deploy.sh":                    {Content: "#!/bin/sh\necho deploy v2\n", Mode: 0o755},
		"docs/guide/intro.md":          {Content: strings.Repeat("long line of text ", 20) + "\n"},
		"current":                      {Content: "deploy.sh", Mode: 0o120000},
	})
	r.Tag("v1", first)
	branch := r.Commit("feature/x", map[string]File{"README.md": {Content: "feature\n"}})
	return setup{s: s, repo: r, gh: s.InstallationClient(t, DefaultInstallationID), first: first, second: second, tagged: first, branch: branch}
}
