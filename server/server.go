// Package server wires Railyard together: store, queue, GitHub clients,
// reporter, engine, handlers, workers and the HTTP endpoints. New reads top
// to bottom as the architecture; Run starts everything and stops it cleanly.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/railyard/railyard/actions"
	"github.com/railyard/railyard/config"
	"github.com/railyard/railyard/engine"
	"github.com/railyard/railyard/gate"
	"github.com/railyard/railyard/handlers"
	"github.com/railyard/railyard/internal/githubmetrics"
	"github.com/railyard/railyard/queue"
	"github.com/railyard/railyard/report"
	"github.com/railyard/railyard/runner"
	"github.com/railyard/railyard/source"
	"github.com/railyard/railyard/statuspage"
	"github.com/railyard/railyard/store"
	"github.com/railyard/railyard/worker"
)

// Version is the bot's version, set by cmd/bot.
var Version = "dev"

// Options are knobs tests and benchmarks turn; production uses the zero value.
type Options struct {
	Engine  engine.Options
	Report  report.Options
	Queue   queue.Options
	Actions actions.Options
	// ClaimWait is how long an idle worker's claim blocks (worker.Pool.Wait,
	// default 1 s). A blocked read outlives its context, so it is also how
	// long stopping waits for idle workers.
	ClaimWait time.Duration
}

// Server is a running Railyard.
type Server struct {
	env      config.Env
	log      zerolog.Logger
	store    *store.Store
	queues   Queues
	reporter *report.Reporter
	engine   *engine.Engine
	pools    []*worker.Pool
	metrics  *metrics
	bodies   *bodyBudget // for webhook bodies whose signature is not yet checked
	handler  http.Handler
}

// New builds a server from the environment. It connects to the store but
// starts nothing; Run does.
func New(ctx context.Context, env config.Env, log zerolog.Logger, opts Options) (*Server, error) {
	if err := opts.Engine.Check(); err != nil {
		return nil, err
	}
	sandbox, err := stepSandbox(env, log)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, env.RedisURL, env.RedisCluster)
	if err != nil {
		return nil, err
	}
	if st.Embedded() {
		log.Warn().Msg("RAILYARD_REDIS_URL is not set: using an embedded in-process store. State is LOST when this process stops; set RAILYARD_REDIS_URL for anything real.")
	}
	if opts.Queue.RetryFor == 0 {
		opts.Queue.RetryFor = env.RetryFor
	}
	opts.Queue.SingleProcess = st.Embedded()
	queues := NewQueues(st.Redis, opts.Queue)
	base := handlers.Base{Redis: st.Redis, Queue: queues.Intake, People: queues.People}

	handled := []githubapp.EventHandler{
		&handlers.Push{Base: base},
		&handlers.IssueComment{Base: base},
		&handlers.CheckRun{Base: base},
		&handlers.WorkflowRun{Base: base},
	}
	ghMetrics, err := githubmetrics.New(env.V3APIURL)
	if err != nil {
		return nil, err
	}
	m := newMetrics(ghMetrics, eventNames(handled))

	// One client per installation, kept: its access token then serves until
	// it nearly expires, instead of a token request before every job's
	// first call to GitHub (BENCHMARKS.md). The metrics wrap the transport
	// under every client, so they see the installation token requests too.
	clients, err := githubapp.NewCachingClientCreator(githubapp.NewClientCreator(env.V3APIURL, graphqlURL(env.V3APIURL), env.AppID, env.PrivateKey,
		githubapp.WithClientUserAgent("railyard/"+Version),
		githubapp.WithClientTimeout(30*time.Second),
		githubapp.WithTransport(ghMetrics.Transport(http.DefaultTransport)),
	), githubapp.DefaultCachingClientCapacity)
	if err != nil {
		return nil, err
	}

	reportOpts := opts.Report
	reportOpts.PerMinute = cmp.Or(reportOpts.PerMinute, env.ContentPerMinute)
	reportOpts.PerHour = cmp.Or(reportOpts.PerHour, env.ContentPerHour)
	reportOpts.PointsPerMinute = cmp.Or(reportOpts.PointsPerMinute, env.PointsPerMinute)
	reportOpts.Secrets = append(reportOpts.Secrets, env.Secrets()...)
	reporter := report.New(st.Redis, clients, reportOpts)
	src := source.New(clients, config.NewLoader(1024), 30*time.Second, 10_000)

	engineOpts := opts.Engine
	engineOpts.Secrets = append(engineOpts.Secrets, env.Secrets()...)
	engineOpts.WebURL = env.WebURL
	engineOpts.SecretsDir = env.SecretsDir
	engineOpts.Workflows = actions.New(clients, st.Redis, opts.Actions)
	engineOpts.Observe = m.observeStageJob
	work := runner.NewWorkspace(env.WorkDir)
	work.Sandbox = sandbox
	eng := engine.New(st.Redis, queues.Stages, reporter, src, work, engineOpts)

	s := &Server{env: env, log: log, store: st, queues: queues, reporter: reporter, engine: eng, metrics: m,
		bodies: newBodyBudget(cmp.Or(env.IntakeBudget, config.DefaultIntakeBudget))}
	m.watch(queues.All(), reporter.Pending)
	m.registry.MustRegister(outboxCollector{reporter})

	dispatch := githubapp.NewEventDispatcher(handled,
		"", // s.webhook has checked X-Hub-Signature-256; with no secret go-github does not check again
		githubapp.WithErrorCallback(onWebhookError),
		githubapp.WithResponseCallback(onWebhookResponse),
	)

	procs := &handlers.Processors{Redis: st.Redis, Engine: eng, Source: src, Reporter: reporter, Gate: &gate.Gate{GitHub: src}, Observe: m.observeCommand}
	consumer := consumerName()
	// Both webhook pools take every webhook kind: a comment job an older
	// Railyard put on the intake queue still runs.
	webhookTable, stageTable := map[string]worker.Processor{}, map[string]worker.Processor{}
	procs.Register(webhookTable)
	stageTable[engine.JobKind] = eng.RunJob
	s.pools = []*worker.Pool{
		{Queue: queues.People, Processors: webhookTable, Workers: peopleWorkers, Consumer: consumer, Wait: opts.ClaimWait, Observe: s.metrics.observeJob},
		{Queue: queues.Intake, Processors: webhookTable, Workers: 4, Consumer: consumer, Wait: opts.ClaimWait, Observe: s.metrics.observeJob},
		{Queue: queues.Stages, Processors: stageTable, Workers: env.Workers, Consumer: consumer, Wait: opts.ClaimWait, Observe: s.metrics.observeJob, GivenUp: eng.GivenUp},
	}

	mux := http.NewServeMux()
	mux.Handle("POST /api/github/hook", s.webhook(dispatch))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	if env.StatusPage {
		pages := statuspage.New(statuspage.FromEngine(eng, reporter), statuspage.Options{
			WebURL: env.WebURL, User: env.StatusUser, Password: env.StatusPassword,
			Warning: isolationWarning(env),
		})
		mux.Handle("/status/", pages)
		mux.Handle("/api/status/", pages)
		if env.StatusPublic {
			log.Warn().Msg("RAILYARD_STATUS_PAGE=public: the status pages answer anyone who can reach this server, without credentials.")
		}
	}
	s.handler = mux
	return s, nil
}

// peopleWorkers take people's commands. Two, so that one command waiting
// on GitHub (a revision to resolve, a permission to read) does not hold
// back the next person's 👀.
const peopleWorkers = 2

// Queues are Railyard's job queues. People's commands have a queue of
// their own so that they never wait behind the bot's own intake work: 200
// push jobs take seconds on the intake queue's workers (BENCHMARKS.md).
type Queues struct {
	People *queue.Queue // people's commands: slash commands, button clicks
	Intake *queue.Queue // the bot's own webhook work: pushes
	Stages *queue.Queue // stage jobs, which may run for long
}

// NamedQueue is a queue and its name, which labels its metrics and its
// dead jobs in `bot jobs`.
type NamedQueue struct {
	Name  string
	Queue *queue.Queue
}

// NewQueues returns the queues on rdb, under the keys every Railyard
// process uses.
func NewQueues(rdb redis.UniversalClient, opts queue.Options) Queues {
	prefix := cmp.Or(opts.Prefix, "railyard:{railyard}:")
	under := func(name string) *queue.Queue {
		o := opts
		o.Prefix = prefix + name + ":"
		return queue.New(rdb, o)
	}
	return Queues{People: under("people"), Intake: under("intake"), Stages: under("stage")}
}

// All lists the queues by name, people's first.
func (qs Queues) All() []NamedQueue {
	return []NamedQueue{{"people", qs.People}, {"intake", qs.Intake}, {"stage", qs.Stages}}
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Engine is the server's engine (for tests and benchmarks).
func (s *Server) Engine() *engine.Engine { return s.engine }

// Store is the server's store.
func (s *Server) Store() *store.Store { return s.store }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		http.Error(w, "store unreachable", http.StatusServiceUnavailable)
		return
	}
	// A store that answers but lost its data cannot hand out jobs until a
	// worker's next claim recreates the queues.
	for _, nq := range s.queues.All() {
		if err := nq.Queue.Check(ctx); err != nil {
			s.log.Warn().Err(err).Str("railyard_queue", nq.Name).Msg("Not ready: a queue is missing.")
			http.Error(w, "queue missing: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ready")
}

// Start initialises the queues and starts the workers and the reporter in
// the background; stop waits for them. Serve and Run use it; tests use it
// with Handler.
func (s *Server) Start(ctx context.Context) (stop func(), err error) {
	for _, nq := range s.queues.All() {
		if err := nq.Queue.Init(ctx); err != nil {
			return nil, fmt.Errorf("init queue: %w", err)
		}
	}
	ctx = s.log.WithContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.reporter.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error().Err(err).Msg("Reporter stopped.")
		}
	})
	for _, p := range s.pools {
		wg.Go(func() { p.Run(ctx) })
	}
	return func() { cancel(); wg.Wait() }, nil
}

// Close releases the store.
func (s *Server) Close() error { return s.store.Close() }

// eventNames are the webhook events that may label metrics: those the
// handlers take, ping, and the installation events GitHub sends every App.
func eventNames(handled []githubapp.EventHandler) []string {
	names := []string{"ping", "installation", "installation_repositories"}
	for _, h := range handled {
		names = append(names, h.Handles()...)
	}
	return names
}

func graphqlURL(v3 string) string {
	if strings.Contains(v3, "api.github.com") {
		return "https://api.github.com/graphql"
	}
	return strings.TrimSuffix(strings.TrimSuffix(v3, "/"), "/v3") + "/graphql"
}

func consumerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()%100000)
}
