// Package assembly builds a recall worker from its parts: the Tencent
// client, the shared limiter, the handler, the metrics, the campaign
// recorder and the campaign feeder, from one Config. The worker command, the
// demo and the lab's benchmarks all build their workers here, so what the
// benchmarks measure is what ships.
//
// It lives beside worker, not in it: the campaign recorder and feeder
// (internal/campaign) and the metrics import worker for its Event, so worker
// cannot import them back.
package assembly

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/worker"
)

// FeederStopBound bounds Run's wait for the campaign feeder once the worker
// has stopped (the feeder stops with it and normally ends at once).
const FeederStopBound = 2 * time.Second

// MetricsShutdownTimeout bounds the metrics server's shutdown, once the
// worker has stopped.
const MetricsShutdownTimeout = 5 * time.Second

// Config is one worker: one app, its queues, its bucket of the shared
// limiter. Several apps would be several Configs (each app has its own
// buckets, named by limiter.BucketName from the app and the API).
type Config struct {
	// Redis holds the limiter's bucket and the campaigns. Required. New
	// does not take it over: the caller closes it after Close.
	Redis redis.UniversalClient
	// Queue is asynq's connection to the queues. Required.
	Queue asynq.RedisConnOpt
	// App is the Tencent app the worker serves: its SDKAppID, secret key,
	// admin, region or endpoint. Its SDKAppID is required. New adds the
	// metrics to OnSigRefresh, beside any set here.
	App tim.Config
	// Name is the app's name from the apps file: the app label of every
	// recallq series (metrics.Config.App) and the app named by /readyz.
	// Default: the SDKAppID in decimal.
	Name string
	// Rate is the admin_msgwithdraw calls per second that every worker of
	// the app shares. Default limiter.DefaultRate.
	Rate float64
	// GroupRate is the same for group_msg_recall. Default: Rate.
	GroupRate float64
	// AheadBulk is limiter.Config.AheadBulk: default limiter.DefaultAheadBulk.
	AheadBulk int
	// Worker is the server's settings (concurrency, retry delays, Started
	// ...). New sets Redis and the Handler's SDKAppID, API, Limiter and
	// Secrets, which must be left unset; the handler's Recorder and
	// OnBreaker, when set, are called before the metrics' and the
	// campaigns' own.
	Worker worker.Config
	// Feeder is the campaign feeder's settings (Interval ...). New sets
	// Redis, Queue, SDKAppID, Rate and Logger, which must be left unset.
	Feeder campaign.FeederConfig
	// NoFeeder: Run runs no campaign feeder. The shipped worker always runs
	// one; the lab turns it off to measure what it costs.
	NoFeeder bool
	// WrapLimiter, if set, gets the shared limiter and returns what the
	// handler calls in its place: the lab measures every call through it,
	// or compares another limiter. The shared limiter runs either way
	// (metrics, the feeder's rate). Optional.
	WrapLimiter func(*limiter.Limiter) (worker.Limiter, error)
	// WrapGroupLimiter is WrapLimiter for the group_msg_recall bucket.
	// Optional.
	WrapGroupLimiter func(*limiter.Limiter) (worker.Limiter, error)
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Worker is a built worker: call ServeMetrics (optional), then Run, then
// Close.
type Worker struct {
	// API is the Tencent client the handler calls.
	API *tim.Client
	// Limiter is the app's shared limiter for APIWithdraw.
	Limiter *limiter.Limiter
	// GroupLimiter is the app's shared limiter for APIGroupRecall: a
	// bucket of its own (each API has its own cap), at Config.GroupRate.
	GroupLimiter *limiter.Limiter
	// Metrics records every call; ServeMetrics serves them.
	Metrics *metrics.Metrics
	// Feeder hands campaign rows to the bulk queue; nil with
	// Config.NoFeeder.
	Feeder *campaign.Feeder

	name  string // Config.Name
	cfg   worker.Config
	rdb   redis.UniversalClient
	log   *slog.Logger
	close []func() error
}

// New builds a worker from cfg. It returns an error that names the field
// when cfg is incomplete, and the limiter's or feeder's error when they
// refuse their part.
func New(cfg Config) (*Worker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = strconv.FormatUint(cfg.App.SDKAppID, 10)
	}
	if cfg.GroupRate == 0 {
		cfg.GroupRate = cfg.Rate
	}
	m := metrics.New(metrics.Config{Logger: log, App: cfg.Name})
	app := cfg.App
	app.OnSigRefresh = chainSigRefresh(app.OnSigRefresh, m.SigRefreshed)
	api, err := tim.New(app)
	if err != nil {
		return nil, err
	}
	w := &Worker{API: api, Metrics: m, name: cfg.Name, rdb: cfg.Redis, log: log}
	w.Limiter, err = limiter.New(limiter.Config{
		Redis:     cfg.Redis,
		App:       app.SDKAppID,
		API:       tim.APIWithdraw,
		Rate:      cfg.Rate,
		AheadBulk: cfg.AheadBulk,
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	w.close = append(w.close, w.Limiter.Close)
	w.GroupLimiter, err = limiter.New(limiter.Config{
		Redis:     cfg.Redis,
		App:       app.SDKAppID,
		API:       tim.APIGroupRecall,
		Rate:      cfg.GroupRate,
		AheadBulk: cfg.AheadBulk,
		Logger:    log,
	})
	if err != nil {
		w.Close()
		return nil, err
	}
	w.close = append(w.close, w.GroupLimiter.Close)
	if err := w.watch(); err != nil {
		w.Close()
		return nil, err
	}
	var lim, glim worker.Limiter = w.Limiter, w.GroupLimiter
	if cfg.WrapLimiter != nil {
		if lim, err = cfg.WrapLimiter(w.Limiter); err != nil {
			w.Close()
			return nil, err
		}
	}
	if cfg.WrapGroupLimiter != nil {
		if glim, err = cfg.WrapGroupLimiter(w.GroupLimiter); err != nil {
			w.Close()
			return nil, err
		}
	}
	rec := campaign.NewRecorder(campaign.RecorderConfig{Redis: cfg.Redis, Logger: log})
	w.cfg = cfg.Worker
	w.cfg.Redis = cfg.Queue
	if w.cfg.Logger == nil {
		w.cfg.Logger = log
	}
	h := &w.cfg.Handler
	h.SDKAppID, h.API, h.Limiter, h.Secrets = app.SDKAppID, api, lim, []string{app.SecretKey}
	h.GroupAPI, h.GroupLimiter = api, glim
	h.OnGroupCall = chainGroupCall(h.OnGroupCall, m.GroupCalled)
	// Metrics and campaign counts see every call, after any other recorder.
	h.Recorder = worker.Recorders(h.Recorder, m, rec)
	h.OnBreaker = chainBreaker(h.OnBreaker, m.BreakerChanged)
	w.cfg.OnUnserved = chainUnserved(w.cfg.OnUnserved, m.Unserved)
	if !cfg.NoFeeder {
		fc := cfg.Feeder
		fc.Redis, fc.Queue, fc.SDKAppID, fc.Logger = cfg.Redis, cfg.Queue, app.SDKAppID, log
		fc.Rate = w.rate
		if w.Feeder, err = campaign.NewFeeder(fc); err != nil {
			w.Close()
			return nil, err
		}
		w.close = append(w.close, w.Feeder.Close)
	}
	return w, nil
}

func (c *Config) validate() error {
	h, f := c.Worker.Handler, c.Feeder
	switch {
	case c.Redis == nil:
		return errors.New("assembly: Config.Redis is not set")
	case c.Queue == nil:
		return errors.New("assembly: Config.Queue is not set")
	case c.App.SDKAppID == 0:
		return errors.New("assembly: Config.App.SDKAppID is not set: the worker serves one app")
	case c.Worker.Redis != nil || h.SDKAppID != 0 || h.API != nil || h.Limiter != nil || h.Secrets != nil ||
		h.GroupAPI != nil || h.GroupLimiter != nil:
		return errors.New("assembly: Config.Worker sets Redis or the Handler's SDKAppID, API, Limiter, GroupAPI, GroupLimiter or Secrets: New builds them from Config.Queue and Config.App")
	case f.Redis != nil || f.Queue != nil || f.SDKAppID != 0 || f.Rate != nil || f.Logger != nil:
		return errors.New("assembly: Config.Feeder sets Redis, Queue, SDKAppID, Rate or Logger: New sets them from the rest of Config")
	}
	return nil
}

// watch adds the limiter's state and asynq's queues to the metrics.
func (w *Worker) watch() error {
	if err := w.Metrics.WatchLimiter(tim.APIWithdraw, w.Limiter); err != nil {
		return err
	}
	if err := w.Metrics.WatchLimiter(tim.APIGroupRecall, w.GroupLimiter); err != nil {
		return err
	}
	return w.Metrics.WatchQueues(asynq.NewInspectorFromRedisClient(w.rdb), w.ping)
}

func (w *Worker) ping(ctx context.Context) error { return w.rdb.Ping(ctx).Err() }

// rate is the shared limiter's current rate in calls per second (0 before
// it has one), which the feeder publishes for `campaign status`'s ETA.
func (w *Worker) rate() float64 {
	if iv := w.Limiter.Interval(); iv > 0 {
		return float64(time.Second) / float64(iv)
	}
	return 0
}

// ServeMetrics serves /metrics, /healthz and /readyz on addr until the
// returned stop is called (after Run has returned): Workers.ServeMetrics
// for this one worker. Call it before Run.
func (w *Worker) ServeMetrics(ctx context.Context, addr string) (srv *metrics.Server, stop func(), err error) {
	return Workers{w}.ServeMetrics(ctx, addr)
}

// Run serves recall tasks until ctx ends (worker.Run), with the campaign
// feeder beside it; a lock in Redis keeps one feeder active per app. It
// returns worker.Run's error once the worker has stopped and the feeder
// has too, or FeederStopBound after, whichever comes first.
func (w *Worker) Run(ctx context.Context) error {
	defer w.runFeeder(ctx)()
	return worker.Run(ctx, w.cfg)
}

// runFeeder runs the feeder until ctx ends; the returned func waits for it
// to stop (it releases its lock, so another worker takes over at once).
func (w *Worker) runFeeder(ctx context.Context) (wait func()) {
	if w.Feeder == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Feeder.Run(ctx)
	}()
	return func() {
		t := time.NewTimer(FeederStopBound)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			// Redis hangs: the feeder's lock expires by itself (LockTTL), and
			// another worker takes over then. The shutdown bound holds.
			w.log.Warn("the campaign feeder did not stop in time (is Redis answering?); its lock expires by itself", "waited", FeederStopBound.String())
		}
	}
}

// Close stops the limiter and the feeder's connections. It does not close
// Config.Redis.
func (w *Worker) Close() error {
	var errs []error
	for i := len(w.close) - 1; i >= 0; i-- {
		errs = append(errs, w.close[i]())
	}
	w.close = nil
	return errors.Join(errs...)
}

func chainSigRefresh(first, then func(string)) func(string) {
	if first == nil {
		return then
	}
	return func(reason string) { first(reason); then(reason) }
}

func chainGroupCall(first, then func(worker.GroupCall)) func(worker.GroupCall) {
	if first == nil {
		return then
	}
	return func(c worker.GroupCall) { first(c); then(c) }
}

func chainUnserved(first, then func(map[string]int)) func(map[string]int) {
	if first == nil {
		return then
	}
	return func(q map[string]int) { first(q); then(q) }
}

func chainBreaker(first, then func(string, bool, worker.Outcome)) func(string, bool, worker.Outcome) {
	if first == nil {
		return then
	}
	return func(api string, open bool, o worker.Outcome) { first(api, open, o); then(api, open, o) }
}
