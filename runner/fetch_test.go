package runner_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"

	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/transient"
)

// fakeGitHub answers the tarball endpoint with a 302 to a download link
// carrying a token, as api.github.com does, and serves archive there with
// downloadStatus; 0 sends the download to an address nobody answers.
func fakeGitHub(t *testing.T, archive []byte, downloadStatus int) *github.Client {
	t.Helper()
	const token = "LINK-TOKEN-123"
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /repos/octo/app/tarball/{ref}", func(w http.ResponseWriter, r *http.Request) {
		host := srv.URL
		if downloadStatus == 0 {
			host = "http://127.0.0.1:1" // nothing listens
		}
		http.Redirect(w, r, host+"/codeload/octo/app/legacy.tar.gz/"+r.PathValue("ref")+"?token="+token, http.StatusFound)
	})
	mux.HandleFunc("GET /codeload/octo/app/legacy.tar.gz/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") != token || r.PathValue("ref") != sha(1) {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(downloadStatus)
		_, _ = w.Write(archive)
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := github.NewClient(nil)
	client.BaseURL, _ = url.Parse(srv.URL + "/")
	return client
}

func TestFetch(t *testing.T) {
	archive := repoTarball(t, "v1")
	tests := []struct {
		name           string
		repo, sha      string
		downloadStatus int
		wantErr        bool
		transient      bool // the error can pass: the job is tried again
	}{
		{name: "follows the redirect", repo: "app", sha: sha(1), downloadStatus: http.StatusOK},
		{name: "unknown repository", repo: "nope", sha: sha(1), downloadStatus: http.StatusOK, wantErr: true},
		{name: "unknown revision", repo: "app", sha: sha(2), downloadStatus: http.StatusOK, wantErr: true},
		{name: "download fails", repo: "app", sha: sha(1), downloadStatus: http.StatusServiceUnavailable, wantErr: true, transient: true},
		{name: "download unreachable", repo: "app", sha: sha(1), wantErr: true, transient: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fakeGitHub(t, archive, tt.downloadStatus)
			body, err := runner.Fetch(t.Context(), client, nil, "octo", tt.repo, tt.sha)
			if tt.wantErr {
				if err == nil {
					body.Close()
					t.Fatal("Fetch succeeded")
				}
				if strings.Contains(err.Error(), "LINK-TOKEN") {
					t.Errorf("error quotes the link's token: %v", err)
				}
				if transient.Is(err) != tt.transient {
					t.Errorf("transient.Is(%v) = %v, want %v", err, !tt.transient, tt.transient)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer body.Close()
			got, err := io.ReadAll(body)
			if err != nil || !bytes.Equal(got, archive) {
				t.Errorf("body = %d bytes, %v; want the %d-byte archive", len(got), err, len(archive))
			}
		})
	}
}

func TestFetchThenUnpack(t *testing.T) {
	client := fakeGitHub(t, repoTarball(t, "v1"), http.StatusOK)
	w := runner.NewWorkspace(t.TempDir())
	dir, release, err := w.Prepare(t.Context(), repo, sha(1), false, func(ctx context.Context) (io.ReadCloser, error) {
		return runner.Fetch(ctx, client, nil, "octo", "app", sha(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	res := runner.Run(t.Context(), runner.Command{Script: "./deploy.sh; cat README.md", Dir: dir, Env: runner.Env(dir, nil, nil)})
	if !res.OK() || res.Output != "deployed\nv1" {
		t.Errorf("Run = %+v", res)
	}
}
