package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/railyard/railyard/queue"
)

// metrics are Railyard's Prometheus metrics, all prefixed railyard_.
type metrics struct {
	registry *prometheus.Registry
	webhooks *prometheus.CounterVec
	intake   *prometheus.HistogramVec
	jobs     *prometheus.CounterVec
	jobTime  *prometheus.HistogramVec
}

func newMetrics(q *queue.Queue, outbox func(context.Context) (int64, error)) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "railyard_webhooks_total", Help: "Webhook deliveries by event and outcome.",
		}, []string{"event", "outcome"}),
		intake: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "railyard_webhook_intake_seconds", Help: "Time to answer a webhook delivery.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"event"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "railyard_jobs_total", Help: "Queue jobs run by kind and outcome.",
		}, []string{"kind", "outcome"}),
		jobTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "railyard_job_duration_seconds", Help: "Time spent running queue jobs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"kind"}),
	}
	depth := func(pick func(queue.Depth) int64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			d, err := q.Depth(ctx)
			if err != nil {
				return -1
			}
			return float64(pick(d))
		}
	}
	m.registry.MustRegister(
		m.webhooks, m.intake, m.jobs, m.jobTime,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "railyard_queue_ready", Help: "Jobs waiting to be claimed."}, depth(func(d queue.Depth) int64 { return d.Ready })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "railyard_queue_leased", Help: "Jobs being worked on."}, depth(func(d queue.Depth) int64 { return d.Leased })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "railyard_queue_delayed", Help: "Jobs waiting for a retry."}, depth(func(d queue.Depth) int64 { return d.Delayed })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "railyard_queue_dead", Help: "Jobs given up after too many deliveries."}, depth(func(d queue.Depth) int64 { return d.Dead })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "railyard_github_outbox_pending", Help: "Writes to GitHub not sent yet."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := outbox(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}),
	)
	return m
}

func (m *metrics) observeJob(kind, outcome string, took time.Duration) {
	m.jobs.WithLabelValues(kind, outcome).Inc()
	m.jobTime.WithLabelValues(kind).Observe(took.Seconds())
}
