package config

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v62/github"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/rs/zerolog"
)

// ErrNoPipeline means the repository has no pipeline file at the commit:
// Railyard ignores the repository.
var ErrNoPipeline = errors.New("no pipeline file")

// Loaded is a pipeline file read at a commit. Pipeline is nil when Problems
// is not empty.
type Loaded struct {
	Pipeline *Pipeline
	Problems []Problem
	SHA      string // the commit the file was read at
}

// DefaultCacheSize is the Loader's cache size when NewLoader is given 0.
const DefaultCacheSize = 1024

// Loader reads pipeline files from GitHub and caches them per repository
// and commit, which never change. It is safe for concurrent use.
//
// go-githubapp's appconfig is not used: it follows remote references and
// organisation-wide defaults (Railyard reads the repository's own file
// only) and cannot tell a directory from a missing file; what it would save
// is one GetContents call.
type Loader struct {
	cache *expirable.LRU[cacheKey, cached]
}

type cacheKey struct{ repo, sha string }

type cached struct {
	loaded Loaded
	err    error // nil or ErrNoPipeline
}

// NewLoader returns a Loader that keeps the size most recently used files
// (DefaultCacheSize when size is not positive).
func NewLoader(size int) *Loader {
	if size <= 0 {
		size = DefaultCacheSize
	}
	// No TTL: the file at a commit never changes.
	return &Loader{cache: expirable.NewLRU[cacheKey, cached](size, nil, 0)}
}

// Load reads .github/railyard.yml at commit sha (callers pass the head of
// the default branch) through the installation client and parses it. A
// missing file is ErrNoPipeline; a broken one is not an error, its problems
// are in Loaded.Problems. Both are cached; failures to reach GitHub are not.
func (l *Loader) Load(ctx context.Context, client *github.Client, owner, repo, sha string) (Loaded, error) {
	if sha == "" {
		return Loaded{}, errors.New("load pipeline file: no commit sha")
	}
	// GitHub names are case-insensitive.
	key := cacheKey{repo: strings.ToLower(owner + "/" + repo), sha: sha}
	if c, ok := l.cache.Get(key); ok {
		return c.loaded, c.err
	}
	loaded, err := fetch(ctx, client, owner, repo, sha)
	if err != nil && !errors.Is(err, ErrNoPipeline) {
		return Loaded{}, err
	}
	l.cache.Add(key, cached{loaded: loaded, err: err})
	zerolog.Ctx(ctx).Debug().Str("railyard_sha", sha).Int("problems", len(loaded.Problems)).
		Bool("missing", err != nil).Msg("Pipeline file loaded.")
	return loaded, err
}

func fetch(ctx context.Context, client *github.Client, owner, repo, sha string) (Loaded, error) {
	file, _, resp, err := client.Repositories.GetContents(ctx, owner, repo, PipelinePath,
		&github.RepositoryContentGetOptions{Ref: sha})
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return Loaded{SHA: sha}, ErrNoPipeline
	}
	if err != nil {
		return Loaded{}, fmt.Errorf("get %s at %s: %w", PipelinePath, sha, err)
	}
	// These are the user's mistakes, so they go on the config check run.
	switch {
	case file == nil:
		return fileProblem(sha, PipelinePath+" is a directory, not a file"), nil
	case file.GetType() != "file":
		return fileProblem(sha, fmt.Sprintf("%s is a %s, not a file", PipelinePath, file.GetType())), nil
	case file.GetEncoding() == "none":
		// GitHub sends no content for files over 1 MB.
		return fileProblem(sha, PipelinePath+" is larger than 1 MB"), nil
	}
	content, err := file.GetContent()
	if err != nil {
		return Loaded{}, fmt.Errorf("decode %s at %s: %w", PipelinePath, sha, err)
	}
	pl, problems := Parse([]byte(content))
	return Loaded{Pipeline: pl, Problems: problems, SHA: sha}, nil
}

func fileProblem(sha, msg string) Loaded {
	return Loaded{Problems: []Problem{{Line: 1, Message: msg}}, SHA: sha}
}
