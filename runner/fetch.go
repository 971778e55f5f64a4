package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-github/v62/github"

	"github.com/railyard/railyard/transient"
)

// Fetch downloads the gzip tarball of owner/repo at sha: it asks GitHub for
// the archive link (without following the redirect GitHub answers with) and
// GETs that link with httpClient (http.DefaultClient when nil). The caller
// closes the body.
//
// The link may carry a short-lived token, so errors never quote it.
func Fetch(ctx context.Context, client *github.Client, httpClient *http.Client, owner, repo, sha string) (io.ReadCloser, error) {
	link, resp, err := client.Repositories.GetArchiveLink(ctx, owner, repo, github.Tarball,
		&github.RepositoryContentGetOptions{Ref: sha}, 0)
	if err != nil {
		// go-github answers anything but the redirect with a bare error;
		// the status tells a missing revision from GitHub failing.
		if resp != nil && resp.Response != nil {
			err = transient.NewStatusError(resp.Response)
		}
		return nil, fmt.Errorf("get archive link of %s/%s@%s: %w", owner, repo, sha, err)
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("download archive of %s/%s@%s: bad archive link", owner, repo, sha)
	}
	body, err := httpClient.Do(req)
	if err != nil {
		// *url.Error quotes the link; keep only what went wrong.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("download archive of %s/%s@%s: %w", owner, repo, sha, err)
	}
	if body.StatusCode != http.StatusOK {
		body.Body.Close()
		return nil, fmt.Errorf("download archive of %s/%s@%s: %w", owner, repo, sha, transient.NewStatusError(body))
	}
	return body.Body, nil
}
