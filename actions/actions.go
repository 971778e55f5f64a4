// Package actions runs pipeline steps as GitHub Actions workflow runs: it
// dispatches a workflow, finds the run the dispatch started, follows it to
// its conclusion, and cancels it when the step is cancelled or times out.
//
// Runs are followed through workflow_run webhooks (Record, called by the
// webhook handler, writes what they say to the store) and, so that a lost
// webhook never hangs a stage, by asking GitHub every Options.Fallback.
package actions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/lease"
	"github.com/railyard/railyard/report"
)

// Clients makes installation clients; githubapp.ClientCreator is one.
type Clients interface {
	NewInstallationClient(installationID int64) (*github.Client, error)
}

// Options tune a Runner; zero values take defaults.
type Options struct {
	// Poll is how often a step looks at what webhooks recorded; default 1s.
	Poll time.Duration
	// Fallback is how often a step asks GitHub itself about its run, in
	// case a webhook was lost; default 30s.
	Fallback time.Duration
	// Find bounds the search for the run a dispatch started, when GitHub's
	// answer did not name it; default 5m.
	Find time.Duration
	// Lost bounds the search for a run a dispatch whose answer was lost
	// (a 5xx, a timeout, a reset) may have started, before the workflow is
	// dispatched again; default 20s.
	Lost time.Duration
}

// Step is one workflow step of a stage job.
type Step struct {
	Repo report.Repo
	// Key names this step of this job uniquely and stays the same when
	// another process takes the job over.
	Key      string
	Workflow string // a file name in .github/workflows, e.g. "deploy.yml"
	// Ref is the branch the workflow is dispatched on; "" means the
	// repository's default branch. GitHub refuses a bare SHA here, so the
	// revision travels in the sha input.
	Ref     string
	Inputs  map[string]string
	Timeout time.Duration // 0: none
	// Lock is the stage lock of the run the step belongs to. The workflow
	// is dispatched, and an earlier attempt's run cancelled, only after a
	// check that the run still holds it, and what the step writes to the
	// store commits only while it does: a run that lost its stage to
	// another starts nothing. nil fences nothing (tests of this package).
	Lock *lease.Lease
}

// Result is how a workflow step ended.
type Result struct {
	RunID int64
	URL   string // the run's page on GitHub; "" when no run was found
	// Conclusion is GitHub's conclusion of the run: success, failure,
	// cancelled, timed_out, …; "" when it did not complete.
	Conclusion string
	TimedOut   bool  // the step's timeout ran out; the run was asked to cancel
	Cancelled  bool  // the step was cancelled; the run was asked to cancel
	Err        error // the workflow could not be dispatched or followed
	Duration   time.Duration
}

// OK reports whether the run completed successfully.
func (r Result) OK() bool {
	return r.Err == nil && !r.TimedOut && !r.Cancelled && r.Conclusion == "success"
}

// Runner runs workflow steps. It is safe for concurrent use.
type Runner struct {
	clients Clients
	rdb     redis.UniversalClient
	opts    Options
}

// New returns a Runner that reaches GitHub through clients and shares
// what webhooks say through rdb.
func New(clients Clients, rdb redis.UniversalClient, opts Options) *Runner {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Fallback <= 0 {
		opts.Fallback = 30 * time.Second
	}
	if opts.Find <= 0 {
		opts.Find = 5 * time.Minute
	}
	if opts.Lost <= 0 {
		opts.Lost = 20 * time.Second
	}
	return &Runner{clients: clients, rdb: rdb, opts: opts}
}

// Run dispatches st's workflow and waits for its run to complete, for
// ctx to end (the step is cancelled) or for st.Timeout.
func (r *Runner) Run(ctx context.Context, st Step) Result {
	start := time.Now()
	res := r.run(ctx, st)
	res.Duration = time.Since(start)
	return res
}

func (r *Runner) run(ctx context.Context, st Step) Result {
	c, err := r.clients.NewInstallationClient(st.Repo.InstallationID)
	if err != nil {
		return Result{Err: fmt.Errorf("installation client: %w", err)}
	}
	gh := &repoClient{c: c, repo: st.Repo}
	log := zerolog.Ctx(ctx).With().Str("railyard_workflow", st.Workflow).Logger()
	ctx = log.WithContext(ctx)

	// A run this step started before its process died is stopped: the
	// step starts afresh, as a run step does, and two runs never deploy
	// at once.
	if id, err := r.rdb.Get(ctx, stepKey(st)).Int64(); err == nil {
		if err := r.held(ctx, st); err != nil {
			return Result{Err: err}
		}
		log.Warn().Int64("railyard_run", id).Msg("Cancelling the workflow run an earlier attempt of this step started.")
		gh.cancel(ctx, id)
	}
	// A run that lost its stage leaves the step's record to the run that
	// took it over.
	defer func() {
		bg := context.WithoutCancel(ctx)
		r.fenced(bg, st, nil, func(tx redis.Pipeliner) { tx.Del(bg, stepKey(st)) })
	}()

	runCtx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	res := r.dispatchAndFollow(runCtx, gh, st)
	if errors.Is(res.Err, lease.ErrLost) && res.RunID != 0 {
		// Dispatched just before the stage passed to another run, which
		// cannot know of this run: stop it, so that only the new one deploys.
		log.Warn().Int64("railyard_run", res.RunID).Msg("Stage lock lost after the dispatch; cancelling the run it started.")
		gh.cancel(context.WithoutCancel(ctx), res.RunID)
		return res
	}
	if res.Conclusion != "" || runCtx.Err() == nil {
		return res
	}
	// Cancelled or out of time: the run must not go on deploying.
	res.Err = nil
	res.Cancelled, res.TimedOut = ctx.Err() != nil, ctx.Err() == nil
	if res.RunID != 0 {
		gh.cancel(context.WithoutCancel(ctx), res.RunID)
	}
	return res
}

func (r *Runner) dispatchAndFollow(ctx context.Context, gh *repoClient, st Step) Result {
	ref := st.Ref
	if ref == "" {
		var err error
		if ref, err = gh.defaultBranch(ctx); err != nil {
			return Result{Err: err}
		}
	}
	run, err := r.start(ctx, gh, st, ref)
	if err != nil {
		return Result{RunID: run.id, URL: run.url, Err: err}
	}
	zerolog.Ctx(ctx).Info().Int64("railyard_run", run.id).Str("url", run.url).Msg("Workflow run started.")
	return r.follow(ctx, gh, st, run)
}

// maxDispatches bounds the dispatches of one step whose answers were lost.
const maxDispatches = 3

// start dispatches st's workflow on ref and returns the run it started,
// claimed for st. A dispatch whose answer was lost may have started a run
// all the same, so before dispatching again it looks for a run it started
// (the workflow's, on ref, by workflow_dispatch, created since the first
// dispatch and claimed by no other step); only when none appears within
// Options.Lost does it dispatch again.
func (r *Runner) start(ctx context.Context, gh *repoClient, st Step, ref string) (runInfo, error) {
	since := time.Now()
	var err error
	for attempt := range maxDispatches {
		if attempt > 0 {
			if run, ferr := r.find(ctx, gh, st, ref, since, r.opts.Lost, r.opts.Poll); ferr == nil {
				zerolog.Ctx(ctx).Info().Int64("railyard_run", run.id).
					Msg("Found the run a dispatch whose answer was lost started; not dispatching again.")
				return run, nil
			} else if ctx.Err() != nil {
				return runInfo{}, ctx.Err()
			}
		}
		// The last moment to find out that another run has the stage.
		if err := r.held(ctx, st); err != nil {
			return runInfo{}, err
		}
		var run runInfo
		var lost bool
		run, lost, err = gh.dispatch(ctx, st.Workflow, ref, st.Inputs)
		switch {
		case err == nil && run.id == 0:
			// GitHub Enterprise Server versions before return_run_details
			// answer 204 with no run: look for it.
			return r.find(ctx, gh, st, ref, since, r.opts.Find, r.opts.Fallback)
		case err == nil:
			return run, r.claim(ctx, st, run.id)
		case !lost:
			return runInfo{}, err // GitHub said no: the workflow, the ref or the inputs are wrong
		}
		zerolog.Ctx(ctx).Warn().Err(err).Int("attempt", attempt+1).Msg("The answer to a workflow dispatch was lost.")
	}
	return runInfo{}, err
}

// follow waits for run to complete.
func (r *Runner) follow(ctx context.Context, gh *repoClient, st Step, run runInfo) Result {
	res := Result{RunID: run.id, URL: run.url}
	poll := time.NewTicker(r.opts.Poll)
	defer poll.Stop()
	asked := time.Now()
	for {
		seen, err := r.recorded(ctx, st.Repo.FullName(), run.id)
		if err == nil && seen.status == "completed" {
			res.Conclusion = seen.conclusion
			return res
		}
		if time.Since(asked) >= r.opts.Fallback {
			asked = time.Now()
			got, err := gh.run(ctx, run.id)
			switch {
			case err != nil:
				zerolog.Ctx(ctx).Warn().Err(err).Int64("railyard_run", run.id).Msg("Could not read the workflow run; will ask again.")
			case got.status == "completed":
				res.Conclusion = got.conclusion
				if res.Conclusion == "" {
					res.Conclusion = "unknown"
				}
				return res
			}
		}
		select {
		case <-ctx.Done():
			return res
		case <-poll.C:
		}
	}
}

// find looks for the run a dispatch started: a workflow_dispatch run of
// the workflow on ref, created since the dispatch (give or take clock
// skew) and not claimed by another step. It looks at what webhooks
// recorded every Poll, asks GitHub every listEvery, and gives up after
// window.
func (r *Runner) find(ctx context.Context, gh *repoClient, st Step, ref string, since time.Time, window, listEvery time.Duration) (runInfo, error) {
	findCtx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	since = since.Add(-clockSkew)
	poll := time.NewTicker(r.opts.Poll)
	defer poll.Stop()
	var asked time.Time
	for {
		candidates, err := r.recordedSince(ctx, st.Repo.FullName(), since)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not read recorded workflow runs.")
		}
		if time.Since(asked) >= listEvery {
			asked = time.Now()
			listed, err := gh.list(ctx, st.Workflow, ref, since)
			if err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not list workflow runs; will ask again.")
			}
			candidates = append(candidates, listed...)
		}
		for _, run := range candidates {
			if run.path != workflowPath(st.Workflow) || run.branch != ref || run.created.Before(since) {
				continue
			}
			if err := r.claim(ctx, st, run.id); err == nil {
				return run, nil
			}
		}
		select {
		case <-findCtx.Done():
			if ctx.Err() != nil {
				return runInfo{}, ctx.Err()
			}
			return runInfo{}, fmt.Errorf("dispatched %s on %s, but no run of it appeared within %s", st.Workflow, ref, window)
		case <-poll.C:
		}
	}
}

// clockSkew is how far GitHub's clock may be behind ours.
const clockSkew = 10 * time.Second

func workflowPath(file string) string { return ".github/workflows/" + file }

// runInfo is what Railyard needs of a workflow run.
type runInfo struct {
	id                 int64
	url                string
	path, branch       string
	status, conclusion string
	created            time.Time
}

// infoOf reads a run of the workflow file at path.
func infoOf(run *github.WorkflowRun, path string) runInfo {
	return runInfo{
		id: run.GetID(), url: run.GetHTMLURL(), path: path, branch: run.GetHeadBranch(),
		status: run.GetStatus(), conclusion: run.GetConclusion(),
		created: run.GetCreatedAt().Time,
	}
}

// repoClient is the Actions API of one repository.
type repoClient struct {
	c    *github.Client
	repo report.Repo
}

func (g *repoClient) defaultBranch(ctx context.Context) (string, error) {
	r, _, err := g.c.Repositories.Get(ctx, g.repo.Owner, g.repo.Name)
	if err != nil {
		return "", fmt.Errorf("read repository: %w", err)
	}
	return r.GetDefaultBranch(), nil
}

// dispatch starts the workflow. The answer names the run when GitHub
// supports return_run_details; go-github v62 predates it, hence the bare
// request. lost reports an error after which the dispatch may have taken
// effect: a 5xx, a timeout, a reset.
func (g *repoClient) dispatch(ctx context.Context, workflow, ref string, inputs map[string]string) (run runInfo, lost bool, err error) {
	body := struct {
		Ref              string            `json:"ref"`
		Inputs           map[string]string `json:"inputs"`
		ReturnRunDetails bool              `json:"return_run_details"`
	}{ref, inputs, true}
	u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/dispatches",
		url.PathEscape(g.repo.Owner), url.PathEscape(g.repo.Name), url.PathEscape(workflow))
	var out struct {
		ID      int64  `json:"workflow_run_id"`
		HTMLURL string `json:"html_url"`
	}
	req, err := g.c.NewRequest(http.MethodPost, u, body)
	if err != nil {
		return runInfo{}, false, err
	}
	resp, err := g.c.Do(ctx, req, &out)
	if err == nil {
		return runInfo{id: out.ID, url: out.HTMLURL, path: workflowPath(workflow), branch: ref}, false, nil
	}
	if ctx.Err() != nil {
		return runInfo{}, false, ctx.Err()
	}
	lost = resp == nil || resp.StatusCode >= 500
	return runInfo{}, lost, fmt.Errorf("dispatch %s on %s: %s", workflow, ref, describe(err))
}

func (g *repoClient) list(ctx context.Context, workflow, ref string, since time.Time) ([]runInfo, error) {
	runs, _, err := g.c.Actions.ListWorkflowRunsByFileName(ctx, g.repo.Owner, g.repo.Name, workflow, &github.ListWorkflowRunsOptions{
		Branch: ref, Event: "workflow_dispatch", Created: ">=" + since.UTC().Format(time.RFC3339),
		ListOptions: github.ListOptions{PerPage: 100},
	})
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", workflow, err)
	}
	out := make([]runInfo, 0, len(runs.WorkflowRuns))
	// Oldest first: of two dispatches racing, the earlier takes the earlier run.
	for i := len(runs.WorkflowRuns) - 1; i >= 0; i-- {
		out = append(out, infoOf(runs.WorkflowRuns[i], workflowPath(workflow)))
	}
	return out, nil
}

func (g *repoClient) run(ctx context.Context, id int64) (runInfo, error) {
	run, _, err := g.c.Actions.GetWorkflowRunByID(ctx, g.repo.Owner, g.repo.Name, id)
	if err != nil {
		return runInfo{}, fmt.Errorf("read run %d: %w", id, err)
	}
	return infoOf(run, ""), nil
}

// cancel asks GitHub to cancel a run; a run that already completed is fine.
func (g *repoClient) cancel(ctx context.Context, id int64) {
	ctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	resp, err := g.c.Actions.CancelWorkflowRunByID(ctx, g.repo.Owner, g.repo.Name, id)
	var accepted *github.AcceptedError
	if err == nil || errors.As(err, &accepted) || (resp != nil && resp.StatusCode == http.StatusConflict) {
		return
	}
	zerolog.Ctx(ctx).Warn().Err(err).Int64("railyard_run", id).Msg("Could not cancel the workflow run.")
}

// describe shortens a GitHub error to its message.
func describe(err error) string {
	var ge *github.ErrorResponse
	if errors.As(err, &ge) {
		return fmt.Sprintf("GitHub answered %d: %s", ge.Response.StatusCode, ge.Message)
	}
	return err.Error()
}
