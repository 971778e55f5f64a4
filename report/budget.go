package report

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/lease"
)

// The budget of an installation's writes, class by class: the pacing
// windows, the holds GitHub asks for, one status request at a time across
// processes, and the record of writes delayed long.

const (
	// longDelay is how long writes may wait on the budget before the logs
	// and the status page say why.
	longDelay = time.Minute
	// busyRetry is how soon an outbox whose installation's status another
	// process is sending is tried again; its sender does other
	// installations meanwhile.
	busyRetry = 500 * time.Millisecond
	// resetMargin is added to GitHub's X-RateLimit-Reset, which is in
	// whole seconds and by GitHub's clock.
	resetMargin = time.Second
)

// turnOptions time an installation's turn to send status: renewed in the
// background, so a dead process holds it at most 15 s.
var turnOptions = lease.Options{TTL: 15 * time.Second, Renew: 5 * time.Second, Margin: 5 * time.Second}

// Why writes wait: the hold reasons kept in Redis, which are also the
// reason labels of railyard_github_writes_held_total.
const (
	reasonPoints    = "points_budget"        // Options.PointsPerMinute
	reasonContent   = "content_limit"        // Options.PerMinute, PerHour
	reasonRetry     = "retry_after"          // GitHub's secondary limit: Retry-After
	reasonExhausted = "rate_limit_exhausted" // X-RateLimit-Remaining 0 until X-RateLimit-Reset
	reasonBusy      = "installation_busy"    // another process is sending its status
)

// delayLua records in a hash that writes queued at since wait until untl
// for why, keeping the earliest since, for as long as the wait lasts and 5
// minutes more. It returns {untl, why, log, since}: log is 1 for the one
// caller, of all processes, that logs the delay once it is long.
const delayLua = `
local function delay(key, now, since, untl, why)
  redis.call("HSETNX", key, "since", since)
  redis.call("HSET", key, "until", untl, "why", why)
  redis.call("PEXPIRE", key, math.max(untl - now, 0) + 300000)
  local first = tonumber(redis.call("HGET", key, "since"))
  local log = 0
  if math.max(now, untl) - first >= tonumber(ARGV[#ARGV]) and redis.call("HSETNX", key, "logged", 1) == 1 then log = 1 end
  return {untl, why, log, first}
end
local function hold(v)
  if not v then return 0, "" end
  local untl, why = string.match(v, "^(%d+) ?(%S*)")
  if why == nil or why == "" then why = "retry_after" end -- as earlier versions held
  return tonumber(untl) or 0, why
end
`

var (
	// paceScript takes a request from an installation's sliding windows
	// of one class, or says until when it must wait and why: GitHub's hold
	// first, then each window. A window is a log of the requests' times,
	// so no boundary lets twice its budget through. A negative limit is
	// none.
	// KEYS: hold, log, delay. ARGV: now ms, member, queued ms, why when a
	// window is full, limit, window ms, limit, window ms, long delay ms.
	// Returns {0, "", 0, 0, delayed} to go (delayed: a delay is on
	// record), else delay's answer.
	paceScript = redis.NewScript(delayLua + `
local now = tonumber(ARGV[1])
local delayed = redis.call("EXISTS", KEYS[3])
local held, why = hold(redis.call("GET", KEYS[1]))
if held > now then return delay(KEYS[3], now, tonumber(ARGV[3]), held, why) end
local longest, wait = 0, 0
for i = 5, 7, 2 do
  if tonumber(ARGV[i]) >= 0 then longest = math.max(longest, tonumber(ARGV[i + 1])) end
end
if longest == 0 then return {0, "", 0, 0, delayed} end
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now - longest)
local total = redis.call("ZCARD", KEYS[2])
for i = 5, 7, 2 do
  local limit, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if limit >= 0 and redis.call("ZCOUNT", KEYS[2], string.format("(%d", now - window), "+inf") >= limit then
    -- A place frees when the request limit places from the newest leaves.
    local e = redis.call("ZRANGE", KEYS[2], total - limit, total - limit, "WITHSCORES")
    wait = math.max(wait, tonumber(e[2]) + window)
  end
end
if wait > 0 then return delay(KEYS[3], now, tonumber(ARGV[3]), wait, ARGV[4]) end
redis.call("ZADD", KEYS[2], now, ARGV[2])
redis.call("PEXPIRE", KEYS[2], longest)
return {0, "", 0, 0, delayed}`)

	// holdScript holds an installation's writes of one class until ARGV[2]
	// for ARGV[3] unless it already holds them longer, and records the
	// delay. KEYS: hold, delay. ARGV: now ms, until ms, why, queued ms,
	// long delay ms. Returns delay's answer.
	holdScript = redis.NewScript(delayLua + `
local now, untl = tonumber(ARGV[1]), tonumber(ARGV[2])
local held, why = hold(redis.call("GET", KEYS[1]))
if held < untl then
  redis.call("SET", KEYS[1], ARGV[2] .. " " .. ARGV[3], "PX", untl - now)
  held, why = untl, ARGV[3]
end
return delay(KEYS[2], now, tonumber(ARGV[4]), held, why)`)
)

// wait is what the budget says of a write.
type wait struct {
	until time.Time // zero: go
	why   string    // a reason*
	since time.Time // when the writes it delays were queued
	log   bool      // this caller logs the delay: it is long
	// delayed says, when the write may go, that a delay of its class is
	// on record: sent promptly, it ends it.
	delayed bool
}

func parseWait(v any) (wait, error) {
	a, ok := v.([]any)
	if !ok || len(a) < 4 {
		return wait{}, fmt.Errorf("unexpected answer %v", v)
	}
	num := func(i int) int64 { n, _ := a[i].(int64); return n }
	w := wait{why: fmt.Sprint(a[1]), log: num(2) == 1}
	if u := num(0); u != 0 {
		w.until, w.since = time.UnixMilli(u), time.UnixMilli(num(3))
	}
	if len(a) > 4 {
		w.delayed = num(4) == 1
	}
	return w, nil
}

// limits are the windows of class c's budget, in requests: a limit and
// a window each, a negative limit none.
func (r *Reporter) limits(c class) (why string, args []any) {
	if c == status {
		return reasonPoints, []any{requests(r.opts.PointsPerMinute, writePoints), time.Minute.Milliseconds(), -1, 0}
	}
	return reasonContent, []any{requests(r.opts.PerMinute, 1), time.Minute.Milliseconds(), requests(r.opts.PerHour, 1), time.Hour.Milliseconds()}
}

// requests is how many requests of cost fit in budget, at least one.
func requests(budget, cost int) int {
	if budget < 0 {
		return -1
	}
	return max(budget/cost, 1)
}

// pace takes one request of class c from the installation's budget, or
// says how long it must wait and why: conversation by GitHub's
// content-creation limits, status by the points budget of the minute.
// Either waits first while GitHub asked the class to (see holdOff).
// queued is when the write was queued.
func (r *Reporter) pace(ctx context.Context, installationID int64, c class, queued time.Time) (wait, error) {
	now := r.opts.Now()
	why, limits := r.limits(c)
	keys := []string{r.keys.hold(installationID, c), r.keys.paceLog(installationID, c), r.keys.delay(installationID, c)}
	args := append([]any{now.UnixMilli(), strconv.FormatUint(rand.Uint64(), 36), queued.UnixMilli(), why}, limits...)
	v, err := paceScript.Run(ctx, r.rdb, keys, append(args, longDelay.Milliseconds())...).Result()
	if err != nil {
		return wait{}, fmt.Errorf("pace requests: %w", err)
	}
	w, err := parseWait(v)
	if err != nil {
		return wait{}, fmt.Errorf("pace requests: %w", err)
	}
	if w.until.IsZero() && c == status {
		r.points.Add(writePoints)
	}
	return w, nil
}

// holdOff makes the installation's writes of class c wait until until, as
// GitHub asked (why): one answer stops every repository's outbox, not only
// the one that got it.
func (r *Reporter) holdOff(ctx context.Context, installationID int64, c class, until time.Time, why string, queued time.Time) (wait, error) {
	now := r.opts.Now()
	if !until.After(now) {
		return wait{}, nil
	}
	keys := []string{r.keys.hold(installationID, c), r.keys.delay(installationID, c)}
	v, err := holdScript.Run(ctx, r.rdb, keys, now.UnixMilli(), until.UnixMilli(), why, queued.UnixMilli(), longDelay.Milliseconds()).Result()
	if err != nil {
		return wait{}, fmt.Errorf("hold requests: %w", err)
	}
	w, err := parseWait(v)
	if err != nil {
		return wait{}, fmt.Errorf("hold requests: %w", err)
	}
	return w, nil
}

// sent tells the budget GitHub accepted a write of class c queued at
// queued, whose answer carried header. An answer that spent the last of
// the rate limit holds the class until the limit resets, rather than let
// the next write run into a 403. A write sent within longDelay of being
// queued ends a delay on record.
func (r *Reporter) sentWrite(ctx context.Context, installationID int64, c class, queued time.Time, paced wait, header http.Header) (wait, error) {
	if header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			until := maxTime(time.Unix(reset, 0).Add(resetMargin), r.opts.Now().Add(time.Second))
			return r.holdOff(ctx, installationID, c, until, reasonExhausted, queued)
		}
	}
	if paced.delayed && r.opts.Now().Sub(queued) < longDelay {
		if err := r.rdb.Del(ctx, r.keys.delay(installationID, c)).Err(); err != nil {
			return wait{}, fmt.Errorf("end delay: %w", err)
		}
	}
	return wait{}, nil
}

// Delay says why an installation's writes of one class have waited long.
type Delay struct {
	Class string    // "conversation" or "status"
	Since time.Time // when the oldest write held was queued
	Until time.Time // when they may go again, as far as known
	// Why is the reason: "points_budget", "content_limit", "retry_after"
	// or "rate_limit_exhausted".
	Why string
}

// Reason says why, briefly, for a log.
func (d Delay) Reason() string {
	until := d.Until.UTC().Format("15:04:05 UTC")
	switch d.Why {
	case reasonPoints:
		return "points budget"
	case reasonContent:
		return "content limit"
	case reasonRetry:
		return "GitHub Retry-After until " + until
	case reasonExhausted:
		return "rate limit exhausted until " + until
	}
	return d.Why
}

// Message says it to a person, as the status page does.
func (d Delay) Message() string {
	until := d.Until.UTC().Format("15:04 UTC")
	what := "status writes (check runs, deployments)"
	if d.Class == string(conversation) {
		what = "comments and reactions"
	}
	why := d.Why
	switch d.Why {
	case reasonPoints:
		why = "Railyard's points budget for status writes (RAILYARD_GITHUB_POINTS_PER_MINUTE) is spent until " + until
	case reasonContent:
		why = "Railyard paces them to GitHub's content-creation limit (RAILYARD_GITHUB_CONTENT_PER_MINUTE, _PER_HOUR) until " + until
	case reasonRetry:
		why = "GitHub asked to wait until " + until + " (secondary rate limit)"
	case reasonExhausted:
		why = "the installation's GitHub rate limit is exhausted until " + until
	}
	return fmt.Sprintf("GitHub %s delayed since %s: %s", what, d.Since.UTC().Format("15:04 UTC"), why)
}

// Delays returns why the installation's writes have waited long, if they
// have, by class.
func (r *Reporter) Delays(ctx context.Context, installationID int64) ([]Delay, error) {
	var out []Delay
	now := r.opts.Now()
	for _, c := range []class{conversation, status} {
		h, err := r.rdb.HGetAll(ctx, r.keys.delay(installationID, c)).Result()
		if err != nil {
			return nil, fmt.Errorf("read delays: %w", err)
		}
		since, err1 := strconv.ParseInt(h["since"], 10, 64)
		until, err2 := strconv.ParseInt(h["until"], 10, 64)
		if err1 != nil || err2 != nil {
			continue // none, or not one this version wrote
		}
		d := Delay{Class: string(c), Since: time.UnixMilli(since), Until: time.UnixMilli(until), Why: h["why"]}
		if maxTime(now, d.Until).Sub(d.Since) >= longDelay {
			out = append(out, d)
		}
	}
	return out, nil
}

// turn is this process's side of one installation's turn to send status.
type turn struct {
	mu    sync.Mutex // held around each of this process's status requests
	lease *lease.Lease
	held  context.Context // done when the lease is lost
	stop  func()          // stops renewing it
	users int             // senders holding or waiting for mu; guarded by Reporter.turnsMu
}

// takeTurn waits for this process's senders of the installation's status
// ahead of it, then makes sure this process holds the installation's turn
// across processes, which it keeps while any of its senders wants it. ok
// is false while another process holds it.
func (r *Reporter) takeTurn(ctx context.Context, installationID int64) (release func(), ok bool, err error) {
	r.turnsMu.Lock()
	t := r.turns[installationID]
	if t == nil {
		t = &turn{}
		r.turns[installationID] = t
	}
	t.users++
	r.turnsMu.Unlock()
	t.mu.Lock()
	release = func() { r.leaveTurn(ctx, t) }
	if t.lease != nil && t.held.Err() != nil {
		t.stop() // lost: it ran out, or Redis was away too long
		t.lease = nil
	}
	if t.lease == nil {
		l, err := lease.Take(ctx, r.rdb, r.keys.turn(installationID), turnOptions)
		if err != nil {
			release()
			if errors.Is(err, lease.ErrHeld) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("take installation's turn: %w", err)
		}
		t.lease = l
		t.held, t.stop = l.Keep(context.WithoutCancel(ctx))
	}
	return release, true, nil
}

// leaveTurn ends a sender's request; the last of the process's senders
// gives the installation's turn back.
func (r *Reporter) leaveTurn(ctx context.Context, t *turn) {
	r.turnsMu.Lock()
	last := t.users == 1
	r.turnsMu.Unlock()
	if last && t.lease != nil {
		t.stop()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = t.lease.Release(ctx) // or it runs out
		cancel()
		t.lease = nil
	}
	r.turnsMu.Lock()
	t.users--
	r.turnsMu.Unlock()
	t.mu.Unlock()
}

// observe returns gh with its answers' headers kept in *last, for what
// GitHub says of the rate limit on success.
func observe(gh *github.Client, last *http.Header) *github.Client {
	hc := gh.Client()
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if resp != nil {
			*last = resp.Header
		}
		return resp, err
	})
	c := github.NewClient(hc)
	c.BaseURL, c.UploadURL, c.UserAgent = gh.BaseURL, gh.UploadURL, gh.UserAgent
	return c
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// queuedAt is when o was queued; now for what earlier versions queued.
func queuedAt(o *op, now time.Time) time.Time {
	if o.At == 0 {
		return now
	}
	return time.UnixMilli(o.At)
}

// noteWait counts a write put off, and logs it: at warn, once per
// episode across processes, when writes wait long.
func (r *Reporter) noteWait(log zerolog.Logger, c class, w wait) {
	if w.until.IsZero() {
		return
	}
	r.countHeld(c, w.why)
	d := Delay{Class: string(c), Since: w.since, Until: w.until, Why: w.why}
	if !w.log {
		log.Debug().Time("until", w.until).Str("railyard_class", string(c)).Str("reason", d.Reason()).Msg("The installation's writes of this class wait.")
		return
	}
	log.Warn().Str("railyard_class", string(c)).Str("reason", d.Reason()).Time("since", d.Since).Time("until", d.Until).
		Str("railyard_delay", d.Message()).Msg("Writes to GitHub have been delayed more than a minute.")
}

func (r *Reporter) countHeld(c class, why string) {
	r.countsMu.Lock()
	defer r.countsMu.Unlock()
	r.held[Held{string(c), why}]++
}

func (r *Reporter) countSecondary(c class) {
	r.countsMu.Lock()
	defer r.countsMu.Unlock()
	r.secondary[string(c)]++
}
