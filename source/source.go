// Package source reads what Railyard needs from GitHub through an App
// installation: the pipeline file, revision archives, refs and people's
// permissions. It writes nothing to GitHub (package report does).
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/runner"
)

// Clients makes installation clients; githubapp.ClientCreator is one.
type Clients interface {
	NewInstallationClient(installationID int64) (*github.Client, error)
}

// ErrUnknownRef is a ref that names no commit of the repository.
var ErrUnknownRef = errors.New("unknown revision")

// ErrBrokenPipeline is a pipeline file with problems.
var ErrBrokenPipeline = errors.New("broken pipeline file")

// GitHub reads from GitHub. It is safe for concurrent use.
type GitHub struct {
	clients Clients
	loader  *config.Loader
	http    *http.Client
	perms   *lru.Cache[string, permission] // nil: not cached
	permTTL time.Duration
}

// permission is a cached permission level and when it stops counting.
type permission struct {
	level   config.Level
	expires time.Time
}

// New returns a reader over clients. A person's permission is cached for
// permTTL (a change on GitHub takes effect up to that much later), for at
// most permSize people and repositories at once; permTTL <= 0 caches
// nothing.
func New(clients Clients, loader *config.Loader, permTTL time.Duration, permSize int) *GitHub {
	g := &GitHub{clients: clients, loader: loader, http: &http.Client{Timeout: 10 * time.Minute}, permTTL: permTTL}
	if permTTL > 0 {
		// A plain LRU, expired on reading: golang-lru's expirable LRU
		// starts a goroutine that nothing can stop, one per GitHub made.
		g.perms, _ = lru.New[string, permission](max(permSize, 1))
	}
	return g
}

func (g *GitHub) client(repo report.Repo) (*github.Client, error) {
	c, err := g.clients.NewInstallationClient(repo.InstallationID)
	if err != nil {
		return nil, fmt.Errorf("installation client: %w", err)
	}
	return c, nil
}

// Load reads the pipeline file at commit sha; config.ErrNoPipeline when
// there is none.
func (g *GitHub) Load(ctx context.Context, repo report.Repo, sha string) (config.Loaded, error) {
	c, err := g.client(repo)
	if err != nil {
		return config.Loaded{}, err
	}
	return g.loader.Load(ctx, c, repo.Owner, repo.Name, sha)
}

// Pipeline returns the valid pipeline file at commit sha.
func (g *GitHub) Pipeline(ctx context.Context, repo report.Repo, sha string) (*config.Pipeline, error) {
	l, err := g.Load(ctx, repo, sha)
	if err != nil {
		return nil, err
	}
	if len(l.Problems) > 0 {
		return nil, fmt.Errorf("%w: %d problems", ErrBrokenPipeline, len(l.Problems))
	}
	return l.Pipeline, nil
}

// Archive returns the gzip tarball of the revision.
func (g *GitHub) Archive(ctx context.Context, repo report.Repo, sha string) (io.ReadCloser, error) {
	c, err := g.client(repo)
	if err != nil {
		return nil, err
	}
	return runner.Fetch(ctx, c, g.http, repo.Owner, repo.Name, sha)
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Resolve turns a full or abbreviated SHA, a branch or a tag into the full
// SHA of one commit; ErrUnknownRef when it names none (or several).
func (g *GitHub) Resolve(ctx context.Context, repo report.Repo, ref string) (string, error) {
	c, err := g.client(repo)
	if err != nil {
		return "", err
	}
	commit, resp, err := c.Repositories.GetCommit(ctx, repo.Owner, repo.Name, ref, &github.ListOptions{PerPage: 1})
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnprocessableEntity) {
			return "", fmt.Errorf("%w: %s", ErrUnknownRef, ref)
		}
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	sha := commit.GetSHA()
	if !fullSHA.MatchString(sha) {
		return "", fmt.Errorf("resolve %s: GitHub answered no SHA", ref)
	}
	return sha, nil
}

// Permission returns user's permission on the repository, telling
// maintain from write and triage from read (GitHub's `permission` field
// folds them; the user's permissions map does not).
func (g *GitHub) Permission(ctx context.Context, repo report.Repo, user string) (config.Level, error) {
	key := strings.ToLower(repo.FullName() + "\x00" + user)
	if g.perms != nil {
		if p, ok := g.perms.Get(key); ok && time.Now().Before(p.expires) {
			return p.level, nil
		}
	}

	c, err := g.client(repo)
	if err != nil {
		return "", err
	}
	p, _, err := c.Repositories.GetPermissionLevel(ctx, repo.Owner, repo.Name, user)
	if err != nil {
		return "", fmt.Errorf("permission of %s: %w", user, err)
	}
	level := levelOf(p)
	if g.perms != nil {
		g.perms.Add(key, permission{level, time.Now().Add(g.permTTL)})
	}
	return level, nil
}

func levelOf(p *github.RepositoryPermissionLevel) config.Level {
	perms := p.GetUser().GetPermissions()
	for _, l := range []struct {
		key   string
		level config.Level
	}{{"admin", config.LevelAdmin}, {"maintain", config.LevelMaintain}, {"push", config.LevelWrite}, {"triage", config.LevelTriage}, {"pull", config.LevelRead}} {
		if perms[l.key] {
			return l.level
		}
	}
	switch p.GetPermission() {
	case "admin":
		return config.LevelAdmin
	case "write":
		return config.LevelWrite
	case "read":
		return config.LevelRead
	}
	return "" // "none": grants nothing
}
