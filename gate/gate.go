// Package gate decides whether a revision may be deployed where code is
// least trusted: by /patch (often a pull request's head), by /rollforward,
// and into a production stage. It holds every such rule; handlers ask it
// before they call the engine, and the engine asks it whether automatic
// promotion may enter a stage. It reads GitHub through a small interface
// and changes nothing.
package gate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/report"
)

// The commands a gate applies to.
const (
	Patch       = "patch"
	RollForward = "rollforward"
	Promote     = "promote"
)

// ownPrefix names Railyard's own check runs, which never count: they say
// where a revision is in the pipeline, not whether its code is sound, and
// a refused button leaves a neutral one.
const ownPrefix = "railyard/"

// Pull is the pull request a command was given on.
type Pull struct {
	Number   int
	Head     string // SHA of its head commit
	HeadRepo string // owner/name of the head's repository; "" when the fork is gone
}

// Check is a check run (the newest of its name) or a commit status.
type Check struct {
	Name   string
	Status string // a check run's queued, in_progress, completed; "completed" for a commit status
	Result string // a check run's conclusion, or a commit status's state
}

// Review is one review of a pull request, in the order GitHub lists them.
type Review struct {
	User     string
	State    string // APPROVED, CHANGES_REQUESTED, DISMISSED, COMMENTED, PENDING
	CommitID string // the head the review was given on
}

// GitHub is what a gate reads (package source).
type GitHub interface {
	// RequiredChecks lists the checks branch protection and rulesets
	// require on branch; none when it is not protected.
	RequiredChecks(ctx context.Context, repo report.Repo, branch string) ([]string, error)
	// Checks lists the check runs (newest of each name) and commit statuses of sha.
	Checks(ctx context.Context, repo report.Repo, sha string) ([]Check, error)
	// Contains reports whether sha is on branch.
	Contains(ctx context.Context, repo report.Repo, branch, sha string) (bool, error)
	// Reviews lists the reviews of a pull request.
	Reviews(ctx context.Context, repo report.Repo, pull int) ([]Review, error)
}

// Ask is a deploy that may be gated.
type Ask struct {
	Command string // Patch, RollForward or Promote
	Stage   string
	SHA     string
	File    *config.Pipeline // read from the default branch, never from a pull request
	Branch  string           // the pipeline branch
	// Pull is the pull request the command was given on, when its head is
	// SHA; nil otherwise.
	Pull *Pull
}

// Refusal says everything that keeps a deploy out; it is a reply to the
// person who asked.
type Refusal struct {
	Ask     Ask
	Missing []string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("cannot %s %s with %s: %s", r.Ask.Command, r.Ask.Stage, short(r.Ask.SHA), strings.Join(r.Missing, "; "))
}

// Requirements returns the requirements a deploy must meet; nil when it is
// not gated. /patch and /rollforward are gated on every stage with a require
// block (its own or the file's); /promote only into production stages.
func Requirements(file *config.Pipeline, command, stage string) *config.Require {
	r := file.Requirements(stage)
	if command == Promote {
		if s, ok := file.Stage(stage); !ok || !s.Production {
			return nil
		}
	}
	return r
}

// AwaitsPromote reports whether a revision must wait for /promote before it
// enters stage: automatic promotion into a gated production stage would
// have no one to tell what is missing.
func AwaitsPromote(file *config.Pipeline, stage string) bool {
	return Requirements(file, Promote, stage) != nil
}

// Gate checks deploys against the pipeline file and what GitHub shows.
type Gate struct {
	GitHub GitHub
}

// Check returns a *Refusal naming each unmet requirement, nil when the
// deploy may go ahead, or another error when GitHub could not be read.
func (g *Gate) Check(ctx context.Context, repo report.Repo, ask Ask) error {
	req := Requirements(ask.File, ask.Command, ask.Stage)
	var f facts
	if req != nil {
		var err error
		if f.required, err = g.GitHub.RequiredChecks(ctx, repo, ask.Branch); err != nil {
			return fmt.Errorf("read required checks of %s: %w", ask.Branch, err)
		}
		if f.checks, err = g.GitHub.Checks(ctx, repo, ask.SHA); err != nil {
			return fmt.Errorf("read checks of %s: %w", short(ask.SHA), err)
		}
		if req.Approvals > 0 {
			if f.onBranch, err = g.GitHub.Contains(ctx, repo, ask.Branch, ask.SHA); err != nil {
				return fmt.Errorf("compare %s with %s: %w", short(ask.SHA), ask.Branch, err)
			}
			if !f.onBranch && ask.Pull != nil {
				if f.reviews, err = g.GitHub.Reviews(ctx, repo, ask.Pull.Number); err != nil {
					return fmt.Errorf("read reviews of #%d: %w", ask.Pull.Number, err)
				}
			}
		}
	}
	if missing := decide(repo, ask, req, f); len(missing) > 0 {
		return &Refusal{Ask: ask, Missing: missing}
	}
	return nil
}

// facts are what GitHub showed for a deploy.
type facts struct {
	required []string // by the pipeline branch
	checks   []Check
	onBranch bool
	reviews  []Review
}

// decide lists what keeps a deploy out, in the order a person would fix it.
func decide(repo report.Repo, ask Ask, req *config.Require, f facts) []string {
	var missing []string
	if pr := ask.Pull; ask.Command == Patch && pr != nil && !strings.EqualFold(pr.HeadRepo, repo.FullName()) && !ask.File.Patch.AllowForks {
		from := "a fork"
		if pr.HeadRepo != "" {
			from = "the fork " + pr.HeadRepo
		}
		missing = append(missing, fmt.Sprintf("pull request #%d comes from %s, and %s does not allow patching forks (patch: { allow_forks: true })", pr.Number, from, config.PipelinePath))
	}
	if req == nil {
		return missing
	}
	// The branch's own, less Railyard's, and those the file names.
	names := slices.DeleteFunc(slices.Clone(f.required), func(n string) bool { return strings.HasPrefix(n, ownPrefix) })
	names = append(names, req.Checks...)
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		if why := unpassed(n, f.checks, ask.SHA); why != "" {
			missing = append(missing, why)
		}
	}
	if req.Approvals > 0 && !f.onBranch {
		missing = append(missing, approvals(ask, req.Approvals, f.reviews)...)
	}
	return missing
}

// unpassed says why check name has not passed on sha; "" when it has. A
// check run passes when it completed with success, neutral or skipped; a
// commit status when it is success. Either of the two with the name will do.
func unpassed(name string, checks []Check, sha string) string {
	if strings.HasPrefix(name, ownPrefix) {
		return fmt.Sprintf("check %s is Railyard's own, and Railyard's check runs never count", name)
	}
	var seen []Check
	for _, c := range checks {
		if c.Name != name {
			continue
		}
		if c.Status == "completed" && slices.Contains([]string{"success", "neutral", "skipped"}, c.Result) {
			return ""
		}
		seen = append(seen, c)
	}
	if len(seen) == 0 {
		return fmt.Sprintf("check %s has not run on %s", name, short(sha))
	}
	c := seen[0]
	if c.Status != "completed" {
		return fmt.Sprintf("check %s has not finished (%s)", name, strings.ReplaceAll(c.Status, "_", " "))
	}
	return fmt.Sprintf("check %s did not pass (%s)", name, strings.ReplaceAll(c.Result, "_", " "))
}

// approvals says what is missing of n approvals. They count on the pull
// request the command was given on, whose head must be the revision: the
// latest review of each reviewer that approves or asks for changes decides,
// and an approval of an earlier head does not count.
func approvals(ask Ask, n int, reviews []Review) []string {
	if ask.Pull == nil {
		return []string{fmt.Sprintf("%s is not on %s, so it needs %s on its pull request: give the command there", short(ask.SHA), ask.Branch, plural(n, "approval"))}
	}
	latest := map[string]Review{}
	for _, r := range reviews {
		if slices.Contains([]string{"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}, r.State) {
			latest[r.User] = r
		}
	}
	var approvers []string
	for user, r := range latest {
		if r.State == "APPROVED" && r.CommitID == ask.SHA {
			approvers = append(approvers, "@"+user)
		}
	}
	if len(approvers) >= n {
		return nil
	}
	slices.Sort(approvers)
	has := "none"
	if len(approvers) > 0 {
		has = strings.Join(approvers, ", ")
	}
	return []string{fmt.Sprintf("needs %s of %s on pull request #%d, has %s", plural(n, "approval"), short(ask.SHA), ask.Pull.Number, has)}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func short(sha string) string { return sha[:min(7, len(sha))] }
