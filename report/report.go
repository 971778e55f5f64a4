package report

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/store"
)

// Repo is a repository as the App's installation sees it.
type Repo struct {
	InstallationID int64  `json:"installation_id"`
	Owner          string `json:"owner"`
	Name           string `json:"name"`
}

// FullName is "owner/name".
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// Clients makes GitHub clients for an installation.
// githubapp.ClientCreator satisfies it.
type Clients interface {
	NewInstallationClient(installationID int64) (*github.Client, error)
}

// Options tune a Reporter. Zero values take the defaults.
type Options struct {
	Secrets []string // replaced by "***" in everything sent
	// Senders is how many goroutines send status outboxes in parallel
	// (default 4), and TalkSenders how many send conversation ones
	// (default 2): people's replies never wait for a status sender.
	Senders, TalkSenders int
	// PerMinute and PerHour pace an installation's conversation (comments,
	// reactions) to GitHub's content-creation limit: default 80 and 500.
	// PointsPerMinute bounds its status writes by GitHub's points budget
	// for the REST API (a write costs 5 points): default 900. Negative
	// means no limit (GitHub Enterprise Server has none unless set).
	PerMinute, PerHour, PointsPerMinute int
	Poll                                time.Duration // how often idle senders look for work; default 200ms
	Now                                 func() time.Time
	// Grace bounds how long a caller's transaction may take from an
	// AddTx write to its EXEC; a write whose committer died before
	// marking it ready is sent after it. Default store.DefaultGrace.
	Grace time.Duration
	// ProvisionalHold is how long a provisional write waits before it is
	// sent: a check run created "queued", a "queued" deployment status.
	// Most jobs start at once, and then a later state of the same object
	// replaces it before it was worth a request. A job that waits longer
	// shows "queued" after this delay. Default 3s; negative sends them at
	// once.
	ProvisionalHold time.Duration
}

// A sender sweeps the index of outboxes about to get writes at most every
// sweepEvery, sweepBatch marks at a time.
const (
	sweepEvery = time.Second
	sweepBatch = 16
)

// writePoints is what GitHub counts a REST write against its per-minute
// points budget.
const writePoints = 5

// Button is a check run button (GitHub's requested actions, not GitHub
// Actions). GitHub allows 20, 40 and 20 characters.
type Button struct {
	Label, Description, Identifier string
}

// CheckRun is what a check run should show. In an update, zero fields keep
// what GitHub already shows.
type CheckRun struct {
	Name, HeadSHA        string
	Status               string // "queued" | "in_progress" | "completed"
	Conclusion           string // with completed: success, failure, cancelled, skipped, neutral
	Title, Summary, Text string
	DetailsURL           string
	// ExternalID names the check run on GitHub; it defaults to its key.
	// Railyard finds a check run whose creation's answer was lost by it,
	// so it must differ between check runs of one name on one commit.
	ExternalID string
	// Buttons replaces the buttons; nil keeps them, an empty non-nil slice
	// clears them. Its JSON name is that of operations already queued.
	Buttons                []Button `json:"Actions"`
	StartedAt, CompletedAt time.Time
}

// Deployment is a GitHub deployment to create.
type Deployment struct {
	Ref, Environment, Task, Description string
	Production                          bool
	Payload                             map[string]any
}

// DeploymentStatus is a status to add to a deployment.
type DeploymentStatus struct {
	State       string
	Description string // cut to 140 characters
	// LogURLCheckRun is the key of the check run whose page becomes log_url.
	LogURLCheckRun string
	Environment    string
}

// Stats counts what the senders of this process did, for metrics.
type Stats struct {
	Sent      int64 // requests GitHub accepted
	Retries   int64 // requests retried later (rate limits, 5xx, network)
	Coalesced int64 // writes merged into another or made obsolete by a later one, unsent
	Dropped   int64 // operations GitHub refused for good, or with no object to update
	// Adopted counts objects found on GitHub, made by a request whose
	// answer was lost, instead of made a second time.
	Adopted int64
	// Limited counts answers by which GitHub asked to wait (403 or 429
	// with Retry-After or an exhausted rate limit).
	Limited int64
	// SecondaryLimited counts the answers by which GitHub's secondary
	// limit asked to wait (403 or 429 with Retry-After or without a
	// rate limit spent), by class.
	SecondaryLimited map[string]int64
	// Points counts the points of GitHub's per-minute budget spent on
	// status writes (5 a write).
	Points int64
	// Held counts writes put off by the budget, by class and reason:
	// points_budget, content_limit, retry_after, rate_limit_exhausted, or
	// installation_busy (another process was sending its status).
	Held map[Held]int64
}

// Held is a class of writes and why they were put off.
type Held struct{ Class, Reason string }

// Reporter queues what GitHub should show and, in Run, sends it.
type Reporter struct {
	rdb     redis.UniversalClient
	clients Clients
	opts    Options
	redact  *strings.Replacer
	keys    globalKeys
	wake    map[class]chan struct{} // nudges an idle sender after a local enqueue
	// turns are the installations whose status this process is sending,
	// one request at a time as GitHub asks of integrations.
	turns     map[int64]*turn
	turnsMu   sync.Mutex
	leftovers leftovers // outbox leases not yet released
	// viaIndex: on Redis Cluster an outbox is marked in its class's index
	// before a push and ready only after it (enqueue); on one Redis the
	// push and the ready mark are one MULTI.
	viaIndex bool

	sent, retries, coalesced, dropped, adopted, limited, points atomic.Int64
	countsMu                                                    sync.Mutex
	secondary                                                   map[string]int64 // by class
	held                                                        map[Held]int64
	looks                                                       atomic.Int64            // searches for due outboxes; tests await them to see a sender chose to wait
	nextSweep                                                   map[class]*atomic.Int64 // unix ns before which a sender does not sweep
}

// New returns a Reporter that keeps its outboxes in rdb.
func New(rdb redis.UniversalClient, clients Clients, opts Options) *Reporter {
	if opts.Senders <= 0 {
		opts.Senders = 4
	}
	if opts.TalkSenders <= 0 {
		opts.TalkSenders = 2
	}
	opts.PerMinute = cmp.Or(opts.PerMinute, 80)
	opts.PerHour = cmp.Or(opts.PerHour, 500)
	opts.PointsPerMinute = cmp.Or(opts.PointsPerMinute, 900)
	opts.ProvisionalHold = cmp.Or(opts.ProvisionalHold, 3*time.Second)
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reporter{
		rdb:       rdb,
		clients:   clients,
		opts:      opts,
		redact:    newRedactor(opts.Secrets),
		keys:      newGlobalKeys("outbox"),
		wake:      map[class]chan struct{}{conversation: make(chan struct{}, 1), status: make(chan struct{}, 1)},
		turns:     map[int64]*turn{},
		secondary: map[string]int64{},
		held:      map[Held]int64{},
		nextSweep: map[class]*atomic.Int64{conversation: {}, status: {}},
		viaIndex:  store.IsCluster(rdb),
	}
}

// Stats returns this process's counters.
func (r *Reporter) Stats() Stats {
	r.countsMu.Lock()
	defer r.countsMu.Unlock()
	return Stats{
		SecondaryLimited: maps.Clone(r.secondary),
		Points:           r.points.Load(),
		Held:             maps.Clone(r.held),
		Sent:             r.sent.Load(),
		Retries:          r.retries.Load(),
		Coalesced:        r.coalesced.Load(),
		Dropped:          r.dropped.Load(),
		Adopted:          r.adopted.Load(),
		Limited:          r.limited.Load(),
	}
}

// CheckRun makes the check run known as key show cr. The first call for a
// key creates the check run, later calls update it.
func (r *Reporter) CheckRun(ctx context.Context, repo Repo, key string, cr CheckRun) error {
	return r.enqueue(ctx, nil, Write{Key: key, CheckRun: &cr}.op(r, repo))
}

// Deployment creates the deployment known as key. A second call for the
// same key is dropped when sent. The payload GitHub shows also holds
// "railyard_key": key, by which Railyard finds the deployment again.
func (r *Reporter) Deployment(ctx context.Context, repo Repo, key string, d Deployment) error {
	return r.enqueue(ctx, nil, Write{Key: key, Deployment: &d}.op(r, repo))
}

// DeploymentStatus adds s to the deployment known as deploymentKey.
func (r *Reporter) DeploymentStatus(ctx context.Context, repo Repo, deploymentKey string, s DeploymentStatus) error {
	return r.enqueue(ctx, nil, Write{Key: deploymentKey, DeploymentStatus: &s}.op(r, repo))
}

// Write is one thing GitHub should show, as plain data: exactly one of
// CheckRun (create or update the check run known as Key), Deployment
// (create the deployment known as Key) or DeploymentStatus (add it to the
// deployment known as Key) is set.
type Write struct {
	Key              string
	CheckRun         *CheckRun
	Deployment       *Deployment
	DeploymentStatus *DeploymentStatus
}

// AddTx adds writes, in order, to pipe, a caller's MULTI, instead of
// committing them: what GitHub will be told then commits together with
// the state change that caused it, or not at all when that MULTI is
// discarded. It fails when a write cannot be encoded, or its repository
// cannot be marked in the index of outboxes about to get writes (then it
// also makes pipe's EXEC fail); then nothing of that write is added.
// After EXEC the caller calls Committed, so that the writes are sent.
func (r *Reporter) AddTx(ctx context.Context, pipe redis.Pipeliner, repo Repo, writes ...Write) error {
	for _, w := range writes {
		if err := r.enqueue(ctx, pipe, w.op(r, repo)); err != nil {
			return err
		}
	}
	return nil
}

// queued is an operation to enqueue with its bookkeeping (see enqueue).
type queued struct {
	o       *op
	field   string
	e       entry
	refresh []string
}

func (w Write) op(r *Reporter, repo Repo) queued {
	switch {
	case w.CheckRun != nil:
		return queued{o: &op{Kind: kindCheckRun, Repo: repo, Key: w.Key, CheckRun: w.CheckRun},
			field: checkRunField(w.Key), e: entry{Name: r.clean(w.CheckRun.Name)}}
	case w.Deployment != nil:
		return queued{o: &op{Kind: kindDeployment, Repo: repo, Key: w.Key, Deployment: w.Deployment},
			field: deploymentField(w.Key)}
	}
	s := w.DeploymentStatus
	if s == nil {
		s = &DeploymentStatus{}
	}
	// A status keeps alive what it needs when it is sent.
	refresh := []string{deploymentField(w.Key)}
	if s.LogURLCheckRun != "" {
		refresh = append(refresh, checkRunField(s.LogURLCheckRun))
	}
	return queued{o: &op{Kind: kindStatus, Repo: repo, Key: w.Key, Status: s}, refresh: refresh}
}

// Comment posts body on an issue or PR. "{{checkrun:KEY}}" in body is
// replaced at send time by that check run's html_url (or by its name if it
// has none). The comment ends with a hidden "<!-- railyard:ID -->", by
// which Railyard finds it again.
func (r *Reporter) Comment(ctx context.Context, repo Repo, issue int, body string) error {
	return r.enqueue(ctx, nil, queued{o: &op{Kind: kindComment, Repo: repo, Issue: issue, Body: body}})
}

// Reaction adds a reaction ("eyes", "rocket", "confused", …) to an issue
// or PR comment.
func (r *Reporter) Reaction(ctx context.Context, repo Repo, commentID int64, content string) error {
	return r.enqueue(ctx, nil, queued{o: &op{Kind: kindReaction, Repo: repo, CommentID: commentID, Content: content}})
}

// CheckRunURL returns the page of the check run known as key, or "" if it
// has not been created yet.
func (r *Reporter) CheckRunURL(ctx context.Context, repo Repo, key string) (string, error) {
	es, err := r.entries(ctx, keysFor(repo, status), checkRunField(key))
	if err != nil {
		return "", err
	}
	return es[0].HTMLURL, nil
}

// Pending counts queued operations across repositories.
func (r *Reporter) Pending(ctx context.Context) (int64, error) {
	bs, err := r.Backlog(ctx)
	var n int64
	for _, b := range bs {
		n += b.Pending
	}
	return n, err
}

// Backlog is what is queued of one class of writes across repositories.
type Backlog struct {
	Class   string // "conversation" or "status"
	Pending int64
	// Oldest is when the oldest write at the head of an outbox was queued;
	// zero when none is queued, or none says.
	Oldest time.Time
}

// Backlog returns what is queued, by class.
func (r *Reporter) Backlog(ctx context.Context) ([]Backlog, error) {
	var out []Backlog
	for _, c := range []class{conversation, status} {
		b := Backlog{Class: string(c)}
		members, err := r.rdb.ZRange(ctx, r.keys.readySet(c), 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("list outboxes: %w", err)
		}
		cmds, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range members {
				k := keysOf(m, c)
				p.LLen(ctx, k.outbox)
				p.LIndex(ctx, k.outbox, 0)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("count outboxes: %w", err)
		}
		for i := 0; i+1 < len(cmds); i += 2 {
			b.Pending += cmds[i].(*redis.IntCmd).Val()
			head, err := decodeOp(cmds[i+1].(*redis.StringCmd).Val())
			if err != nil || head.At == 0 {
				continue
			}
			if at := time.UnixMilli(head.At); b.Oldest.IsZero() || at.Before(b.Oldest) {
				b.Oldest = at
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// enqueue stores o at the end of its repository's outbox and marks the
// repository ready. When field is set, it also records o as the operation
// that creates that object, unless another one already does: that is how
// the first call for a key becomes the create and later ones updates.
// The entries of field and of refresh start their idTTL anew. With tx it
// adds its writes to that MULTI; without, it commits them in one of its own.
func (r *Reporter) enqueue(ctx context.Context, tx redis.Pipeliner, q queued) error {
	o, field, e, refresh := q.o, q.field, q.e, q.refresh
	o.ID, o.At = crand.Text(), r.opts.Now().UnixMilli()
	if err := r.sanitize(o); err != nil {
		return fmt.Errorf("encode %s: %w", o.Kind, err)
	}
	data, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode %s: %w", o.Kind, err)
	}
	c := classOf(o.Kind)
	k := keysFor(o.Repo, c)
	var created []byte
	if field != "" {
		e.Creator = o.ID
		if created, err = json.Marshal(e); err != nil {
			return fmt.Errorf("encode %s: %w", o.Kind, err)
		}
	}
	// The ready set is global and the outbox the repository's: on Redis
	// Cluster no MULTI spans both. So there the repository is first marked
	// in the class's index, the push commits on the repository's slot
	// alone, and only then is the outbox marked ready: a sender that
	// unmarks an outbox it found empty then never strands a push in
	// flight, and a crash before the ready mark leaves the index's mark
	// for a sweep. On one Redis the push marks it ready in its MULTI.
	if r.viaIndex {
		if err := r.pending(c).Mark(ctx, k.member); err != nil {
			if tx != nil {
				// Fail the caller's transaction rather than commit a write no
				// sweep could find: Redis refuses a command with too few
				// arguments while queueing it, and then the whole EXEC.
				tx.Do(ctx, "RPUSH", k.outbox)
			}
			return fmt.Errorf("queue %s for %s: %w", o.Kind, o.Repo.FullName(), err)
		}
	}
	add := func(p redis.Pipeliner) error {
		if field != "" {
			p.SetNX(ctx, k.object(field), created, idTTL)
			refresh = append(refresh, field)
		}
		for _, f := range refresh {
			p.Expire(ctx, k.object(f), idTTL)
		}
		p.RPush(ctx, k.outbox, data)
		if !r.viaIndex {
			// NX: a later time a rate limit set stays.
			p.ZAddNX(ctx, r.keys.readySet(c), redis.Z{Score: ms(r.opts.Now()), Member: k.member})
		}
		return nil
	}
	if tx != nil {
		// The caller calls Committed after its EXEC.
		add(tx)
		return nil
	}
	if _, err = r.rdb.TxPipelined(ctx, add); err != nil {
		return fmt.Errorf("queue %s for %s: %w", o.Kind, o.Repo.FullName(), err)
	}
	if r.viaIndex {
		r.markReady(ctx, k.member, c)
	} else {
		r.wakeSender(c)
	}
	return nil
}

// Committed makes the outboxes of repo ("owner/name") that a committed
// transaction wrote to (AddTx) ready to send: those marked in their
// class's index. Without it they are sent once their marks are due
// (Options.Grace), by a sweep.
func (r *Reporter) Committed(ctx context.Context, repo string) {
	if !r.viaIndex {
		// Ready since EXEC: only the senders need telling.
		r.wakeSender(status)
		r.wakeSender(conversation)
		return
	}
	member := strings.ToLower(repo)
	classes := []class{status, conversation}
	marks := make([]*redis.FloatCmd, len(classes))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range classes {
			marks[i] = p.ZScore(ctx, r.keys.markedSet(c), member)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		zerolog.Ctx(ctx).Warn().Err(err).Str("railyard_outbox", member).
			Msg("Could not read which outboxes a transaction wrote to; a sweep sends them in a few seconds.")
		return
	}
	for i, c := range classes {
		if marks[i].Err() == nil {
			r.markReady(ctx, member, c)
		}
	}
}

// markReady marks an outbox whose push committed ready to send (ZADD NX:
// a later time a rate limit set stays) and wakes a sender. A failure is
// logged: the sweep marks it later.
func (r *Reporter) markReady(ctx context.Context, member string, c class) {
	err := r.rdb.ZAddNX(ctx, r.keys.readySet(c), redis.Z{Score: float64(r.opts.Now().UnixMilli()), Member: member}).Err()
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("railyard_outbox", member).
			Msg("Could not mark an outbox ready; a sweep sends it in a few seconds.")
		return
	}
	r.wakeSender(c)
}

// wakeSender nudges an idle sender of class c in this process.
func (r *Reporter) wakeSender(c class) {
	select {
	case r.wake[c] <- struct{}{}:
	default:
	}
}

// pending is the index of outboxes of class c about to get writes.
func (r *Reporter) pending(c class) *store.Pending {
	return store.NewPending(r.rdb, r.keys.markedSet(c), r.opts.Grace)
}

// sweep marks ready the outboxes whose index marks are due, at most every
// sweepEvery: writes whose committer died before marking them, or whose
// transaction's caller never called Committed. On one Redis nothing is
// marked: a push marks its outbox ready in its own MULTI.
func (r *Reporter) sweep(ctx context.Context, c class) error {
	if !r.viaIndex {
		return nil
	}
	now := time.Now().UnixNano()
	next := r.nextSweep[c].Load()
	if now < next || !r.nextSweep[c].CompareAndSwap(next, now+sweepEvery.Nanoseconds()) {
		return nil
	}
	p := r.pending(c)
	members, err := p.Due(ctx, sweepBatch)
	if err != nil {
		return err
	}
	for _, m := range members {
		if err := r.rdb.ZAddNX(ctx, r.keys.readySet(c), redis.Z{Score: ms(r.opts.Now()), Member: m}).Err(); err != nil {
			return fmt.Errorf("mark outbox ready: %w", err)
		}
		if err := p.Done(ctx, m); err != nil {
			return err
		}
	}
	return nil
}
