package cli

import (
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/worker"
)

// APIName is the bucket name's API part: each app and API has its own.
const APIName = "admin_msgwithdraw"

func newWorkerCmd(g *globals) *cobra.Command {
	var app appFlags
	var concurrency int
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
			return worker.Run(cmd.Context(), w.cfg)
		},
	}
	app.register(cmd, true)
	cmd.Flags().IntVar(&concurrency, "concurrency", worker.DefaultConcurrency, "recalls this process works on at once")
	return cmd
}

// builtWorker is a worker's configuration with the connections it opened.
type builtWorker struct {
	cfg   worker.Config
	lim   *limiter.Limiter
	api   *tim.Client
	rdb   redis.UniversalClient
	close func()
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
	api, err := tim.New(tim.Config{SDKAppID: id, SecretKey: key, Admin: a.admin, Region: a.region, Endpoint: a.endpoint})
	if err != nil {
		return nil, usageError{err}
	}
	rdb := conn.Client()
	lim, err := limiter.New(limiter.Config{
		Redis:  rdb,
		Bucket: fmt.Sprintf("%d:%s", id, APIName),
		Rate:   a.rate,
		Logger: log,
	})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	b := &builtWorker{lim: lim, api: api, rdb: rdb}
	b.cfg = worker.Config{
		Redis:       conn.AsynqOpt(),
		Concurrency: concurrency,
		Logger:      log,
		Handler: worker.HandlerConfig{
			SDKAppID: id,
			API:      api,
			Limiter:  lim,
			Secrets:  []string{key},
		},
	}
	b.close = func() {
		lim.Close()
		rdb.Close()
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
