package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/worker"
)

func newWorkerCmd(g *globals) *cobra.Command {
	var app appFlags
	var concurrency int
	var metricsAddr string
	cmd := &cobra.Command{
		Use:   "worker [--concurrency N]",
		Short: "Run a worker until SIGINT or SIGTERM",
		Long: `Run a worker: take recall tasks from Redis and call admin_msgwithdraw, sharing
one rate limit with every other worker of the app. SIGINT or SIGTERM stops it
gracefully: in-flight calls finish, tasks not yet called return to the queue.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			w, err := app.worker(log, concurrency)
			if err != nil {
				return err
			}
			defer w.close()
			stopMetrics, err := w.serveMetrics(cmd.Context(), log, metricsAddr)
			if err != nil {
				return err
			}
			defer stopMetrics() // runs after worker.Run has returned
			// The campaign feeder runs beside the worker; the deferred call waits for it.
			defer w.startFeeder(cmd.Context())()
			return worker.Run(cmd.Context(), w.cfg)
		},
	}
	app.register(cmd, true)
	cmd.Flags().IntVar(&concurrency, "concurrency", worker.DefaultConcurrency, "recalls this process works on at once")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", metricsAddrFromEnv(), `serve /metrics, /healthz and /readyz on this host:port; "" turns it off (env METRICS_ADDR)`)
	return cmd
}

// builtWorker is a worker's configuration with the connections it opened.
type builtWorker struct {
	cfg worker.Config
	lim *limiter.Limiter
	api *tim.Client
	rdb redis.UniversalClient
	// metrics records every call; serveMetrics serves it.
	metrics *metrics.Metrics
	// feeder hands campaign rows to the bulk queue (see attachCampaigns).
	feeder *campaign.Feeder
	log    *slog.Logger
	close  func()
}

// worker builds a worker's configuration from the settings: the Tencent
// client, the shared limiter and the handler.
func (a *appFlags) worker(log *slog.Logger, concurrency int) (*builtWorker, error) {
	id, err := a.appID("the worker")
	if err != nil {
		return nil, err
	}
	if err := a.checkRate(); err != nil {
		return nil, err
	}
	if err := a.checkAdmin(); err != nil {
		return nil, err
	}
	if concurrency <= 0 {
		return nil, usagef("--concurrency must be at least 1; got %d", concurrency)
	}
	key, err := secretKey()
	if err != nil {
		return nil, err
	}
	conn, err := a.redis()
	if err != nil {
		return nil, err
	}
	// Ride out a Sentinel failover or a Redis restart: without longer
	// retries, asynq leaves the tasks that were running stuck as active
	// until its lease recovery (about two minutes).
	conn = conn.WithRetries(redisconn.FailoverRetries)
	m := metrics.New(metrics.Config{Logger: log})
	api, err := tim.New(tim.Config{SDKAppID: id, SecretKey: key, Admin: a.admin, Region: a.region, Endpoint: a.endpoint,
		OnSigRefresh: m.SigRefreshed})
	if err != nil {
		return nil, usageError{err}
	}
	rdb := conn.Client()
	lim, err := limiter.New(limiter.Config{
		Redis: rdb,
		App:   id, API: tim.APIWithdraw,
		Rate:   a.rate,
		Logger: log,
	})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	if err := watch(m, lim, rdb); err != nil {
		lim.Close()
		rdb.Close()
		return nil, err
	}
	b := &builtWorker{lim: lim, api: api, rdb: rdb, metrics: m, log: log}
	b.cfg = worker.Config{
		Redis:       conn.AsynqOpt(),
		Concurrency: concurrency,
		Logger:      log,
		Handler: worker.HandlerConfig{
			SDKAppID:  id,
			API:       api,
			Limiter:   lim,
			Secrets:   []string{key},
			OnBreaker: m.BreakerChanged,
		},
	}
	// Metrics see every call, beside any other recorder set above.
	b.cfg.Handler.Recorder = worker.Recorders(m, b.cfg.Handler.Recorder)
	b.close = func() {
		lim.Close()
		rdb.Close()
	}
	if err := b.attachCampaigns(conn.AsynqOpt(), id, log); err != nil {
		b.close()
		return nil, err
	}
	log.Info("worker configured", "redis", conn.String(), "sdkappid", id, "admin", a.admin,
		"endpoint", endpointForLog(a), "rate", a.rate)
	return b, nil
}

func endpointForLog(a *appFlags) string {
	if a.endpoint != "" {
		return a.endpoint
	}
	return "https://" + tim.Regions[a.region]
}

// metricsAddrFromEnv is --metrics-addr's default: METRICS_ADDR when it is
// set, even to "" (no server), otherwise metrics.DefaultAddr.
func metricsAddrFromEnv() string {
	if v, ok := os.LookupEnv("METRICS_ADDR"); ok {
		return v
	}
	return metrics.DefaultAddr
}

// watch adds the limiter's state and asynq's queues to m.
func watch(m *metrics.Metrics, lim *limiter.Limiter, rdb redis.UniversalClient) error {
	if err := m.WatchLimiter(lim); err != nil {
		return err
	}
	ping := func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	return m.WatchQueues(asynq.NewInspectorFromRedisClient(rdb), ping)
}

// metricsShutdownTimeout bounds the metrics server's shutdown, once the
// worker has stopped.
const metricsShutdownTimeout = 5 * time.Second

// serveMetrics serves /metrics, /healthz and /readyz on addr ("" serves
// nothing) until the returned stop is called. /readyz answers 200 once the
// worker has started, and 503 from the moment ctx ends (shutdown began).
func (b *builtWorker) serveMetrics(ctx context.Context, log *slog.Logger, addr string) (stop func(), err error) {
	if addr == "" {
		log.Info("metrics server off (--metrics-addr \"\")")
		return func() {}, nil
	}
	srv, err := metrics.Listen(metrics.ServerConfig{
		Addr:    addr,
		Metrics: b.metrics,
		Ping:    func(ctx context.Context) error { return b.rdb.Ping(ctx).Err() },
		Logger:  log,
	})
	if err != nil {
		return nil, usagef("--metrics-addr %q (env METRICS_ADDR): %v: use a free host:port, or \"\" to turn the metrics server off", addr, err)
	}
	// While this worker's configuration-error circuit is open it takes no
	// work: /readyz says so, with the fix.
	onBreaker := b.cfg.Handler.OnBreaker
	b.cfg.Handler.OnBreaker = func(open bool, o worker.Outcome) {
		if onBreaker != nil {
			onBreaker(open, o)
		}
		if !open {
			srv.Unready("")
			return
		}
		srv.Unready(fmt.Sprintf("configuration error %d (%s): this worker stopped calling; fix: %s", o.Code, o.Meaning, o.Fix))
	}
	started := b.cfg.Started
	b.cfg.Started = func() {
		if started != nil {
			started()
		}
		srv.Started()
	}
	unwatch := context.AfterFunc(ctx, srv.Stopping)
	return func() {
		unwatch()
		sctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("metrics server did not stop cleanly", "err", err)
		}
	}, nil
}
