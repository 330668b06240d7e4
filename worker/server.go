package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
)

// Defaults for Config.
const (
	DefaultConcurrency = 32
	// DefaultShutdownTimeout covers one in-flight call (the client gives
	// up after 5 s): SIGTERM lets it finish, then returns the rest. Run
	// returns at most ShutdownBound after it, whatever Redis does.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultTaskCheckInterval is how long an idle worker waits before it
	// looks at empty queues again (asynq's default is 1 s; an urgent
	// recall should not wait that long). Each look is one Redis script
	// call per queue.
	DefaultTaskCheckInterval = 50 * time.Millisecond
	// DefaultDelayedTaskCheckInterval is how often retries that are due
	// move back to their queue (asynq's default is 5 s).
	DefaultDelayedTaskCheckInterval = time.Second
	// LegacyTaskCheckInterval is how long the legacy server (Queues) waits
	// before it looks at its empty queues again, or TaskCheckInterval when
	// that is longer. They hold only what was queued before an upgrade, so
	// asynq's default will do: at the worker's own 50 ms they cost an idle
	// worker half its polling, two Redis scripts a poll.
	LegacyTaskCheckInterval = time.Second
)

// Config configures a worker server.
type Config struct {
	// Redis is where the queues live. Required.
	Redis asynq.RedisConnOpt
	// Handler configures the recall handler. Its Stopping channel is set
	// by Run.
	Handler HandlerConfig
	// Concurrency is how many recalls one process works on at once.
	// Default DefaultConcurrency.
	Concurrency int
	// Preconnect is how many connections to Tencent the worker opens
	// before it takes tasks (preconnect); default Concurrency, negative
	// none.
	Preconnect int
	// ShutdownTimeout: default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// TaskCheckInterval: default DefaultTaskCheckInterval.
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval: default DefaultDelayedTaskCheckInterval.
	DelayedTaskCheckInterval time.Duration
	// RetryBase and RetryMax shape the backoff of transient failures.
	// Defaults DefaultRetryBase and DefaultRetryMax.
	RetryBase, RetryMax time.Duration
	// LastAttemptCheck is how often the worker puts back tasks asynq
	// archived on their last attempt for a reason not their own
	// (lastattempt.go): the longest such a task stays in asynq's capped
	// archive. Default DefaultLastAttemptCheck.
	LastAttemptCheck time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Started, if set, is called once the asynq server has started taking
	// tasks (a readiness probe waits for it). Optional.
	Started func()
	// UnservedCheck is how often the worker looks for recall tasks of an
	// app that no running worker serves (unserved.go). Default
	// DefaultUnservedCheck.
	UnservedCheck time.Duration
	// OnUnserved, if set, gets each look's result: the unserved queues
	// and how many tasks wait in each (empty when there are none).
	// Optional.
	OnUnserved func(map[string]int)
}

// Run serves recall tasks until ctx is done, then shuts down gracefully:
// it stops taking tasks, lets in-flight calls finish (up to
// ShutdownTimeout), and returns every task not yet called to its queue.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Redis == nil {
		return errors.New("worker: Config.Redis is not set")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.TaskCheckInterval <= 0 {
		cfg.TaskCheckInterval = DefaultTaskCheckInterval
	}
	if cfg.DelayedTaskCheckInterval <= 0 {
		cfg.DelayedTaskCheckInterval = DefaultDelayedTaskCheckInterval
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Handler.Logger == nil {
		cfg.Handler.Logger = cfg.Logger
	}
	stopping := make(chan struct{})
	cfg.Handler.Stopping = stopping
	h, err := NewHandler(cfg.Handler)
	if err != nil {
		return err
	}
	quiet := &shutdownLog{}
	last, closeLast, err := newLastAttempts(cfg.Redis, cfg.Logger)
	if err != nil {
		return err
	}
	h.lastAttempt = last
	h.queues = asynq.NewClient(cfg.Redis)
	defer h.queues.Close()
	if cfg.LastAttemptCheck <= 0 {
		cfg.LastAttemptCheck = DefaultLastAttemptCheck
	}
	lastCtx, stopLast := context.WithCancel(context.WithoutCancel(ctx))
	lastDone := make(chan struct{})
	go func() { defer close(lastDone); last.run(lastCtx, cfg.LastAttemptCheck) }()
	if cfg.UnservedCheck <= 0 {
		cfg.UnservedCheck = DefaultUnservedCheck
	}
	u := &unserved{insp: asynq.NewInspector(cfg.Redis), log: cfg.Logger.With("component", "unserved"),
		report: cfg.OnUnserved, since: map[string]time.Time{}, now: time.Now}
	unservedDone := make(chan struct{})
	go func() { defer close(unservedDone); u.run(lastCtx, cfg.UnservedCheck) }()
	var stopBy time.Time // the shutdown's bound, once it began
	defer func() {
		// The background checks stop with their clients closed. One
		// waiting for a Redis that does not answer returns only after its
		// timeouts and retries (a shutdown took 15 s past its bound), so
		// they are waited for until the shutdown's bound at most, or
		// checksStopWait when Run ends before one began.
		stopLast()
		u.insp.Close()
		closeLast()
		wait := checksStopWait
		if !stopBy.IsZero() {
			wait = max(time.Until(stopBy), 0)
		}
		waitAtMost(wait, lastDone, unservedDone)
	}()
	newServer := func(queues map[string]int, concurrency int, check time.Duration) *asynq.Server {
		return asynq.NewServer(cfg.Redis, asynq.Config{
			Concurrency: concurrency,
			// Single recalls first, always; campaigns take what is left.
			Queues:                   queues,
			StrictPriority:           true,
			IsFailure:                IsFailure,
			RetryDelayFunc:           RetryDelay(cfg.RetryBase, cfg.RetryMax),
			ShutdownTimeout:          cfg.ShutdownTimeout,
			TaskCheckInterval:        check,
			DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
			Logger:                   asynqLogger{cfg.Logger.With("component", "asynq"), quiet},
			LogLevel:                 asynq.WarnLevel,
		})
	}
	// The app's queues, and the legacy ones on a server of their own
	// (Queues says why); both share the handler, so the limiter and the
	// breakers are one.
	servers := []*asynq.Server{
		newServer(Queues(cfg.Handler.SDKAppID), cfg.Concurrency, cfg.TaskCheckInterval),
		newServer(LegacyQueues(), legacyConcurrency(cfg.Concurrency), max(cfg.TaskCheckInterval, LegacyTaskCheckInterval)),
	}
	preconnect(ctx, cfg)
	mux := asynq.NewServeMux()
	running := &inFlight{ids: map[string]bool{}}
	mux.Handle(tasks.TypeRecall, running.track(h))
	mux.Handle(tasks.TypeGroupRecall, running.track(h))
	for i, srv := range servers {
		if err := srv.Start(mux); err != nil {
			for _, started := range servers[:i] {
				started.Shutdown()
			}
			return fmt.Errorf("start worker: %w", err)
		}
	}
	cfg.Logger.InfoContext(ctx, "worker started", "concurrency", cfg.Concurrency, "sdkappid", cfg.Handler.SDKAppID)
	if cfg.Started != nil {
		cfg.Started()
	}
	<-ctx.Done()
	cfg.Logger.Info("worker stopping: finishing in-flight calls", "timeout", cfg.ShutdownTimeout)
	stopBy = time.Now().Add(cfg.ShutdownTimeout + ShutdownBound)
	quiet.start()
	running.stop()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for _, srv := range servers {
			srv.Stop() // take no new tasks
		}
		close(stopping) // tasks still waiting for a slot go back now
		// In-flight calls finish; the rest return to the queue. Both at
		// once, so the bound below holds for the pair.
		var wg sync.WaitGroup
		for _, srv := range servers {
			wg.Go(srv.Shutdown)
		}
		wg.Wait()
	}()
	bound := time.NewTimer(time.Until(stopBy))
	defer bound.Stop()
	select {
	case <-stopped:
	case <-bound.C:
	}
	// What asynq still logs (it keeps trying while the process lives) is
	// said once below.
	unsure := quiet.finish()
	select {
	case <-stopped:
	default:
		unsure = append(unsure, running.unsure()...)
	}
	if unsure = uniqueSorted(unsure); len(unsure) == 0 {
		cfg.Logger.Info("worker stopped")
		return nil
	}
	cfg.Logger.Error("worker stopped but could not hand back tasks: Redis did not answer; they stay active until "+
		"their lease expires, then asynq queues them again (nothing is lost, they run late)",
		"tasks", len(unsure), "task_ids", unsure, "bound", cfg.ShutdownTimeout+ShutdownBound)
	return nil
}

// asynqLogger sends asynq's own logs to slog. From the start of a shutdown
// its warnings and errors go to q, which Run sums up in one line.
type asynqLogger struct {
	l *slog.Logger
	q *shutdownLog
}

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.log(slog.LevelError, fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.log(slog.LevelError, fmt.Sprint(args...)) }

func (a asynqLogger) log(level slog.Level, msg string) {
	// The handler logs every dead letter once, with its reason; asynq's
	// line for it says neither. asynq reports it only in its log, so the
	// log is read.
	if strings.HasPrefix(msg, "Retry exhausted for task") {
		a.l.Debug(msg)
		return
	}
	if a.q.swallow(msg) {
		a.l.Debug(msg)
		return
	}
	a.l.Log(context.Background(), level, msg)
}

// PreconnectTimeout bounds how long a worker waits, before it takes tasks,
// for the connections it opens to Tencent (preconnect).
const PreconnectTimeout = 5 * time.Second

// preconnector is an API that can open its connections ahead of the first
// calls (*tim.Client).
type preconnector interface {
	Preconnect(ctx context.Context, n int) int
}

// preconnect opens Config.Preconnect connections to Tencent, one for each
// task the worker may run at once, before it takes any (at most
// PreconnectTimeout): a call that had to wait for a dial and a TLS
// handshake would be cut unsent by the limiter's lateness guard, its slot
// lost (limiter.Permit.Go). Group recalls share the client when it is the
// same.
func preconnect(ctx context.Context, cfg Config) {
	n := cfg.Preconnect
	if n == 0 {
		n = cfg.Concurrency
	}
	if n < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, PreconnectTimeout)
	defer cancel()
	var done []preconnector
	for _, api := range []any{cfg.Handler.API, cfg.Handler.GroupAPI} {
		p, ok := api.(preconnector)
		if !ok || slices.Contains(done, p) {
			continue
		}
		done = append(done, p)
		began := time.Now()
		opened := p.Preconnect(ctx, n)
		log := cfg.Logger.InfoContext
		if opened < n {
			// Not fatal: each call opens its own connection, and says so
			// if it cannot (a refused certificate, a name not found).
			log = cfg.Logger.WarnContext
		}
		log(ctx, "connections to Tencent opened before the first task", "opened", opened, "asked", n,
			"took", time.Since(began).Round(time.Millisecond).String())
	}
}
