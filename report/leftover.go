package report

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// leftovers are the outbox leases this process could not release because
// Redis could not be reached. Each would keep its outbox from every
// sender, this process's included, until it ran out (leaseTTL after its
// last renewal), though it is known to be free: after a 10 s outage
// GitHub got nothing for 50 s. The senders release them, and make their
// outboxes due, as soon as Redis answers again.
type leftovers struct {
	mu sync.Mutex
	m  map[string]leftover // by lease key
}

type leftover struct {
	k     repoKeys
	l     *outboxLease
	until time.Time // it runs out by itself by then
}

// keepLeftover remembers a lease whose release failed.
func (r *Reporter) keepLeftover(k repoKeys, l *outboxLease) {
	r.leftovers.mu.Lock()
	defer r.leftovers.mu.Unlock()
	if r.leftovers.m == nil {
		r.leftovers.m = map[string]leftover{}
	}
	r.leftovers.m[k.lease] = leftover{k: k, l: l, until: r.opts.Now().Add(leaseTTL)}
}

// releaseLeftovers releases the leases keepLeftover remembered (a lease
// that passed to another holder is left alone), and makes their outboxes
// due now: the reschedule that went with the release failed too.
func (r *Reporter) releaseLeftovers(ctx context.Context) {
	r.leftovers.mu.Lock()
	defer r.leftovers.mu.Unlock()
	for key, l := range r.leftovers.m {
		if r.opts.Now().After(l.until) {
			delete(r.leftovers.m, key)
			continue
		}
		err := l.l.Release(ctx)
		if err == nil {
			err = r.rdb.ZAddXX(ctx, r.keys.readySet(l.k.class), redis.Z{Score: ms(r.opts.Now()), Member: l.k.member}).Err()
		}
		if err != nil {
			return // Redis is still away: try again at the next look
		}
		zerolog.Ctx(ctx).Info().Str("railyard_outbox", l.k.member).Msg("Released an outbox lease left over from when Redis could not be reached.")
		delete(r.leftovers.m, key)
	}
}
