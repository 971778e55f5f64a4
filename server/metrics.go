package server

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/railyard/railyard/command"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/handlers"
	"github.com/railyard/railyard/internal/githubmetrics"
	"github.com/railyard/railyard/queue"
)

// metrics are Railyard's Prometheus metrics, all prefixed railyard_, and
// the Go runtime's and the process's. Every label value comes from a fixed
// list or is bounded here; nothing a request sends becomes a label as is.
type metrics struct {
	registry  *prometheus.Registry
	events    map[string]bool // event names that may be labels
	webhooks  *prometheus.CounterVec
	intake    *prometheus.HistogramVec
	jobs      *prometheus.CounterVec
	jobTime   *prometheus.HistogramVec
	stageJobs *prometheus.CounterVec
	stageTime *prometheus.HistogramVec
	commands  *prometheus.CounterVec
	stages    stageLabels
}

// Webhook event labels besides the names of the events Railyard handles.
const (
	eventOther      = "other"      // a signed delivery of any other event
	eventUnverified = "unverified" // a delivery whose signature did not check: its event header is the sender's word
)

// maxStageLabels bounds the stage label of stage job metrics (see
// stageLabels); stageOther labels the rest, and cannot be a stage's name.
const (
	maxStageLabels = 20
	stageOther     = "_other"
)

func newMetrics(github *githubmetrics.Metrics, events []string) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		events:   map[string]bool{},
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "railyard_webhooks_total", Help: "Webhook deliveries by event and HTTP status answered.",
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
		stageJobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "railyard_stage_jobs_total", Help: "Stage jobs that started, by stage, operation and result.",
		}, []string{"stage", "operation", "result"}),
		stageTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "railyard_stage_job_duration_seconds", Help: "Time from a stage job's start to its end, by stage and operation.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"stage", "operation"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "railyard_commands_total", Help: "Slash commands and check run buttons, by command and result.",
		}, []string{"command", "result"}),
		stages: stageLabels{max: maxStageLabels, seen: map[string]bool{}},
	}
	for _, e := range events {
		m.events[e] = true
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		github,
		m.webhooks, m.intake, m.jobs, m.jobTime, m.stageJobs, m.stageTime, m.commands,
	)
	return m
}

// watch adds the gauges read from the store at each scrape: the depth of
// each queue, and the writes to GitHub not sent yet.
func (m *metrics) watch(queues []NamedQueue, outbox func(context.Context) (int64, error)) {
	m.registry.MustRegister(
		depthCollector(queues),
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
}

// event is the label of a verified delivery's event.
func (m *metrics) event(name string) string {
	if m.events[name] {
		return name
	}
	return eventOther
}

// outcomes are the labels of the statuses webhooks answer with, made once:
// strconv would allocate one for each delivery.
var outcomes = func() (o [600]string) {
	for code := range o {
		o[code] = strconv.Itoa(code)
	}
	return o
}()

func (m *metrics) observeWebhook(event string, status int, took time.Duration) {
	outcome := "other"
	if status >= 0 && status < len(outcomes) {
		outcome = outcomes[status]
	}
	m.webhooks.WithLabelValues(event, outcome).Inc()
	m.intake.WithLabelValues(event).Observe(took.Seconds())
}

func (m *metrics) observeJob(kind, outcome string, took time.Duration) {
	m.jobs.WithLabelValues(kind, outcome).Inc()
	m.jobTime.WithLabelValues(kind).Observe(took.Seconds())
}

func (m *metrics) observeStageJob(stage string, op engine.Operation, result string, took time.Duration) {
	stage = m.stages.label(stage)
	m.stageJobs.WithLabelValues(stage, string(op), result).Inc()
	m.stageTime.WithLabelValues(stage, string(op)).Observe(took.Seconds())
}

// observeCommand counts a command under its canonical name; a line that
// names no command is "unknown".
func (m *metrics) observeCommand(name command.Name, result handlers.CommandResult) {
	label := "unknown"
	if spec, ok := command.Lookup(string(name)); ok {
		label = string(spec.Name)
	}
	m.commands.WithLabelValues(label, string(result)).Inc()
}

// stageLabels bounds the stage label. Stage names come from repositories'
// pipeline files, so one Railyard serving many repositories could see any
// number of them; most use a few shared ones (build, staging, prod). The
// first max names seen label their own series for as long as the process
// runs (a label whose meaning changed would break rates), and later ones
// share stageOther. With about 10 operations, 4 results and 12 series per
// histogram, that caps stage job metrics at some 3,400 series.
type stageLabels struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func (l *stageLabels) label(stage string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[stage] {
		return stage
	}
	if len(l.seen) >= l.max {
		return stageOther
	}
	l.seen[stage] = true
	return stage
}

// depthCollector reports the jobs in each queue, by name, by where they
// are, reading each queue's depth once per scrape; -1 when the store did
// not answer.
type depthCollector []NamedQueue

var depthDescs = []struct {
	desc *prometheus.Desc
	pick func(queue.Depth) int64
}{
	{prometheus.NewDesc("railyard_queue_ready", "Jobs waiting to be claimed.", []string{"queue"}, nil), func(d queue.Depth) int64 { return d.Ready }},
	{prometheus.NewDesc("railyard_queue_leased", "Jobs being worked on.", []string{"queue"}, nil), func(d queue.Depth) int64 { return d.Leased }},
	{prometheus.NewDesc("railyard_queue_delayed", "Jobs waiting for a retry.", []string{"queue"}, nil), func(d queue.Depth) int64 { return d.Delayed }},
	{prometheus.NewDesc("railyard_queue_dead", "Jobs given up (failing for RAILYARD_RETRY_FOR, or their holders kept dying) and kept in the dead-letter stream.", []string{"queue"}, nil), func(d queue.Depth) int64 { return d.Dead }},
}

func (c depthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range depthDescs {
		ch <- d.desc
	}
}

func (c depthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, nq := range c {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		depth, err := nq.Queue.Depth(ctx)
		cancel()
		for _, d := range depthDescs {
			v := float64(d.pick(depth))
			if err != nil {
				v = -1
			}
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, v, nq.Name)
		}
	}
}
