package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/railyard/railyard/report"
)

// outboxCollector reports, per class of writes to GitHub, how many are
// queued and how long the oldest has waited (-1 when the store did not
// answer), how often GitHub asked this process to wait, the points budget
// it spent, and the writes it held back and why.
type outboxCollector struct{ r *report.Reporter }

var (
	outboxDepthDesc = prometheus.NewDesc("railyard_github_outbox_depth",
		"Writes to GitHub not sent yet, by class: conversation (comments, reactions) or status (check runs, deployments).", []string{"class"}, nil)
	outboxAgeDesc = prometheus.NewDesc("railyard_github_outbox_oldest_seconds",
		"How long the oldest write to GitHub at the head of an outbox has waited, by class; 0 when none waits.", []string{"class"}, nil)
	limitedDesc = prometheus.NewDesc("railyard_github_rate_limited_total",
		"Answers by which GitHub asked this process to wait (403 or 429 with Retry-After, or an exhausted rate limit).", nil, nil)
	secondaryDesc = prometheus.NewDesc("railyard_github_secondary_limited_total",
		"Answers by which GitHub's secondary rate limit asked this process to wait (403 or 429 with Retry-After), by class.", []string{"class"}, nil)
	pointsDesc = prometheus.NewDesc("railyard_github_points_total",
		"Points of GitHub's per-minute budget (RAILYARD_GITHUB_POINTS_PER_MINUTE) this process spent on status writes, 5 a write.", nil, nil)
	heldDesc = prometheus.NewDesc("railyard_github_writes_held_total",
		"Times this process put a write to GitHub off, by class and reason: points_budget, content_limit, retry_after, rate_limit_exhausted, installation_busy.", []string{"class", "reason"}, nil)
)

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxDepthDesc
	ch <- outboxAgeDesc
	ch <- limitedDesc
	ch <- secondaryDesc
	ch <- pointsDesc
	ch <- heldDesc
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(limitedDesc, prometheus.CounterValue, float64(stats.Limited))
	ch <- prometheus.MustNewConstMetric(pointsDesc, prometheus.CounterValue, float64(stats.Points))
	for _, class := range []string{"conversation", "status"} {
		ch <- prometheus.MustNewConstMetric(secondaryDesc, prometheus.CounterValue, float64(stats.SecondaryLimited[class]), class)
	}
	for h, n := range stats.Held {
		ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.CounterValue, float64(n), h.Class, h.Reason)
	}
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
