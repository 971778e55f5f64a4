// Package worker runs queue jobs: a pool of goroutines claims jobs, keeps
// their leases alive while a processor works, and acks, retries or hands
// them back. It knows nothing of what the jobs mean.
package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/railyard/railyard/queue"
)

// Processor does one job. A nil error acks it; an error retries it later.
// Processors must stop promptly when ctx is done.
type Processor func(ctx context.Context, job queue.Job) error

// Permanent marks an error that retrying cannot fix: the job is acked.
type Permanent struct{ Err error }

func (p Permanent) Error() string { return p.Err.Error() }
func (p Permanent) Unwrap() error { return p.Err }

// Observer hears how each job ended, for metrics.
type Observer func(kind, outcome string, took time.Duration)

// Pool claims and runs jobs.
type Pool struct {
	Queue      *queue.Queue
	Processors map[string]Processor
	Workers    int
	Consumer   string        // this process's name in the consumer group
	Wait       time.Duration // how long one claim blocks; default 1s
	Observe    Observer
	// Backoff is the wait before a failed job's next try, by how often it
	// was retried before; nil: doubling from 1s to a minute, jittered.
	Backoff func(retries int) time.Duration
	// GivenUp, when set, hears of each job the queue gave up on, so that
	// what waited for it can end rather than wait forever.
	GivenUp func(ctx context.Context, job queue.Job)
}

// Run runs Workers goroutines until ctx is done, then waits for them; jobs
// in hand are released for another process.
func (p *Pool) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range max(1, p.Workers) {
		wg.Go(func() { p.loop(ctx) })
	}
	wg.Wait()
	return nil
}

func (p *Pool) loop(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	wait := p.Wait
	if wait <= 0 {
		wait = time.Second
	}
	for ctx.Err() == nil {
		lease, err := p.Queue.Claim(ctx, p.Consumer, wait)
		if err != nil {
			if ctx.Err() == nil {
				log.Error().Err(err).Msg("Could not claim a job; trying again.")
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
			continue
		}
		if lease != nil {
			p.run(ctx, lease)
		}
	}
}

func (p *Pool) run(ctx context.Context, lease *queue.Lease) {
	job := lease.Job
	log := zerolog.Ctx(ctx).With().Str("railyard_queue_job", job.ID).Str("railyard_kind", job.Kind).Str("github_repository", job.Repo).Logger()
	jctx, stop := lease.KeepAlive(log.WithContext(ctx))
	defer stop()
	// Acks and hand-backs must reach the store even while shutting down.
	bg := context.WithoutCancel(jctx)

	start := time.Now()
	proc, ok := p.Processors[job.Kind]
	var err error
	if !ok {
		err = Permanent{errors.New("no processor for this kind of job")}
	} else {
		err = proc(jctx, job)
	}
	outcome := "done"
	var perm Permanent
	switch {
	case err == nil || errors.As(err, &perm):
		if err != nil {
			outcome = "dropped"
			log.Error().Err(err).Msg("Job cannot succeed; dropping it.")
		}
		if aerr := lease.Ack(bg); aerr != nil && !errors.Is(aerr, queue.ErrLeaseLost) {
			log.Error().Err(aerr).Msg("Could not ack job.")
		}
	case ctx.Err() != nil:
		outcome = "released"
		if rerr := lease.Release(bg); rerr != nil {
			log.Warn().Err(rerr).Msg("Could not hand job back; it returns when its lease runs out.")
		}
	case jctx.Err() != nil:
		outcome = "lost"
		log.Warn().Msg("Lease lost; another process has the job.")
	default:
		outcome = "retried"
		wait := p.Backoff
		if wait == nil {
			wait = backoff
		}
		delay := wait(job.Retries)
		log.Warn().Err(err).Dur("retry_in", delay).Int("railyard_job_retries", job.Retries).Msg("Job failed; retrying later.")
		switch rerr := lease.Retry(bg, delay); {
		case errors.Is(rerr, queue.ErrGivenUp):
			outcome = "given-up" // the queue logged it at error
			if p.GivenUp != nil {
				p.GivenUp(bg, job)
			}
		case rerr != nil:
			log.Error().Err(rerr).Msg("Could not schedule retry; the job returns when its lease runs out.")
		}
	}
	if p.Observe != nil {
		p.Observe(job.Kind, outcome, time.Since(start))
	}
}

// maxBackoff caps the wait between retries: a job waiting on GitHub or the
// network goes again within a minute of it coming back, as the outbox's
// writes do (package report).
const maxBackoff = time.Minute

// backoff is the wait before retry number retries+1: doubling from 1s up to
// maxBackoff, less up to a fifth at random so that jobs that failed
// together (an outage) do not all come back in the same instant.
func backoff(retries int) time.Duration {
	d := min(time.Second<<min(max(retries, 0), 16), maxBackoff)
	return d - rand.N(d/5+1)
}
