package gate

import (
	"context"
	"errors"
	"testing"

	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/report"
)

// fakeGitHub answers with plain fields and counts the calls.
type fakeGitHub struct {
	required []string
	checks   []Check
	onBranch bool
	reviews  []Review
	err      error
	calls    []string
}

func (f *fakeGitHub) RequiredChecks(_ context.Context, _ report.Repo, branch string) ([]string, error) {
	f.calls = append(f.calls, "required "+branch)
	return f.required, f.err
}
func (f *fakeGitHub) Checks(_ context.Context, _ report.Repo, sha string) ([]Check, error) {
	f.calls = append(f.calls, "checks "+sha)
	return f.checks, nil
}
func (f *fakeGitHub) Contains(_ context.Context, _ report.Repo, branch, sha string) (bool, error) {
	f.calls = append(f.calls, "contains "+branch+" "+sha)
	return f.onBranch, nil
}
func (f *fakeGitHub) Reviews(_ context.Context, _ report.Repo, pull int) ([]Review, error) {
	f.calls = append(f.calls, "reviews")
	return f.reviews, nil
}

const sha = "abcdef0123456789abcdef0123456789abcdef01"

var repo = report.Repo{Owner: "acme", Name: "app"}

func file(t *testing.T, yaml string) *config.Pipeline {
	t.Helper()
	p, problems := config.Parse([]byte(yaml))
	if len(problems) > 0 {
		t.Fatalf("pipeline file: %v", problems)
	}
	return p
}

const stages = `
stages:
  - name: build
    steps: [{name: x, run: y}]
  - name: prod
    production: true
    steps: [{name: x, run: y}]
`

func TestCheck(t *testing.T) {
	ours := &Pull{Number: 7, Head: sha, HeadRepo: "acme/app"}
	fork := &Pull{Number: 8, Head: sha, HeadRepo: "mallory/app"}
	passed := []Check{{"ci/test", "completed", "success"}, {"lint", "completed", "neutral"}, {"docs", "completed", "skipped"}}
	tests := []struct {
		name    string
		file    string
		ask     Ask
		gh      fakeGitHub
		missing []string // nil: allowed
		calls   int      // GitHub calls made
	}{
		{name: "no require block: /patch of our own pull request", file: stages,
			ask: Ask{Command: Patch, Stage: "prod", Pull: ours}},
		{name: "fork refused without allow_forks", file: stages,
			ask:     Ask{Command: Patch, Stage: "build", Pull: fork},
			missing: []string{"pull request #8 comes from the fork mallory/app, and .github/railyard.yml does not allow patching forks (patch: { allow_forks: true })"}},
		{name: "a deleted fork is a fork", file: stages,
			ask:     Ask{Command: Patch, Stage: "build", Pull: &Pull{Number: 9, Head: sha}},
			missing: []string{"pull request #9 comes from a fork, and"}},
		{name: "fork allowed by the file", file: "patch: {allow_forks: true}\n" + stages,
			ask: Ask{Command: Patch, Stage: "build", Pull: fork}},
		{name: "the head repository's case does not matter", file: stages,
			ask: Ask{Command: Patch, Stage: "build", Pull: &Pull{Number: 7, Head: sha, HeadRepo: "ACME/App"}}},
		{name: "branch's checks, named checks; Railyard's own are not required by the branch", file: "require: {checks: [docs, e2e]}\n" + stages,
			ask: Ask{Command: RollForward, Stage: "build", Branch: "main"},
			gh: fakeGitHub{required: []string{"ci/test", "lint", "railyard/build", "build-status"}, checks: append(passed,
				Check{"e2e", "in_progress", ""}, Check{"build-status", "completed", "pending"}, Check{"lint", "completed", "failure"})},
			missing: []string{"check build-status did not pass (pending)", "check e2e has not finished (in progress)"}, calls: 2},
		{name: "failed and absent checks, a status passes", file: "require: {checks: [ci/test, deploy-ok, railyard/staging]}\n" + stages,
			ask: Ask{Command: Patch, Stage: "prod", Branch: "main", Pull: ours},
			gh: fakeGitHub{checks: []Check{{"ci/test", "completed", "timed_out"}, {"deploy-ok", "completed", "success"},
				{"railyard/staging", "completed", "success"}}},
			missing: []string{"check ci/test did not pass (timed out)", "check railyard/staging is Railyard's own, and Railyard's check runs never count"}, calls: 2},
		{name: "check that never ran", file: "require: {checks: [ci/test]}\n" + stages,
			ask:     Ask{Command: RollForward, Stage: "prod", SHA: sha, Branch: "main"},
			missing: []string{"check ci/test has not run on abcdef0"}, calls: 2},
		{name: "/promote into a stage that is not production is not gated", file: "require: {checks: [ci/test]}\n" + stages,
			ask: Ask{Command: Promote, Stage: "build", SHA: sha}},
		{name: "/promote into production is", file: "require: {checks: [ci/test]}\n" + stages,
			ask: Ask{Command: Promote, Stage: "prod", SHA: sha}, missing: []string{"check ci/test has not run on abcdef0"}, calls: 2},
		{name: "approvals: a revision on the pipeline branch needs none", file: "require: {approvals: 2}\n" + stages,
			ask: Ask{Command: Promote, Stage: "prod", SHA: sha, Branch: "main"}, gh: fakeGitHub{onBranch: true}, calls: 3},
		{name: "approvals: elsewhere, only on its pull request", file: "require: {approvals: 1}\n" + stages,
			ask:     Ask{Command: RollForward, Stage: "prod", SHA: sha, Branch: "main"},
			missing: []string{"abcdef0 is not on main, so it needs 1 approval on its pull request: give the command there"}, calls: 3},
		{name: "approvals: latest review per reviewer, on this head", file: "require: {approvals: 3}\n" + stages,
			ask: Ask{Command: Patch, Stage: "prod", SHA: sha, Branch: "main", Pull: ours},
			gh: fakeGitHub{reviews: []Review{
				{"alice", "APPROVED", sha},
				{"bob", "APPROVED", sha}, {"bob", "CHANGES_REQUESTED", sha},
				{"carol", "APPROVED", "0000000"},
				{"dave", "APPROVED", sha}, {"dave", "COMMENTED", sha},
				{"erin", "APPROVED", sha}, {"erin", "DISMISSED", sha},
			}},
			missing: []string{"needs 3 approvals of abcdef0 on pull request #7, has @alice, @dave"}, calls: 4},
		{name: "approvals: enough", file: "require: {approvals: 1}\n" + stages,
			ask: Ask{Command: Patch, Stage: "prod", SHA: sha, Branch: "main", Pull: ours},
			gh:  fakeGitHub{reviews: []Review{{"alice", "APPROVED", sha}}}, calls: 4},
		{name: "a stage's block replaces the file's", file: "require: {checks: [ci/test]}\n" + stages + "    require: {}\n",
			ask: Ask{Command: RollForward, Stage: "prod", SHA: sha, Branch: "main"}, calls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ask.File = file(t, tt.file)
			if tt.ask.SHA == "" {
				tt.ask.SHA = sha
			}
			g := &Gate{GitHub: &tt.gh}
			err := g.Check(context.Background(), repo, tt.ask)
			if len(tt.gh.calls) != tt.calls {
				t.Errorf("GitHub calls %q, want %d", tt.gh.calls, tt.calls)
			}
			if tt.missing == nil {
				if err != nil {
					t.Fatalf("Check = %v, want allowed", err)
				}
				return
			}
			r, ok := errors.AsType[*Refusal](err)
			if !ok {
				t.Fatalf("Check = %v, want a refusal", err)
			}
			if len(r.Missing) != len(tt.missing) {
				t.Fatalf("missing %q, want %q", r.Missing, tt.missing)
			}
			for i := range tt.missing {
				if len(r.Missing[i]) < len(tt.missing[i]) || r.Missing[i][:len(tt.missing[i])] != tt.missing[i] {
					t.Errorf("missing[%d] = %q, want %q", i, r.Missing[i], tt.missing[i])
				}
			}
		})
	}
}

func TestCheckFailsWhenGitHubDoes(t *testing.T) {
	boom := errors.New("502")
	g := &Gate{GitHub: &fakeGitHub{err: boom}}
	err := g.Check(context.Background(), repo, Ask{Command: Patch, Stage: "prod", SHA: sha, File: file(t, "require: {}\n"+stages)})
	if _, refused := errors.AsType[*Refusal](err); refused || !errors.Is(err, boom) {
		t.Errorf("Check = %v, want the GitHub error, not a refusal", err)
	}
}

func TestAwaitsPromote(t *testing.T) {
	for _, c := range []struct {
		file  string
		stage string
		want  bool
	}{
		{stages, "prod", false},
		{"require: {}\n" + stages, "prod", true},
		{"require: {}\n" + stages, "build", false},
		{stages + "    require: {approvals: 1}\n", "prod", true},
	} {
		if got := AwaitsPromote(file(t, c.file), c.stage); got != c.want {
			t.Errorf("AwaitsPromote(%q, %s) = %v, want %v", c.file, c.stage, got, c.want)
		}
	}
}
