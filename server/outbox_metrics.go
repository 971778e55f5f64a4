package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/railyard/railyard/report"
)

// outboxCollector reports, per class of writes to GitHub, how many are
// queued and how long the oldest has waited (-1 when the store did not
// answer), and how often GitHub asked this process to wait.
type outboxCollector struct{ r *report.Reporter }

var (
	outboxDepthDesc = prometheus.NewDesc("railyard_github_outbox_depth",
		"Writes to GitHub not sent yet, by class: conversation (comments, reactions) or status (check runs, deployments).", []string{"class"}, nil)
	outboxAgeDesc = prometheus.NewDesc("railyard_github_outbox_oldest_seconds",
		"How long the oldest write to GitHub at the head of an outbox has waited, by class; 0 when none waits.", []string{"class"}, nil)
	limitedDesc = prometheus.NewDesc("railyard_github_rate_limited_total",
		"Answers by which GitHub asked this process to wait (403 or 429 with Retry-After, or an exhausted rate limit).", nil, nil)
)

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxDepthDesc
	ch <- outboxAgeDesc
	ch <- limitedDesc
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(limitedDesc, prometheus.CounterValue, float64(c.r.Stats().Limited))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	backlog, err := c.r.Backlog(ctx)
	if err != nil {
		for _, class := range []string{"conversation", "status"} {
			ch <- prometheus.MustNewConstMetric(outboxDepthDesc, prometheus.GaugeValue, -1, class)
			ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, -1, class)
		}
		return
	}
	for _, b := range backlog {
		age := 0.0
		if !b.Oldest.IsZero() {
			age = max(time.Since(b.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(outboxDepthDesc, prometheus.GaugeValue, float64(b.Pending), b.Class)
		ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age, b.Class)
	}
}
