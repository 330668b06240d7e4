package cli

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/assembly"
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
			w, closeWorker, err := app.worker(log, concurrency)
			if err != nil {
				return err
			}
			defer closeWorker()
			if metricsAddr == "" {
				log.Info("metrics server off (--metrics-addr \"\")")
			} else {
				_, stopMetrics, err := w.ServeMetrics(cmd.Context(), metricsAddr)
				if err != nil {
					return usagef("--metrics-addr %q (env METRICS_ADDR): %v: use a free host:port, or \"\" to turn the metrics server off", metricsAddr, err)
				}
				defer stopMetrics() // runs after Run has returned
			}
			// Run runs the campaign feeder beside the worker and waits for it.
			return w.Run(cmd.Context())
		},
	}
	app.register(cmd, true)
	cmd.Flags().IntVar(&concurrency, "concurrency", worker.DefaultConcurrency, "recalls this process works on at once")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", metricsAddrFromEnv(), `serve /metrics, /healthz and /readyz on this host:port; "" turns it off (env METRICS_ADDR)`)
	return cmd
}

// worker builds the worker from the settings (assembly.New) on a Redis
// connection of its own; closeAll closes both.
func (a *appFlags) worker(log *slog.Logger, concurrency int) (w *assembly.Worker, closeAll func(), err error) {
	id, err := a.appID("the worker")
	if err != nil {
		return nil, nil, err
	}
	if err := a.checkRate(); err != nil {
		return nil, nil, err
	}
	if err := a.checkAdmin(); err != nil {
		return nil, nil, err
	}
	if concurrency <= 0 {
		return nil, nil, usagef("--concurrency must be at least 1; got %d", concurrency)
	}
	key, err := secretKey()
	if err != nil {
		return nil, nil, err
	}
	conn, err := a.redis()
	if err != nil {
		return nil, nil, err
	}
	// Ride out a Sentinel failover or a Redis restart: without longer
	// retries, asynq leaves the tasks that were running stuck as active
	// until its lease recovery (about two minutes).
	conn = conn.WithRetries(redisconn.FailoverRetries)
	rdb := conn.Client()
	w, err = assembly.New(assembly.Config{
		Redis:  rdb,
		Queue:  conn.AsynqOpt(),
		App:    tim.Config{SDKAppID: id, SecretKey: key, Admin: a.admin, Region: a.region, Endpoint: a.endpoint},
		Rate:   a.rate,
		Worker: worker.Config{Concurrency: concurrency},
		Logger: log,
	})
	if err != nil {
		rdb.Close()
		if errors.Is(err, tim.ErrInvalidConfig) {
			return nil, nil, usageError{err}
		}
		return nil, nil, err
	}
	log.Info("worker configured", "redis", conn.String(), "sdkappid", id, "admin", a.admin,
		"endpoint", endpointForLog(a), "rate", a.rate)
	return w, func() { w.Close(); rdb.Close() }, nil
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
