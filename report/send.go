package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

const (
	// maxPerSession sends per lease before giving other repositories a turn.
	maxPerSession = 20
	// maxLookahead bounds how far into a status outbox one request looks:
	// past provisional writes still held, for the write to send, and for
	// later writes of the same check run or deployment to merge into it or
	// to drop. Each request reads that many operations from Redis (most are
	// a few hundred bytes; a completed check run carries up to 130 KB of
	// output), so a backlog of thousands costs no more per request than a
	// few jobs' worth. Two writes of one object further apart than that
	// merge only once what lies between them is sent. A conversation
	// outbox is sent strictly in order and reads only its head.
	maxLookahead = 64
	// clockSkew is how far GitHub's clock may be behind ours.
	clockSkew = 5 * time.Minute
)

// Run sends outboxes until ctx is done, with Options.Senders goroutines
// for status and Options.TalkSenders for conversation, and returns nil
// once they have stopped. Many processes may run it against one Redis.
// Store and GitHub errors are logged and retried, never returned; only
// outbox lease timings that break lease's rule stop it at start.
func (r *Reporter) Run(ctx context.Context) error {
	if err := outboxTimings.Check(); err != nil {
		return fmt.Errorf("outbox lease: %w", err)
	}
	var wg sync.WaitGroup
	for range r.opts.Senders {
		wg.Go(func() { r.sender(ctx, status) })
	}
	for range r.opts.TalkSenders {
		wg.Go(func() { r.sender(ctx, conversation) })
	}
	wg.Wait()
	return nil
}

// sender sends the outboxes of class c. Each class has its own senders, so
// a backlog of status never delays a reply to a person.
func (r *Reporter) sender(ctx context.Context, c class) {
	for ctx.Err() == nil {
		k, token, err := r.claim(ctx, c)
		if err != nil && ctx.Err() == nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not look for outboxes to send.")
		}
		if token != nil {
			r.drain(ctx, k, token)
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.wake[c]:
		case <-time.After(r.opts.Poll):
		}
	}
}

// drain sends one repository's outbox in order while it holds its lease,
// until the outbox is empty, must wait, or has had its turn.
func (r *Reporter) drain(ctx context.Context, k repoKeys, token *outboxLease) {
	defer r.release(ctx, k, token)
	ctx, stop := token.keep(ctx)
	defer stop()
	log := zerolog.Ctx(ctx).With().Str("railyard_outbox", k.member).Logger()
	ctx = log.WithContext(ctx)
	s := &session{}
	for range maxPerSession {
		next, err := r.step(ctx, k, token, s)
		switch {
		case err == nil && next.IsZero():
			continue
		case errors.Is(err, errEmpty):
			if err := r.finish(ctx, k); err == nil {
				return
			}
			log.Warn().Err(err).Msg("Could not close the outbox.")
			next = r.opts.Now()
		case errors.Is(err, errLeaseLost) || held(ctx) != nil:
			log.Warn().Msg("Lost the outbox lease; another process sends it.")
			return
		case err != nil:
			if ctx.Err() == nil {
				log.Warn().Err(err).Msg("Could not send the outbox; trying again soon.")
			}
			next = r.opts.Now().Add(r.opts.Poll)
		}
		if err := r.reschedule(ctx, k, next); err != nil {
			log.Warn().Err(err).Msg("Could not reschedule the outbox; it reappears when its lease runs out.")
		}
		return
	}
	// Had its turn: stay due, behind the others.
	if err := r.reschedule(ctx, k, r.opts.Now()); err != nil {
		log.Warn().Err(err).Msg("Could not reschedule the outbox; it reappears when its lease runs out.")
	}
}

// errEmpty is how step says the outbox is empty.
var errEmpty = errors.New("outbox empty")

// session is what one lease holder keeps between requests.
type session struct {
	gh     *github.Client
	inst   int64
	answer http.Header // of gh's last answer
}

// step sends (or drops) the head of the outbox. It returns the zero time
// to go on, or when the outbox may be tried again; errEmpty when it is
// empty.
func (r *Reporter) step(ctx context.Context, k repoKeys, token *outboxLease, s *session) (time.Time, error) {
	if err := held(ctx); err != nil {
		return time.Time{}, err
	}
	w, err := r.look(ctx, k)
	if err != nil {
		return time.Time{}, err
	}
	if len(w.items) == 0 {
		return time.Time{}, errEmpty
	}
	if t, unreadable := w.unsent(); len(t.at) > 0 {
		if unreadable > 0 {
			// Unreadable ones would block the outbox for ever.
			zerolog.Ctx(ctx).Error().Int("operations", unreadable).Msg("Dropped unreadable operations.")
			r.dropped.Add(int64(unreadable))
		}
		r.coalesced.Add(int64(len(t.at) - unreadable))
		return time.Time{}, r.pop(ctx, k, token, t, record{}, false)
	}
	p, until, err := r.choose(ctx, k, w)
	if err != nil {
		return time.Time{}, err
	}
	if p.ops == nil {
		// Every write within reach is provisional and young. Look again
		// soon rather than at until: a later write of the same object,
		// queued meanwhile, replaces it and goes at once.
		next := r.opts.Now().Add(r.opts.Poll)
		if !until.IsZero() {
			next = minTime(until, next)
		}
		return next, nil
	}
	head := p.ops[0]
	log := zerolog.Ctx(ctx).With().
		Str(githubapp.LogKeyRepositoryOwner, head.Repo.Owner).
		Str(githubapp.LogKeyRepositoryName, head.Repo.Name).
		Int64(githubapp.LogKeyInstallationID, head.Repo.InstallationID).
		Str("railyard_report", head.Kind).Str("railyard_report_key", head.Key).
		Logger()
	if p.send == nil {
		log.Warn().Str("reason", p.why).Int("operations", len(p.ops)).Msg("Dropped queued operations.")
		r.dropped.Add(int64(len(p.ops)))
		return time.Time{}, r.pop(ctx, k, token, p.taken(), record{}, true)
	}

	cls := classOf(head.Kind)
	if p.waitFor {
		// A reply that links a check run about to be created waits for it
		// a little (1+2+4+8 s), then names it instead. Sending it resets
		// the count.
		n, d, err := r.backoff(ctx, k)
		if err != nil {
			return time.Time{}, err
		}
		if n <= maxLinkWaits {
			return r.opts.Now().Add(d), nil
		}
	}
	inst, queued := head.Repo.InstallationID, queuedAt(head, r.opts.Now())
	if cls == status {
		// One status request at a time per installation, across
		// processes, as GitHub asks: no concurrency to trip its secondary
		// limits, and a hold GitHub asked for is seen by the next request.
		release, ok, err := r.takeTurn(ctx, inst)
		if err != nil {
			return time.Time{}, err
		}
		if !ok {
			r.countHeld(cls, reasonBusy)
			return r.opts.Now().Add(busyRetry), nil
		}
		defer release()
	}
	paced, err := r.pace(ctx, inst, cls, queued)
	if err != nil {
		return time.Time{}, err
	}
	if !paced.until.IsZero() {
		r.noteWait(log, cls, paced)
		return paced.until, nil
	}
	if s.gh == nil || s.inst != inst {
		gh, err := r.clients.NewInstallationClient(inst)
		if err != nil {
			return r.retryLater(ctx, k, fmt.Errorf("make installation client: %w", err))
		}
		s.gh, s.inst = observe(gh, &s.answer), inst
	}
	// A create whose earlier request got no answer may have been made by
	// it: look before making it again.
	lookFirst, since := false, time.Time{}
	if p.find != nil {
		if lookFirst, since, err = r.markTried(ctx, k, head.ID); err != nil {
			return time.Time{}, err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	s.answer = nil
	found, created := false, entry{}
	if lookFirst {
		created, found, err = p.find(rctx, s.gh, since)
	}
	if err == nil && !found {
		created, err = p.send(rctx, s.gh)
	}
	cancel()
	if err == nil {
		if found {
			log.Info().Msg("Found on GitHub what a request whose answer was lost made; kept it instead of making it again.")
			r.adopted.Add(1)
		} else {
			r.sent.Add(1)
		}
		r.coalesced.Add(int64(len(p.ops) - 1))
		err := r.pop(ctx, k, token, p.taken(), p.record(created), true)
		w, werr := r.sentWrite(ctx, inst, cls, queued, paced, s.answer)
		if werr != nil {
			log.Warn().Err(werr).Msg("Could not keep what GitHub said of the rate limit.")
		} else if !w.until.IsZero() {
			log.Info().Time("until", w.until).Str("railyard_class", string(cls)).Msg("GitHub's rate limit is spent; the installation's writes of this class wait for its reset.")
			r.noteWait(log, cls, w)
		}
		return time.Time{}, err
	}
	if ctx.Err() != nil {
		return r.opts.Now(), nil // stopping: someone sends it later
	}
	if until, why, ok := rateLimited(err, r.opts.Now()); ok {
		log.Info().Time("until", until).Str("railyard_class", string(cls)).Str("reason", why).Msg("GitHub rate limit; the installation's writes of this class wait.")
		r.retries.Add(1)
		r.limited.Add(1)
		if why == reasonRetry {
			r.countSecondary(cls)
		}
		w, err := r.holdOff(ctx, inst, cls, until, why, queued)
		if err == nil {
			r.noteWait(log, cls, w)
		}
		return until, err
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode >= 400 && er.Response.StatusCode < 500 {
		log := log.With().Int("github_status", er.Response.StatusCode).Str("github_message", er.Message).
			Interface("github_errors", er.Errors).Int("operations", len(p.ops)).Logger()
		if r.refusedForNow(ctx, s.gh, head.Repo, er.Response.StatusCode) {
			n, d, err := r.backoff(ctx, k)
			if err != nil {
				return time.Time{}, err
			}
			if n <= maxRefusals {
				r.retries.Add(1)
				log.Warn().Int64("attempts", n).Dur("backoff", d).Msg("GitHub refused an operation, perhaps only for now; retrying later.")
				return r.opts.Now().Add(d), nil
			}
		}
		log.Error().Msg("GitHub refused an operation; dropped it.")
		r.dropped.Add(int64(len(p.ops)))
		return time.Time{}, r.pop(ctx, k, token, p.taken(), record{}, true)
	}
	return r.retryLater(ctx, k, err)
}

// maxLinkWaits bounds how often a reply waits for a check run it links.
const maxLinkWaits = 4

// maxRefusals bounds the attempts of an operation GitHub keeps refusing in
// a way that may pass: 5 wait 31 s in all.
const maxRefusals = 5

// refusedForNow reports whether a refusal may pass. A new installation
// token that has not reached all of GitHub yet is answered 401, or 404 on a
// repository it can in fact reach. A 404 on a repository GitHub no longer
// shows (the installation lost it) is final, as is anything else GitHub
// refuses: validation (422), permissions (403), a bad request.
func (r *Reporter) refusedForNow(ctx context.Context, gh *github.Client, repo Repo, status int) bool {
	switch status {
	case http.StatusUnauthorized:
		return true
	case http.StatusNotFound:
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		_, _, err := gh.Repositories.Get(ctx, repo.Owner, repo.Name)
		var er *github.ErrorResponse
		return !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusNotFound
	}
	return false
}

// retryLater backs off after a server or network error.
func (r *Reporter) retryLater(ctx context.Context, k repoKeys, cause error) (time.Time, error) {
	r.retries.Add(1)
	_, d, err := r.backoff(ctx, k)
	if err != nil {
		return time.Time{}, err
	}
	zerolog.Ctx(ctx).Warn().Err(cause).Dur("backoff", d).Msg("Sending to GitHub failed; retrying later.")
	return r.opts.Now().Add(d), nil
}

// rateLimited reports until when GitHub asked us to wait, if it did, and
// why: its secondary limit (reasonRetry) or a spent rate limit
// (reasonExhausted).
func rateLimited(err error, now time.Time) (time.Time, string, bool) {
	var (
		resp  *http.Response
		rl    *github.RateLimitError
		abuse *github.AbuseRateLimitError
		er    *github.ErrorResponse
	)
	switch {
	case errors.As(err, &rl):
		resp = rl.Response
	case errors.As(err, &abuse):
		resp = abuse.Response
	case errors.As(err, &er):
		resp = er.Response
	}
	if resp == nil || (resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests) {
		return time.Time{}, "", false
	}
	// At least a second, in case of clock skew against GitHub's reset.
	later := func(t time.Time, why string) (time.Time, string, bool) {
		return maxTime(t, now.Add(time.Second)), why, true
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		return later(now.Add(time.Duration(s)*time.Second), reasonRetry)
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return later(time.Unix(s, 0), reasonExhausted)
		}
	}
	switch {
	case rl != nil:
		// go-github may refuse on its own, from what it learnt earlier.
		return later(rl.Rate.Reset.Time, reasonExhausted)
	case abuse != nil && abuse.RetryAfter != nil:
		return later(now.Add(*abuse.RetryAfter), reasonRetry)
	case abuse != nil, resp.StatusCode == http.StatusTooManyRequests:
		// GitHub's advice when it names no time: wait at least a minute.
		return later(now.Add(time.Minute), reasonRetry)
	}
	return time.Time{}, "", false // a 403 that is not a rate limit: no permission
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// window is the head of an outbox as one step reads it: up to
// maxLookahead operations of a status outbox, the first of a conversation
// one.
type window struct {
	items []string
	ops   []*op // nil where an item is unreadable
	// tried is the operation a request was made for whose answer may have
	// been lost ("" if none).
	tried string
}

func (r *Reporter) look(ctx context.Context, k repoKeys) (window, error) {
	n := int64(1)
	if k.class == status {
		n = maxLookahead
	}
	var items *redis.StringSliceCmd
	var tried *redis.StringCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		items = p.LRange(ctx, k.outbox, 0, n-1)
		tried = p.Get(ctx, k.tried)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return window{}, fmt.Errorf("read outbox: %w", err)
	}
	w := window{items: items.Val()}
	w.tried, _, _ = strings.Cut(tried.Val(), " ")
	for i, it := range w.items {
		o, err := decodeOp(it)
		if err != nil {
			o = nil
		}
		if i > 0 && o != nil && o.object() == "" {
			// Conversation that earlier versions queued here keeps its
			// place in line: nothing after it is looked at.
			w.items = w.items[:i]
			break
		}
		w.ops = append(w.ops, o)
	}
	return w, nil
}

func (t *taken) add(at int, prefix string) {
	t.at = append(t.at, at)
	t.prefixes = append(t.prefixes, prefix)
}

// unsent returns the operations of w to drop without a request:
// unreadable ones (unreadable counts them), and deployment statuses not
// final that a later status of the same deployment makes obsolete.
// Nothing else is ever dropped unsent.
func (w window) unsent() (t taken, unreadable int) {
	for i, o := range w.ops {
		switch {
		case o == nil:
			t.add(i, w.items[i]) // the whole value is its prefix
			unreadable++
		case o.Kind == kindStatus && !o.Status.final():
			if slices.ContainsFunc(w.ops[i+1:], func(l *op) bool { return l != nil && l.Kind == kindStatus && l.Key == o.Key }) {
				t.add(i, o.prefix())
			}
		}
	}
	return t, unreadable
}

// run returns the positions of the write of a check run at i and of the
// later writes of the same check run in w, up to the first that completes
// it: they merge into one request. Nothing merges past a completion.
func (w window) run(i int) []int {
	at := []int{i}
	for j := i + 1; j < len(w.ops) && !w.ops[at[len(at)-1]].CheckRun.final(); j++ {
		if o := w.ops[j]; o.Kind == kindCheckRun && o.Key == w.ops[i].Key {
			at = append(at, j)
		}
	}
	return at
}

// merged is the check run the writes at positions at show together.
func (w window) merged(at []int) CheckRun {
	c := *w.ops[at[0]].CheckRun
	for _, j := range at[1:] {
		c.merge(*w.ops[j].CheckRun)
	}
	return c
}

// known reads what is known of every object the operations of w write to
// or link.
func (r *Reporter) known(ctx context.Context, k repoKeys, w window) (map[string]entry, error) {
	var fields []string
	for _, o := range w.ops {
		if f := o.object(); f != "" && !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
		if o.Kind == kindStatus && o.Status.LogURLCheckRun != "" {
			if f := checkRunField(o.Status.LogURLCheckRun); !slices.Contains(fields, f) {
				fields = append(fields, f)
			}
		}
	}
	known := make(map[string]entry, len(fields))
	if len(fields) == 0 {
		return known, nil
	}
	es, err := r.entries(ctx, k, fields...)
	if err != nil {
		return nil, err
	}
	for i, f := range fields {
		known[f] = es[i]
	}
	return known, nil
}

// choose plans the request for the earliest write of w that may go now,
// or returns when the earliest held one may. A provisional write (see
// Options.ProvisionalHold) is held until it is old enough, and with it the
// later writes of its object, but not those of other objects: order is
// kept within one check run and within one deployment, not across them.
func (r *Reporter) choose(ctx context.Context, k repoKeys, w window) (plan, time.Time, error) {
	known, err := r.known(ctx, k, w)
	if err != nil {
		return plan{}, time.Time{}, err
	}
	// A request whose answer may have been lost goes on first: only its
	// record says to look for what it made before making it again.
	if i := slices.IndexFunc(w.ops, func(o *op) bool { return o.ID == w.tried }); i >= 0 {
		p, err := r.plan(ctx, k, w, i, known)
		return p, time.Time{}, err
	}
	now, hold := r.opts.Now(), r.opts.ProvisionalHold
	held := map[string]bool{}
	var until time.Time
	holdBack := func(o *op) {
		held[o.object()] = true
		if due := time.UnixMilli(o.At).Add(hold); until.IsZero() || due.Before(until) {
			until = due
		}
	}
	for i, o := range w.ops {
		if held[o.object()] {
			continue
		}
		switch o.Kind {
		case kindCheckRun:
			// A create still queued once the later writes in reach are
			// merged into it.
			if e := known[o.object()]; e.ID == 0 && e.Creator == o.ID && w.merged(w.run(i)).Status == "queued" && o.young(now, hold) {
				holdBack(o)
				continue
			}
		case kindStatus:
			if l := o.Status.LogURLCheckRun; l != "" && held[checkRunField(l)] {
				// Its check run, not created yet, is its log_url.
				held[o.object()] = true
				continue
			}
			if o.Status.provisional() && o.young(now, hold) {
				holdBack(o)
				continue
			}
		}
		p, err := r.plan(ctx, k, w, i, known)
		return p, time.Time{}, err
	}
	return plan{}, until, nil
}

// plan is one request to GitHub standing for one or more queued
// operations.
type plan struct {
	ops   []*op
	at    []int                                                // their positions in the outbox
	send  func(context.Context, *github.Client) (entry, error) // nil: drop ops unsent
	why   string                                               // why they are dropped
	field string                                               // object whose entry to set to send's entry
	// find looks for what send makes, for when an earlier send's answer
	// was lost; since is when that send was made. nil: send is safe to
	// repeat (an update, a reaction).
	find func(ctx context.Context, gh *github.Client, since time.Time) (entry, bool, error)
	// output is a check run's output as GitHub shows it once sent, kept
	// to complete later partial updates; nil forgets it.
	output      *output
	outputField string // "" leaves the kept output alone
	// waitFor: a comment links a check run whose creation is queued, in
	// the status outbox; sent now it would name the check run, not link it.
	waitFor bool
}

// taken names the operations p stands for.
func (p plan) taken() taken {
	var t taken
	for i, o := range p.ops {
		t.add(p.at[i], o.prefix())
	}
	return t
}

// plan plans the request for the operation of w at i; known is what is
// known of the objects of w.
func (r *Reporter) plan(ctx context.Context, k repoKeys, w window, i int, known map[string]entry) (plan, error) {
	head := w.ops[i]
	p := plan{ops: []*op{head}, at: []int{i}}
	switch head.Kind {
	case kindCheckRun:
		return r.planCheckRun(ctx, k, w, i, known[head.object()])
	case kindDeployment:
		if e := known[head.object()]; e.Creator != head.ID || e.ID != 0 {
			p.why = "a deployment already has this key"
			break
		}
		p.field = head.object()
		p.send = func(ctx context.Context, gh *github.Client) (entry, error) {
			return createDeployment(ctx, gh, head.Repo, head.Key, *head.Deployment)
		}
		p.find = func(ctx context.Context, gh *github.Client, _ time.Time) (entry, bool, error) {
			return findDeployment(ctx, gh, head.Repo, head.Key, *head.Deployment)
		}
	case kindStatus:
		s := *head.Status
		d := known[head.object()]
		if d.ID == 0 {
			p.why = "its deployment was never created"
			break
		}
		logURL := ""
		if s.LogURLCheckRun != "" {
			logURL = known[checkRunField(s.LogURLCheckRun)].HTMLURL
		}
		p.send = func(ctx context.Context, gh *github.Client) (entry, error) {
			return entry{}, createDeploymentStatus(ctx, gh, head.Repo, d.ID, s, logURL)
		}
		p.find = func(ctx context.Context, gh *github.Client, _ time.Time) (entry, bool, error) {
			shown, err := statusShown(ctx, gh, head.Repo, d.ID, s)
			return entry{}, shown, err
		}
	case kindComment:
		body, pending, err := r.fillPlaceholders(ctx, k, head.Body)
		if err != nil {
			return p, err
		}
		p.waitFor = pending
		marker := commentMarker(head.ID)
		body += "\n\n" + marker
		p.send = func(ctx context.Context, gh *github.Client) (entry, error) {
			_, _, err := gh.Issues.CreateComment(ctx, head.Repo.Owner, head.Repo.Name, head.Issue, &github.IssueComment{Body: &body})
			return entry{}, err
		}
		p.find = func(ctx context.Context, gh *github.Client, since time.Time) (entry, bool, error) {
			found, err := findComment(ctx, gh, head.Repo, head.Issue, marker, since.Add(-clockSkew))
			return entry{}, found, err
		}
	case kindReaction:
		p.send = func(ctx context.Context, gh *github.Client) (entry, error) {
			_, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, head.Repo.Owner, head.Repo.Name, head.CommentID, head.Content)
			return entry{}, err
		}
	default:
		p.why = "unknown kind " + strconv.Quote(head.Kind)
	}
	return p, nil
}

// record is what Redis keeps of a request GitHub accepted.
func (p plan) record(created entry) record {
	return record{field: p.field, entry: created, outputField: p.outputField, output: p.output}
}

// planCheckRun plans the write of a check run at i of w with the later
// writes of the same check run in reach, merged: a create (which then
// shows their merged state) or an update. e is what is known of the check
// run.
func (r *Reporter) planCheckRun(ctx context.Context, k repoKeys, w window, i int, e entry) (plan, error) {
	head := w.ops[i]
	p := plan{at: w.run(i)}
	for _, j := range p.at {
		p.ops = append(p.ops, w.ops[j])
	}
	field := head.object()
	c := w.merged(p.at)
	switch {
	case e.ID == 0 && e.Creator == head.ID:
		c.ExternalID = cmp.Or(c.ExternalID, head.Key)
		p.field = field
		p.outputField, p.output = field, c.shown()
		p.send = func(ctx context.Context, gh *github.Client) (entry, error) {
			return createCheckRun(ctx, gh, head.Repo, c)
		}
		p.find = func(ctx context.Context, gh *github.Client, _ time.Time) (entry, bool, error) {
			found, ok, err := findCheckRun(ctx, gh, head.Repo, c)
			if ok && err == nil && len(p.ops) > 1 {
				// The lost request may have carried fewer of the writes
				// merged here: show them all.
				err = updateCheckRun(ctx, gh, head.Repo, found.ID, c)
			}
			return found, ok, err
		}
	case e.ID == 0:
		p.why = "its check run was never created"
	default:
		if c.hasOutput() || c.final() {
			// GitHub replaces the whole output: complete it with what it shows.
			shown, err := r.output(ctx, k, field)
			if err != nil {
				return p, err
			}
			if c.hasOutput() {
				c.Title, c.Summary, c.Text = cmp.Or(c.Title, shown.Title), cmp.Or(c.Summary, shown.Summary), cmp.Or(c.Text, shown.Text)
			}
			p.outputField, p.output = field, c.shown()
		}
		p.send = func(ctx context.Context, gh *github.Client) (entry, error) {
			return entry{}, updateCheckRun(ctx, gh, head.Repo, e.ID, c)
		}
	}
	return p, nil
}

var placeholder = regexp.MustCompile(`\{\{checkrun:([^{}]+)\}\}`)

// fillPlaceholders replaces "{{checkrun:KEY}}" by the check run's page, or
// its name when it has none (yet), or KEY for a check run never asked for.
// pending reports a check run whose creation is still queued.
func (r *Reporter) fillPlaceholders(ctx context.Context, k repoKeys, body string) (_ string, pending bool, _ error) {
	matches := placeholder.FindAllStringSubmatch(body, -1)
	if matches == nil {
		return body, false, nil
	}
	fields := make([]string, len(matches))
	for i, m := range matches {
		fields[i] = checkRunField(m[1])
	}
	es, err := r.entries(ctx, k, fields...)
	if err != nil {
		return "", false, err
	}
	byKey := make(map[string]entry, len(es))
	for i, m := range matches {
		byKey[m[1]] = es[i]
		pending = pending || (es[i].ID == 0 && es[i].Creator != "")
	}
	return placeholder.ReplaceAllStringFunc(body, func(s string) string {
		key := placeholder.FindStringSubmatch(s)[1]
		return cmp.Or(byKey[key].HTMLURL, byKey[key].Name, key)
	}), pending, nil
}
