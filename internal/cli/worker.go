package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/apps"
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
			if concurrency <= 0 {
				return usagef("--concurrency must be at least 1; got %d", concurrency)
			}
			list, err := app.configuredApps(cmd, "the worker", true)
			if err != nil {
				return err
			}
			ws, closeWorkers, err := app.workers(log, list, concurrency)
			if err != nil {
				return err
			}
			defer closeWorkers()
			if metricsAddr == "" {
				log.Info("metrics server off (--metrics-addr \"\")")
			} else {
				_, stopMetrics, err := ws.ServeMetrics(cmd.Context(), metricsAddr)
				if err != nil {
					return usagef("--metrics-addr %q (env METRICS_ADDR): %v: use a free host:port, or \"\" to turn the metrics server off", metricsAddr, err)
				}
				defer stopMetrics() // runs after Run has returned
			}
			// Run runs each app's worker, with its campaign feeder, and
			// waits for them all.
			return ws.Run(cmd.Context())
		},
	}
	app.register(cmd, true)
	cmd.Flags().IntVar(&concurrency, "concurrency", worker.DefaultConcurrency, "recalls this process works on at once")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", metricsAddrFromEnv(), `serve /metrics, /healthz and /readyz on this host:port; "" turns it off (env METRICS_ADDR)`)
	return cmd
}

// workers builds one worker per app (assembly.New), all on one Redis
// connection of their own; closeAll closes them and it. Each app's worker
// serves its own queues with its own concurrency, buckets and feeder.
func (a *appFlags) workers(log *slog.Logger, list []apps.App, concurrency int) (ws assembly.Workers, closeAll func(), err error) {
	conn, err := a.redis()
	if err != nil {
		return nil, nil, err
	}
	// Ride out a Sentinel failover or a Redis restart: without longer
	// retries, asynq leaves the tasks that were running stuck as active
	// until its lease recovery (about two minutes).
	conn = conn.WithRetries(redisconn.FailoverRetries)
	rdb := conn.Client()
	closeAll = func() { ws.Close(); rdb.Close() }
	fromFile := os.Getenv("TIM_APPS_FILE") != ""
	for _, app := range list {
		alog := log
		if len(list) > 1 {
			alog = log.With("app", app.Name) // which app's worker said it
		}
		w, err := assembly.New(assembly.Config{
			Redis: rdb,
			Queue: conn.AsynqOpt(),
			App: tim.Config{SDKAppID: app.SDKAppID, SecretKey: string(app.SecretKey), Admin: app.Admin,
				Region: app.Region, Endpoint: app.Endpoint},
			Name:      app.Name,
			Rate:      app.Rate,
			GroupRate: app.GroupRate,
			Worker:    worker.Config{Concurrency: concurrency, Handler: worker.HandlerConfig{AppsFileApp: appsFileApp(app, fromFile)}},
			Logger:    alog,
		})
		if err != nil {
			closeAll()
			if errors.Is(err, tim.ErrInvalidConfig) {
				err = usageError{err}
			}
			if len(list) > 1 {
				err = fmt.Errorf("app %s: %w", appName(app), err)
			}
			return nil, nil, err
		}
		ws = append(ws, w)
		log.Info("worker configured", "redis", conn.String(), "sdkappid", app.SDKAppID, "app", app.Name, "admin", app.Admin,
			"endpoint", endpointForLog(app), "rate", app.Rate, "group_rate", app.GroupRate)
	}
	return ws, closeAll, nil
}

// appsFileApp is HandlerConfig.AppsFileApp of app: its name in the apps
// file when the worker runs from one (its fixes then name the app's
// fields in the file), else "" (the single-app variables).
func appsFileApp(app apps.App, fromFile bool) string {
	if !fromFile {
		return ""
	}
	return app.Name
}

func endpointForLog(a apps.App) string {
	if a.Endpoint != "" {
		return a.Endpoint
	}
	if a.Region == "" {
		return "https://" + tim.Regions[tim.DefaultRegion]
	}
	return "https://" + tim.Regions[a.Region]
}

// metricsAddrFromEnv is --metrics-addr's default: METRICS_ADDR when it is
// set, even to "" (no server), otherwise metrics.DefaultAddr.
func metricsAddrFromEnv() string {
	if v, ok := os.LookupEnv("METRICS_ADDR"); ok {
		return v
	}
	return metrics.DefaultAddr
}
