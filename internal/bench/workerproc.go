package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recallq/recallq/internal/assembly"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/worker"
)

// WorkerCommand is the hidden subcommand of the recallq-lab binary that runs one
// bench worker process (RunWorkerArgs). The benchmark re-executes its own
// binary with it, so the peers' limiters live only in this package and never
// in the product's worker command.
const WorkerCommand = "bench-worker"

// WorkerConfig is one bench worker process: the product's worker
// (assembly.New) with the limiter under test, writing a Report when it stops.
type WorkerConfig struct {
	// Limiter is LimiterShared, LimiterLocal or LimiterFixedWindow.
	Limiter string
	// Procs is how many worker processes share the cap: the local limiter
	// runs at Rate/Procs.
	Procs int
	// Concurrency is worker.Config.Concurrency.
	Concurrency int
	// RedisURL holds the queues and the shared limiters.
	RedisURL string
	// Redis are the connection settings a URL cannot hold (REDIS_CA_FILE,
	// a client certificate, sentinel credentials), read from the
	// environment by ParseWorkerArgs as the product's commands read them
	// (redisconn.OptionsFrom). They never travel on the command line; the
	// benchmark's own redis-server needs none, and its children get none
	// (childproc.Env).
	Redis redisconn.Options
	// Endpoint is the simulator's base URL.
	Endpoint string
	// SDKAppID and SecretKey are the app's; the secret comes from the
	// environment (TIM_SECRET_KEY), never from the command line.
	SDKAppID  uint64
	SecretKey string
	// Admin signs the worker's requests; "" is tim's default ("admin").
	// The bad-pod run gives one worker an account that is no admin.
	Admin string
	// Rate is the cap all processes share, calls per second.
	Rate float64
	// RetryBase is worker.Config.RetryBase.
	RetryBase time.Duration
	// Report is the file the Report is written to when the worker stops.
	Report string
	// Logger receives the worker's logs.
	Logger *slog.Logger
}

// args is the command line (after the binary) that makes a process run c;
// the secret travels in the environment.
func (c WorkerConfig) args() []string {
	return []string{WorkerCommand,
		"--limiter", c.Limiter,
		"--procs", strconv.Itoa(c.Procs),
		"--concurrency", strconv.Itoa(c.Concurrency),
		"--redis-url", c.RedisURL,
		"--endpoint", c.Endpoint,
		"--rate", strconv.FormatFloat(c.Rate, 'g', -1, 64),
		"--retry-base", c.RetryBase.String(),
		"--report", c.Report,
		"--admin", c.Admin,
	}
}

// ParseWorkerArgs reads a bench worker's flags (the arguments after
// WorkerCommand), its app from getenv (TIM_SDKAPPID and TIM_SECRET_KEY)
// and its Redis settings from getenv as the product's commands read them
// (REDIS_CA_FILE, ...: redisconn.OptionsFrom). Logs go to stderr at
// --log-level (default warn).
func ParseWorkerArgs(args []string, getenv func(string) string, stderr io.Writer) (WorkerConfig, error) {
	var c WorkerConfig
	var logLevel string
	fs := flag.NewFlagSet(WorkerCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Limiter, "limiter", LimiterShared, "shared, local or fixedwindow")
	fs.IntVar(&c.Procs, "procs", 1, "worker processes sharing the cap")
	fs.IntVar(&c.Concurrency, "concurrency", worker.DefaultConcurrency, "recalls this process works on at once")
	fs.StringVar(&c.RedisURL, "redis-url", redisconn.DefaultURL, "Redis of the queues and limiters")
	fs.StringVar(&c.Endpoint, "endpoint", "", "the simulator's base URL")
	fs.Float64Var(&c.Rate, "rate", Cap, "calls per second shared by every process")
	fs.DurationVar(&c.RetryBase, "retry-base", DefaultRetryBase, "worker.Config.RetryBase")
	fs.StringVar(&c.Report, "report", "", "file to write the figures to on exit")
	fs.StringVar(&c.Admin, "admin", "", "the account that signs requests (default tim's)")
	fs.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return WorkerConfig{}, err
	}
	if fs.NArg() > 0 {
		return WorkerConfig{}, fmt.Errorf("%s: unexpected arguments %q", WorkerCommand, fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return WorkerConfig{}, fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)
	}
	c.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	id, err := strconv.ParseUint(getenv("TIM_SDKAPPID"), 10, 64)
	if err != nil || id == 0 {
		return WorkerConfig{}, errors.New("TIM_SDKAPPID is not set to a number: the bench worker needs the simulator's SDKAppID")
	}
	c.SDKAppID = id
	if c.SecretKey = getenv("TIM_SECRET_KEY"); c.SecretKey == "" {
		return WorkerConfig{}, errors.New("TIM_SECRET_KEY is not set: the bench worker needs the simulator's secret key")
	}
	if c.Redis, err = redisconn.OptionsFrom(getenv); err != nil {
		return WorkerConfig{}, err
	}
	return c, c.validate()
}

func (c WorkerConfig) validate() error {
	switch {
	case c.Limiter != LimiterShared && c.Limiter != LimiterLocal && c.Limiter != LimiterFixedWindow:
		return fmt.Errorf("--limiter %q: use %s, %s or %s", c.Limiter, LimiterShared, LimiterLocal, LimiterFixedWindow)
	case c.Procs < 1:
		return fmt.Errorf("--procs %d: at least 1", c.Procs)
	case c.Concurrency < 1:
		return fmt.Errorf("--concurrency %d: at least 1", c.Concurrency)
	case c.Endpoint == "":
		return errors.New("--endpoint is not set: give the simulator's base URL")
	case c.Report == "":
		return errors.New("--report is not set: give the file to write the figures to")
	case !(c.Rate > 0):
		return fmt.Errorf("--rate %v: give the cap in calls per second", c.Rate)
	case c.RetryBase <= 0:
		return fmt.Errorf("--retry-base %s: it must be positive", c.RetryBase)
	}
	return nil
}

// RunWorkerArgs parses args (see ParseWorkerArgs) and runs the worker until
// ctx ends.
func RunWorkerArgs(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c, err := ParseWorkerArgs(args, getenv, stderr)
	if err != nil {
		return err
	}
	return RunWorker(ctx, c)
}

// Report is what a bench worker measured, written as JSON when it stops.
type Report struct {
	PID     int    `json:"pid"`
	Limiter string `json:"limiter"`
	// Calls counts the permits the limiter granted: one per API call.
	Calls int64 `json:"calls"`
	// WaitRoundTrips counts the limiter's Redis round trips on the wait
	// path (0 for the local limiter).
	WaitRoundTrips int64 `json:"wait_round_trips"`
	// Waits is the time each granted call spent in Limiter.Wait.
	Waits *Histogram `json:"waits"`
	// SlotToAnswer is, per call, the time from its permit's Slot to its
	// answer's first byte: near the samples the shared limiter measures its
	// spread on (it measures from the send its lateness check let go, and
	// adds the clock anchor's width on the late side).
	SlotToAnswer *Histogram `json:"slot_to_answer"`
	// SlowDowns counts the SlowDown calls (one per 60007 answer).
	SlowDowns int64 `json:"slow_downs"`
	// Codes counts the answers by Tencent code (worker.NoAnswer: none).
	Codes map[int]int64 `json:"codes"`
	// Shared is the shared limiter's Stats when it stopped (nil for the
	// peers' limiters).
	Shared *limiter.Stats `json:"shared,omitempty"`
	// Slots are the Redis-clock slots (µs) of the shared limiter's permits,
	// and Samples its spacing every statsEvery: where the rate went.
	Slots   []int64       `json:"slots,omitempty"`
	Samples []statsSample `json:"samples,omitempty"`
}

// statsEvery is how often a bench worker samples the shared limiter's
// spread and interval.
const statsEvery = 250 * time.Millisecond

// statsSample is the shared limiter's spacing at one time.
type statsSample struct {
	At       int64         `json:"at"`     // unix ms
	Spread   time.Duration `json:"spread"` // shared by the fleet
	Local    time.Duration `json:"local"`  // this process's own
	Interval time.Duration `json:"interval"`
	Rate     float64       `json:"rate"` // in force: the interval's and the bucket's rate scale
	// Dispersion is the fleet's G in use, -1 while unknown.
	Dispersion time.Duration `json:"dispersion"`
}

// sampleStats records l's spread and interval every statsEvery until ctx
// ends, then returns them.
func sampleStats(ctx context.Context, l *limiter.Limiter) []statsSample {
	var out []statsSample
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case now := <-t.C:
			s := l.Stats()
			out = append(out, statsSample{At: now.UnixMilli(), Spread: s.Spread, Local: s.LocalSpread, Interval: s.Interval, Rate: s.Rate,
				Dispersion: s.Dispersion})
		}
	}
}

// RunWorker runs the product's worker with the limiter c names until ctx
// ends, then writes its Report to c.Report.
func RunWorker(ctx context.Context, c WorkerConfig) error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.validate(); err != nil {
		return err
	}
	conn, err := redisconn.ParseWith(c.RedisURL, c.Redis)
	if err != nil {
		return fmt.Errorf("--redis-url: %w", err)
	}
	rdb := conn.Client()
	defer rdb.Close()

	sampleCtx, stopSampling := context.WithCancel(context.Background())
	defer stopSampling()
	samples := make(chan []statsSample, 1)
	rec := &codeRecorder{codes: map[int]int64{}}
	var (
		m     *measured
		trips func() int64
		stats func() *limiter.Stats
	)
	// The product's worker, with the limiter under test on its call path.
	w, err := assembly.New(assembly.Config{
		Redis:  rdb,
		Queue:  conn.AsynqOpt(),
		App:    tim.Config{SDKAppID: c.SDKAppID, SecretKey: c.SecretKey, Admin: c.Admin, Endpoint: c.Endpoint},
		Rate:   c.Rate,
		Worker: worker.Config{Concurrency: c.Concurrency, RetryBase: c.RetryBase, Handler: worker.HandlerConfig{Recorder: rec}},
		Logger: c.Logger,
		WrapLimiter: func(l *limiter.Limiter) (worker.Limiter, error) {
			var lim worker.Limiter
			switch c.Limiter {
			case LimiterShared:
				lim = l
				trips = func() int64 { return l.Stats().WaitRoundTrips }
				stats = func() *limiter.Stats { s := l.Stats(); return &s }
				go func() { samples <- sampleStats(sampleCtx, l) }()
			case LimiterLocal:
				lim = newLocalLimiter(c.Rate / float64(c.Procs))
				trips = func() int64 { return 0 }
			case LimiterFixedWindow:
				f := newFixedWindow(rdb, c.SDKAppID, int(c.Rate), time.Second)
				lim, trips = f, f.waitRoundTrips
			}
			m = &measured{inner: lim, waits: &Histogram{}, slotToAnswer: &Histogram{}}
			return m, nil
		},
	})
	if err != nil {
		return err
	}
	runErr := w.Run(ctx)
	rep := Report{
		PID:            os.Getpid(),
		Limiter:        c.Limiter,
		Calls:          m.calls.Load(),
		WaitRoundTrips: trips(),
		Waits:          m.waits,
		SlotToAnswer:   m.slotToAnswer,
		SlowDowns:      m.slowDowns.Load(),
		Codes:          rec.snapshot(),
	}
	if stats != nil {
		rep.Shared = stats()
		stopSampling()
		rep.Samples = <-samples
		rep.Slots = m.slots()
	}
	if err := w.Close(); err != nil {
		c.Logger.Warn("closing the worker", "err", err)
	}
	return errors.Join(runErr, writeReport(c.Report, rep))
}

// writeReport writes rep to path through a temporary file, so a reader
// never sees half of it.
func writeReport(path string, rep Report) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

// readReport reads a Report written by writeReport.
func readReport(path string) (Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Report{}, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return Report{}, fmt.Errorf("report %s: %w", path, err)
	}
	if rep.Waits == nil {
		rep.Waits = &Histogram{}
	}
	if rep.SlotToAnswer == nil {
		rep.SlotToAnswer = &Histogram{}
	}
	return rep, nil
}

// measured wraps the limiter under test and counts what the report needs,
// the same way for every limiter.
type measured struct {
	inner        worker.Limiter
	waits        *Histogram
	slotToAnswer *Histogram
	calls        atomic.Int64
	slowDowns    atomic.Int64

	mu         sync.Mutex
	redisSlots []int64 // µs, of the permits that carry one
}

func (m *measured) Wait(ctx context.Context, lane limiter.Lane) (limiter.Permit, error) {
	start := time.Now()
	p, err := m.inner.Wait(ctx, lane)
	if err == nil {
		m.waits.Record(time.Since(start))
		m.calls.Add(1)
		if !p.RedisSlot.IsZero() {
			m.mu.Lock()
			m.redisSlots = append(m.redisSlots, p.RedisSlot.UnixMicro())
			m.mu.Unlock()
		}
	}
	return p, err
}

func (m *measured) slots() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.redisSlots)
}

func (m *measured) Observe(p limiter.Permit, done time.Time) {
	if !p.Slot.IsZero() {
		m.slotToAnswer.Record(done.Sub(p.Slot))
	}
	m.inner.Observe(p, done)
}

func (m *measured) SlowDown(ctx context.Context, d time.Duration) error {
	m.slowDowns.Add(1)
	return m.inner.SlowDown(ctx, d)
}

// codeRecorder counts the answers by code.
type codeRecorder struct {
	mu    sync.Mutex
	codes map[int]int64
}

func (r *codeRecorder) Record(ev worker.Event) {
	r.mu.Lock()
	r.codes[ev.Code]++
	r.mu.Unlock()
}

func (r *codeRecorder) snapshot() map[int]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int]int64, len(r.codes))
	for k, v := range r.codes {
		out[k] = v
	}
	return out
}
