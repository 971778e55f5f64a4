package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/lease"
)

// Lease is one consumer's hold on one delivery of a job. Every method checks
// on the server, atomically, that the job is still this lease's. It is a
// lease.Renewer: KeepAlive keeps it with package lease's loop.
type Lease struct {
	Job Job

	q        *Queue
	consumer string
	count    int       // the entry's delivery count when handed out: tells this lease from later ones
	prior    int       // deliveries before this stream entry
	raw      string    // the entry as stored
	sent     time.Time // when the request that handed it out was sent
}

// Renew extends the lease for another Options.Lease. It returns ErrLeaseLost
// if another consumer took the job over or it was acked.
func (l *Lease) Renew(ctx context.Context) error {
	return l.run(ctx, "extend lease", renewScript, []string{l.q.stream}, 0)
}

// Ack marks the job done: it is never handed out again. It returns
// ErrLeaseLost if the job is no longer this lease's; the new holder will
// then run it (again).
func (l *Lease) Ack(ctx context.Context) error {
	return l.run(ctx, "ack", ackScript, []string{l.q.stream})
}

// Release hands the job back now, for example on shutdown: any consumer can
// claim it at once. The delivery still counts towards Options.MaxDeliveries.
func (l *Lease) Release(ctx context.Context) error {
	return l.run(ctx, "release lease", renewScript, []string{l.q.stream}, l.q.leaseMs)
}

// ErrGivenUp is what Retry returns when it dead-lettered the job instead:
// it had been failing for Options.RetryFor.
var ErrGivenUp = errors.New("queue: job failed for too long; dead-lettered")

// Retry acks this delivery and enqueues the same job again, claimable after
// delay, keeping its counts. A job failing for Options.RetryFor since its
// first failure goes to the dead-letter stream instead, and Retry returns
// ErrGivenUp.
func (l *Lease) Retry(ctx context.Context, delay time.Duration) error {
	now := time.Now()
	if !l.Job.FailingSince.IsZero() && now.Sub(l.Job.FailingSince) >= l.q.opts.RetryFor {
		if err := l.bury(ctx, l.Job.Deliveries); err != nil {
			return err
		}
		return ErrGivenUp
	}
	next := l.Job
	next.Retries++
	if next.FailingSince.IsZero() {
		next.FailingSince = now
	}
	job := encode(next, next.Deliveries, true)
	return l.run(ctx, "retry", retryScript, []string{l.q.stream, l.q.delayed}, delay.Milliseconds(), job)
}

// bury moves the job to the dead-letter stream, recording that it was
// handed out deliveries times.
func (l *Lease) bury(ctx context.Context, deliveries int) error {
	job := l.raw
	if _, err := decode(l.raw); err == nil {
		job = encode(l.Job, deliveries, false)
	}
	keys := []string{l.q.stream, l.q.dead}
	if l.Job.once != "" {
		keys = append(keys, l.Job.once)
	}
	if err := l.run(ctx, "dead-letter", buryScript, keys, job, l.q.opts.DeadKept); err != nil {
		return err
	}
	e := l.log(zerolog.Ctx(ctx).Error()).Int("railyard_job_deliveries", deliveries).Int("railyard_job_retries", l.Job.Retries)
	if !l.Job.FailingSince.IsZero() {
		e = e.Time("railyard_job_failing_since", l.Job.FailingSince)
	}
	e.Msg("Job given up and moved to the dead-letter stream; `bot jobs` lists and replays it.")
	return nil
}

// run runs a lease script; see owned in scripts.go for the arguments.
func (l *Lease) run(ctx context.Context, what string, s *redis.Script, keys []string, extra ...any) error {
	args := append([]any{l.q.opts.Group, l.consumer, l.Job.ID, l.count}, extra...)
	ok, err := s.Run(ctx, l.q.rdb, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("%s job %s: %w", what, l.Job.ID, err)
	}
	if ok == 0 {
		return ErrLeaseLost
	}
	return nil
}

func (l *Lease) log(e *zerolog.Event) *zerolog.Event {
	return e.Str("railyard_job", l.Job.ID).Str("railyard_job_kind", l.Job.Kind).Str("railyard_repository", l.Job.Repo)
}

// KeepAlive renews the lease (package lease's Keep, with Options.lease's
// timings) until ctx is done, stop is called, or the lease is lost. The
// returned context is cancelled, with a cause wrapping ErrLeaseLost's
// lease.ErrLost, when the lease is lost or could not be renewed in time
// (Redis unreachable): the worker must stop work it may no longer own.
// stop ends the keep-alive, waits for its goroutine and cancels the
// returned context; call it once the work is done, before or after Ack.
func (l *Lease) KeepAlive(ctx context.Context) (lost context.Context, stop func()) {
	return lease.Keep(ctx, l, l.q.opts.lease(), l.sent)
}
