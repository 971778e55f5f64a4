package statuspage

import (
	"context"
	"strings"

	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/report"
)

// Source is what the pages read; *engine.Engine plus a check-run URL lookup
// satisfy it (see FromEngine).
type Source interface {
	Pipeline(ctx context.Context, repo string) (*engine.Pipeline, error)
	Audit(ctx context.Context, repo string, n int) ([]engine.AuditEntry, error)
	CheckRunURL(ctx context.Context, repo, key string) (string, error)
}

// Delays is an optional part of a Source: why an installation's writes to
// GitHub have been delayed long, shown on its repositories' pages.
type Delays interface {
	GitHubDelays(ctx context.Context, installationID int64) ([]report.Delay, error)
}

// CheckRunLinks looks up the GitHub page of a check run; *report.Reporter
// satisfies it.
type CheckRunLinks interface {
	CheckRunURL(ctx context.Context, repo report.Repo, key string) (string, error)
}

// FromEngine is the Source a server uses: state and audit log from the
// engine, check-run links from the reporter that created them, and the
// reporter's delays (Delays) when links is one.
func FromEngine(e *engine.Engine, links CheckRunLinks) Source {
	return engineSource{Engine: e, links: links}
}

type engineSource struct {
	*engine.Engine
	links CheckRunLinks
}

// CheckRunURL adapts the reporter's lookup, which wants the repository split
// in owner and name; the installation plays no part in it.
func (s engineSource) CheckRunURL(ctx context.Context, repo, key string) (string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	return s.links.CheckRunURL(ctx, report.Repo{Owner: owner, Name: name}, key)
}

// GitHubDelays reads the reporter's delays, if links is a reporter.
func (s engineSource) GitHubDelays(ctx context.Context, installationID int64) ([]report.Delay, error) {
	if d, ok := s.links.(interface {
		Delays(context.Context, int64) ([]report.Delay, error)
	}); ok {
		return d.Delays(ctx, installationID)
	}
	return nil, nil
}
