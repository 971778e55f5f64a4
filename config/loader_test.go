package config

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v62/github"
)

// contentsServer answers GET /repos/{owner}/{repo}/contents/.github/railyard.yml?ref=SHA
// like GitHub (operation repos/get-content) and counts requests per ref.
type contentsServer struct {
	files map[string]string // by ref: "404", "500", "dir", "large" or the file's text

	mu       sync.Mutex
	requests map[string]int
}

func newContentsServer(t *testing.T, files map[string]string) (*contentsServer, *github.Client) {
	s := &contentsServer{files: files, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}/contents/.github/railyard.yml", s.serve)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := github.NewClient(srv.Client())
	base, err := url.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	client.BaseURL = base
	return s, client
}

func (s *contentsServer) count(ref string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[ref]
}

func (s *contentsServer) serve(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	s.mu.Lock()
	s.requests[ref]++
	s.mu.Unlock()

	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	api := "https://api.github.com/repos/" + repo
	item := func(typ, name, path string) map[string]any {
		return map[string]any{
			"type": typ, "size": 0, "name": name, "path": path,
			"sha":          "3d21ec53a331a6f037a91c368710b99387d012c1",
			"url":          api + "/contents/" + path + "?ref=" + ref,
			"git_url":      api + "/git/blobs/3d21ec53a331a6f037a91c368710b99387d012c1",
			"html_url":     "https://github.com/" + repo + "/blob/" + ref + "/" + path,
			"download_url": "https://raw.githubusercontent.com/" + repo + "/" + ref + "/" + path,
			"_links": map[string]string{
				"self": api + "/contents/" + path + "?ref=" + ref,
				"git":  api + "/git/blobs/3d21ec53a331a6f037a91c368710b99387d012c1",
				"html": "https://github.com/" + repo + "/blob/" + ref + "/" + path,
			},
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	var body any
	switch text, ok := s.files[ref]; {
	case !ok || text == "404":
		w.WriteHeader(http.StatusNotFound)
		body = map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content", "status": "404"}
	case text == "500":
		w.WriteHeader(http.StatusInternalServerError)
		body = map[string]string{"message": "Server Error", "status": "500"}
	case text == "dir":
		body = []any{item("file", "deploy.yml", ".github/railyard.yml/deploy.yml")}
	case text == "large":
		f := item("file", "railyard.yml", ".github/railyard.yml")
		f["size"], f["encoding"], f["content"] = 2<<20, "none", ""
		body = f
	default:
		f := item("file", "railyard.yml", ".github/railyard.yml")
		f["size"], f["encoding"], f["content"] = len(text), "base64", wrapBase64(text)
		body = f
	}
	json.NewEncoder(w).Encode(body)
}

// wrapBase64 encodes like GitHub: base64 in lines of 60 characters.
func wrapBase64(text string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(text))
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60] + "\n")
		enc = enc[60:]
	}
	b.WriteString(enc + "\n")
	return b.String()
}

func TestLoaderLoad(t *testing.T) {
	spec, err := os.ReadFile("testdata/pipeline.yml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"good":    string(spec),
		"broken":  "stages: []\n",
		"missing": "404",
		"failing": "500",
		"dir":     "dir",
		"large":   "large",
	}
	tests := []struct {
		sha          string
		wantErr      error // ErrNoPipeline, errAny or nil
		wantProblems []Problem
		wantRequests int // after two loads
	}{
		{sha: "good", wantRequests: 1},
		{sha: "broken", wantProblems: []Problem{{1, "no stages: the stages list is empty"}}, wantRequests: 1},
		{sha: "missing", wantErr: ErrNoPipeline, wantRequests: 1},
		{sha: "failing", wantErr: errAny, wantRequests: 2}, // not cached: the next push retries
		{sha: "dir", wantProblems: []Problem{{1, ".github/railyard.yml is a directory, not a file"}}, wantRequests: 1},
		{sha: "large", wantProblems: []Problem{{1, ".github/railyard.yml is larger than 1 MB"}}, wantRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.sha, func(t *testing.T) {
			srv, client := newContentsServer(t, files)
			l := NewLoader(8)
			for range 2 {
				got, err := l.Load(t.Context(), client, "octo", "app", tt.sha)
				switch {
				case tt.wantErr == errAny && err == nil,
					tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
					t.Fatalf("Load error = %v, want %v", err, tt.wantErr)
				case tt.wantErr != nil:
					continue
				}
				if got.SHA != tt.sha {
					t.Errorf("SHA = %q, want %q", got.SHA, tt.sha)
				}
				if fmt.Sprint(got.Problems) != fmt.Sprint(tt.wantProblems) {
					t.Errorf("Problems = %v, want %v", got.Problems, tt.wantProblems)
				}
				if (got.Pipeline != nil) != (tt.wantProblems == nil) {
					t.Errorf("Pipeline = %v with problems %v", got.Pipeline, got.Problems)
				}
				if got.Pipeline != nil && got.Pipeline.Stages[2].Name != "prod" {
					t.Errorf("Pipeline = %+v, want the reference's example", got.Pipeline)
				}
			}
			if n := srv.count(tt.sha); n != tt.wantRequests {
				t.Errorf("%d requests for two loads, want %d", n, tt.wantRequests)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestLoaderCache(t *testing.T) {
	spec, err := os.ReadFile("testdata/pipeline.yml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"a": string(spec), "b": string(spec), "c": string(spec)}

	t.Run("keyed by repository and commit, case-insensitive names", func(t *testing.T) {
		srv, client := newContentsServer(t, files)
		l := NewLoader(8)
		load(t, l, client, "Octo", "App", "a")
		load(t, l, client, "octo", "app", "a")
		load(t, l, client, "octo", "other", "a")
		load(t, l, client, "octo", "app", "b")
		if got := srv.count("a"); got != 2 {
			t.Errorf("%d requests for commit a in two repositories, want 2", got)
		}
		if got := srv.count("b"); got != 1 {
			t.Errorf("%d requests for commit b, want 1", got)
		}
	})

	t.Run("least recently used is evicted", func(t *testing.T) {
		srv, client := newContentsServer(t, files)
		l := NewLoader(2)
		for _, sha := range []string{"a", "b", "a", "c", "a", "b"} {
			load(t, l, client, "octo", "app", sha)
		}
		// c evicted b, the least recently used; a stayed.
		want := map[string]int{"a": 1, "b": 2, "c": 1}
		for sha, n := range want {
			if got := srv.count(sha); got != n {
				t.Errorf("%d requests for %s, want %d", got, sha, n)
			}
		}
	})

	t.Run("concurrent loads", func(t *testing.T) {
		srv, client := newContentsServer(t, files)
		l := NewLoader(2)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				sha := string(rune('a' + i%3))
				got, err := l.Load(context.Background(), client, "octo", "app", sha)
				if err != nil || got.Pipeline == nil {
					t.Errorf("Load(%s) = %v, %v", sha, got, err)
				}
			})
		}
		wg.Wait()
		if got := srv.count("a") + srv.count("b") + srv.count("c"); got < 3 {
			t.Errorf("%d requests, want at least one per commit", got)
		}
	})

	t.Run("no sha", func(t *testing.T) {
		srv, client := newContentsServer(t, files)
		if _, err := NewLoader(0).Load(t.Context(), client, "octo", "app", ""); err == nil {
			t.Error("Load without a sha: no error")
		}
		if got := srv.count(""); got != 0 {
			t.Errorf("%d requests without a sha, want 0", got)
		}
	})
}

func load(t *testing.T, l *Loader, client *github.Client, owner, repo, sha string) {
	t.Helper()
	got, err := l.Load(t.Context(), client, owner, repo, sha)
	if err != nil || got.Pipeline == nil {
		t.Fatalf("Load(%s/%s@%s) = %+v, %v", owner, repo, sha, got, err)
	}
}
