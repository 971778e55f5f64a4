package queue

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// maxGroup bounds how many enqueues share one round trip.
const maxGroup = 128

// errGroupAborted is what an enqueue waiting in a group gets when the
// goroutine sending the group panicked before Redis answered.
var errGroupAborted = errors.New("the round trip carrying this job failed")

// onceCall is one EnqueueOnce: the script's keys and arguments, then its
// reply.
type onceCall struct {
	keys []string
	args []any
	res  []any
	err  error
	// done says true when another goroutine sent the call, false when this
	// one is to send the next group.
	done chan bool
}

// groupCommit sends concurrent EnqueueOnce calls to Redis together. While
// one round trip is in flight, the calls that arrive wait; its sender then
// hands over to the first of them, which sends them all in one pipeline. A
// lone call goes at once, in a round trip of its own; under load, many
// webhooks share one round trip and Redis's and the process's system calls
// for it (BENCHMARKS.md). Each call still runs the whole enqueue-once
// script, so atomicity is per call as before.
//
// go-redis's AutoPipeline does this for any command, but is experimental
// and, measured here, cost a quarter of intake throughput at 4 concurrent
// webhooks where this costs nothing.
type groupCommit struct {
	mu      sync.Mutex
	pending []*onceCall
	sending bool
}

// do returns when c has its reply, having sent it, alone or with others,
// or waited for another goroutine to.
func (g *groupCommit) do(ctx context.Context, rdb redis.UniversalClient, c *onceCall) {
	c.done = make(chan bool, 1)
	g.mu.Lock()
	g.pending = append(g.pending, c)
	lead := !g.sending
	g.sending = true
	g.mu.Unlock()
	if !lead && <-c.done {
		return
	}

	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	group := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()
	for _, x := range group {
		x.err = errGroupAborted // until the reply says otherwise
	}
	defer func() {
		// Even if sending panicked: nobody waits forever.
		for _, x := range group {
			if x != c {
				x.done <- true
			}
		}
		g.mu.Lock()
		if len(g.pending) > 0 {
			g.pending[0].done <- false
		} else {
			g.sending = false
		}
		g.mu.Unlock()
	}()
	send(ctx, rdb, group)
}

// send runs the enqueue-once script for each call in one round trip.
func send(ctx context.Context, rdb redis.UniversalClient, group []*onceCall) {
	if len(group) == 1 {
		c := group[0]
		c.res, c.err = enqueueOnceScript.Run(ctx, rdb, c.keys, c.args...).Slice()
		return
	}
	// The group is others' too: one caller giving up must not fail it.
	ctx = context.WithoutCancel(ctx)
	cmds := make([]*redis.Cmd, len(group))
	_, perr := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range group {
			cmds[i] = enqueueOnceScript.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	for i, c := range group {
		c.res, c.err = cmds[i].Slice()
		if cmds[i].Err() == nil && cmds[i].Val() == nil {
			c.err = cmp.Or(perr, errGroupAborted) // no reply: the pipeline failed before it
		}
		if c.err != nil && strings.HasPrefix(c.err.Error(), "NOSCRIPT") {
			// Redis lost its scripts (restart, SCRIPT FLUSH): Run loads it.
			c.res, c.err = enqueueOnceScript.Run(ctx, rdb, c.keys, c.args...).Slice()
		}
	}
}
