// Package bench is recallq's rate-limiter benchmark ("recallq-lab bench"):
// in one run it measures, end to end, how close a fleet of worker processes
// keeps to Tencent's cap of 200 calls in any sliding second with the shared
// limiter (internal/limiter), and with the two designs the peers use: a
// golang.org/x/time/rate limiter per process (what asynq's documentation
// recommends) and a fixed-window counter in Redis (BullMQ's).
//
// Everything is real but the remote API: a redis-server (redistest.Launch),
// the simulator as a child process ("imsim", which applies its latency
// before it counts an arrival, as the network does), the producer library
// to queue the recalls, and worker processes re-executing the same binary
// ("recallq-lab bench-worker", RunWorkerArgs), each the product's worker as
// the worker command builds it (assembly.New: metrics, campaign recorder and
// feeder included), with the limiter under test on its call path. The
// figures come from the simulator (what Tencent would have seen), asynq's Inspector (when the
// queue was busy and when it drained) and a report each worker writes when
// it stops.
//
// Every wait is bounded, every child is stopped on the way out (and, on
// Linux, killed by the kernel should the benchmark itself be killed), and
// every address is loopback.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/simproc"
	"github.com/recallq/recallq/internal/sleep"
	"github.com/recallq/recallq/worker"
)

// Limiter names, as --limiters and the table's first column give them.
const (
	// LimiterShared is internal/limiter: one GCRA schedule in Redis for
	// every process.
	LimiterShared = "shared"
	// LimiterLocal is golang.org/x/time/rate in each process at the rate
	// divided by the number of processes.
	LimiterLocal = "local"
	// LimiterFixedWindow is a Redis counter per window shared by every
	// process, as BullMQ limits a queue.
	LimiterFixedWindow = "fixedwindow"
)

// Cap is the simulator's limit, Tencent's for admin_msgwithdraw: calls in
// any sliding second.
const Cap = 200

// Defaults of Options.
const (
	// DefaultTasks is how many recalls each configuration queues: about 15
	// seconds at the cap.
	DefaultTasks = 3000
	// DefaultFailRate is the fraction of calls the simulator answers 91000
	// (the command's default; Options.FailRate 0 means none).
	DefaultFailRate = 0.05
	// DefaultKillProcs is how many processes the kill run starts.
	DefaultKillProcs = 4
	// DefaultQuietWait bounds the wait for a quiet machine.
	DefaultQuietWait = 3 * time.Minute
	// DefaultRetryBase is the bench workers' worker.Config.RetryBase: short,
	// so the retries of 91000 answers do not dominate the drain.
	DefaultRetryBase = 200 * time.Millisecond
)

// pollEvery is how often the benchmark samples the queue.
const pollEvery = 100 * time.Millisecond

// sdkAppID is the simulated app.
const sdkAppID = simproc.SDKAppID

// DefaultLatencies, DefaultProcs and DefaultLimiters are the defaults of the
// Options fields of the same names.
var (
	DefaultLatencies = []Spread{{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}}
	DefaultProcs     = []int{1, 4, 16}
	DefaultLimiters  = []string{LimiterShared, LimiterLocal, LimiterFixedWindow}
)

// DefaultConcurrency is the concurrency per process for procs processes: 64
// in all up to 8 processes, 8 each beyond. At the cap and 50 ms of latency
// about 10 calls are in flight; the rest covers the time a task spends
// queued in the limiter and in asynq's own round trips.
func DefaultConcurrency(procs int) int { return max(8, 64/procs) }

// Spread is the simulator's latency: a uniform range, or a lognormal tail
// when Tail is set.
type Spread struct {
	Min, Max time.Duration
	Tail     imsim.Tail
}

// String is the form ParseLatencies reads: "20ms-50ms", or
// "lognormal:80ms:600ms" (median, p99).
func (s Spread) String() string {
	if s.Tail != (imsim.Tail{}) {
		return "lognormal:" + s.Tail.Median.String() + ":" + s.Tail.P99.String()
	}
	return s.Min.String() + "-" + s.Max.String()
}

// simArgs are the simulator's flags for s.
func (s Spread) simArgs() []string {
	if s.Tail != (imsim.Tail{}) {
		return []string{"--latency-tail", s.Tail.String()}
	}
	return []string{"--latency", s.Min.String() + "-" + s.Max.String()}
}

// ParseLatencies reads a comma-separated list of latencies, each a duration
// ("30ms"), a range ("20ms-50ms") or a heavy tail "lognormal:MEDIAN:P99"
// ("lognormal:80ms:600ms").
func ParseLatencies(list string) ([]Spread, error) {
	var out []Spread
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if spec, ok := strings.CutPrefix(item, "lognormal:"); ok {
			tail, err := imsim.ParseTail(strings.Replace(spec, ":", ",", 1))
			if err != nil {
				return nil, fmt.Errorf("latency %q: give lognormal:MEDIAN:P99 such as lognormal:80ms:600ms", item)
			}
			out = append(out, Spread{Tail: tail})
			continue
		}
		lo, hi, isRange := strings.Cut(item, "-")
		min, err := time.ParseDuration(strings.TrimSpace(lo))
		if err != nil || min < 0 {
			return nil, fmt.Errorf("latency %q: give a duration such as 30ms or a range such as 20ms-50ms", item)
		}
		max := min
		if isRange {
			if max, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil || max < min {
				return nil, fmt.Errorf("latency %q: give a range low-high such as 20ms-50ms", item)
			}
		}
		out = append(out, Spread{Min: min, Max: max})
	}
	return out, nil
}

// Executable returns the path that re-executes the running binary: on
// Linux /proc/self/exe, which stays this very binary even if its file is
// replaced or removed while the benchmark runs; elsewhere os.Executable().
func Executable() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Stat(self); err == nil {
		return self, nil
	}
	return os.Executable()
}

// Options configures Run.
type Options struct {
	// Exe is the recallq binary the children run: it must answer SimCommand
	// and WorkerCommand. Required (the command passes Executable()).
	Exe string
	// Latencies: one table each. Default DefaultLatencies.
	Latencies []Spread
	// Procs are the process counts of each limiter. Default DefaultProcs.
	Procs []int
	// Limiters to run, in order. Default DefaultLimiters.
	Limiters []string
	// Tasks per configuration. Default DefaultTasks.
	Tasks int
	// Concurrency per process; 0 means DefaultConcurrency(procs).
	Concurrency int
	// FailRate of the simulator; 0 means none (the command's default is
	// DefaultFailRate).
	FailRate float64
	// Rate is the rate every limiter is configured with, as RECALL_RATE
	// configures the product's workers; default Cap. Below Cap it leaves a
	// margin under the simulator's cap.
	Rate float64
	// QuietBelow, when positive, makes each configuration wait (up to
	// QuietWait) until the machine's CPUs are busy with at most this many
	// cores' worth of work, measured over a second: on a shared machine
	// other processes' load shows as latency spread. 0 does not wait.
	QuietBelow float64
	// QuietWait bounds that wait; default DefaultQuietWait.
	QuietWait time.Duration
	// Keep keeps the children's logs and reports (the run's directory is
	// printed); by default they are removed unless the run failed.
	Keep bool
	// Kill adds the kill run (shared limiter, KillProcs processes, one
	// killed when half the tasks are done) after each table.
	Kill bool
	// KillProcs: default DefaultKillProcs.
	KillProcs int
	// Stall adds the stall run (shared limiter, KillProcs processes): every
	// 1.5 s one worker process, in turn, is stopped (SIGSTOP) for 300-700 ms
	// and continued, as GC pauses and CPU throttling stop a pod.
	Stall bool
	// OutsideRate, when positive, is the shared-quota profile: the
	// simulator counts a steady outside load of this many calls per second
	// toward its cap in every configuration (another service of the same
	// app), the limiters still configured with Rate, and each table is
	// followed by the shared-quota figures (quota.go). Below Cap.
	OutsideRate float64
	// BadPod adds the bad-pod run (shared limiter, KillProcs processes):
	// one worker signs as an account that is no admin, so every call it
	// makes is answered 90009, as for a pod with a wrong TIM_ADMIN.
	BadPod bool
	// DrainTimeout bounds one configuration's wait for its queue to drain;
	// 0 means 30 s + Tasks/50 s (four times the time at the cap). The kill
	// run gets 150 s more: asynq recovers the killed worker's tasks only
	// after their lease expired.
	DrainTimeout time.Duration
	// CommandLine is printed at the top.
	CommandLine string
	// Out receives the tables. Default io.Discard.
	Out io.Writer
	// Progress receives a line as each step starts. Default io.Discard.
	Progress io.Writer
}

func (o *Options) setDefaults() error {
	if o.Exe == "" {
		return fmt.Errorf("bench: Options.Exe is not set: give the recallq binary the children run")
	}
	if len(o.Latencies) == 0 {
		o.Latencies = DefaultLatencies
	}
	if len(o.Procs) == 0 {
		o.Procs = DefaultProcs
	}
	if len(o.Limiters) == 0 {
		o.Limiters = DefaultLimiters
	}
	if o.Tasks == 0 {
		o.Tasks = DefaultTasks
	}
	if o.Rate == 0 {
		o.Rate = Cap
	}
	if o.QuietWait == 0 {
		o.QuietWait = DefaultQuietWait
	}
	if o.KillProcs == 0 {
		o.KillProcs = DefaultKillProcs
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30*time.Second + time.Duration(o.Tasks)*time.Second/50
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	for _, p := range o.Procs {
		if p < 1 {
			return fmt.Errorf("bench: Options.Procs has %d: every count must be at least 1", p)
		}
	}
	for _, l := range o.Limiters {
		if l != LimiterShared && l != LimiterLocal && l != LimiterFixedWindow {
			return fmt.Errorf("bench: Options.Limiters has %q: use %s, %s or %s", l, LimiterShared, LimiterLocal, LimiterFixedWindow)
		}
	}
	switch {
	case o.Tasks < 1:
		return fmt.Errorf("bench: Options.Tasks is %d: at least 1", o.Tasks)
	case o.Concurrency < 0:
		return fmt.Errorf("bench: Options.Concurrency is %d: 0 (automatic) or more", o.Concurrency)
	case !(o.Rate > 0) || o.Rate > Cap:
		return fmt.Errorf("bench: Options.Rate is %v: above 0 and at most %d", o.Rate, Cap)
	case !(o.OutsideRate >= 0) || o.OutsideRate >= Cap:
		return fmt.Errorf("bench: Options.OutsideRate is %v: 0 (none) or more, below %d", o.OutsideRate, Cap)
	case o.FailRate < 0 || o.FailRate > 1:
		return fmt.Errorf("bench: Options.FailRate is %v: between 0 and 1", o.FailRate)
	case o.KillProcs < 2:
		return fmt.Errorf("bench: Options.KillProcs is %d: the kill run needs at least 2 processes", o.KillProcs)
	case o.QuietBelow < 0 || o.QuietWait < 0:
		return fmt.Errorf("bench: Options.QuietBelow %v and QuietWait %s must not be negative", o.QuietBelow, o.QuietWait)
	case o.DrainTimeout < 0:
		return fmt.Errorf("bench: Options.DrainTimeout is %s: it must be positive", o.DrainTimeout)
	}
	return nil
}

// bench is one run.
type bench struct {
	o        Options
	dir      string // logs, reports, Redis's files
	secret   string // the simulated app's secret key
	nonce    int64  // makes every run's MsgKeys its own
	procs    children
	redisURL string
	redisPID int // for its CPU time; 0 if unknown
	rdb      *redis.Client
	insp     *asynq.Inspector
}

// Run runs every configuration of o and prints the tables to o.Out. It
// returns ctx.Err() when ctx ends first, or an error that stopped the whole
// run (Redis or the simulator would not start); a configuration that fails
// or does not drain is reported in its table and the run goes on.
func Run(ctx context.Context, o Options) (err error) {
	if err := o.setDefaults(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "recallq-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b := &bench{o: o, dir: dir, secret: simproc.NewSecret(), nonce: time.Now().Unix()}
	defer func() {
		b.procs.KillAll()
		if err == nil && !o.Keep {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintf(o.Progress, "bench: children's logs kept in %s\n", dir)
		}
	}()

	b.header()
	redisDir := filepath.Join(dir, "redis")
	if err := os.Mkdir(redisDir, 0o700); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	srv, err := redistest.Launch(redisDir)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer srv.Stop()
	b.redisURL = srv.URL
	b.rdb = redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer b.rdb.Close()
	b.insp = asynq.NewInspector(asynq.RedisClientOpt{Addr: srv.Addr})
	defer b.insp.Close()
	b.redisPID = redisPID(ctx, b.rdb)
	fmt.Fprintf(o.Progress, "bench: redis-server at %s, files in %s\n", srv.Addr, dir)

	for _, sp := range o.Latencies {
		if err := b.runSpread(ctx, sp); err != nil {
			return err
		}
	}
	return nil
}

// runSpread starts a simulator with the spread and runs every configuration
// against it: one table.
func (b *bench) runSpread(ctx context.Context, sp Spread) error {
	o := b.o
	fmt.Fprintf(o.Progress, "bench: starting the simulator, latency %s\n", sp)
	sim, err := b.startSim(ctx, sp)
	if err != nil {
		return err
	}
	defer func() {
		if err := sim.stop(); err != nil {
			fmt.Fprintf(o.Progress, "bench: simulator: %v\n", err)
		}
	}()

	outside := ""
	if o.OutsideRate > 0 {
		outside = fmt.Sprintf(", outside load %v/s", o.OutsideRate)
	}
	fmt.Fprintf(o.Out, "\n## latency %s, fail rate %v%s, %d tasks per configuration, simulator at %s (%s)\n", sp, o.FailRate, outside, o.Tasks, sim.url, sim.Priority)
	fmt.Fprintln(o.Out, headerLine())
	var notes, quota []string
	var configs []config
	for _, l := range o.Limiters {
		for _, p := range o.Procs {
			configs = append(configs, config{limiter: l, procs: p, concurrency: b.concurrency(p)})
		}
	}
	if o.Kill {
		configs = append(configs, config{limiter: LimiterShared, procs: o.KillProcs, concurrency: b.concurrency(o.KillProcs), kill: true})
	}
	if o.Stall {
		configs = append(configs, config{limiter: LimiterShared, procs: o.KillProcs, concurrency: b.concurrency(o.KillProcs), stall: true})
	}
	if o.BadPod {
		configs = append(configs, config{limiter: LimiterShared, procs: o.KillProcs, concurrency: b.concurrency(o.KillProcs), badPod: true})
	}
	for i, c := range configs {
		c.index = i
		fmt.Fprintf(o.Progress, "bench: latency %s: %s\n", sp, c)
		quiet, err := b.waitQuiet(ctx)
		if err != nil {
			return err
		}
		res, err := b.runConfig(ctx, sim, c)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			fmt.Fprintf(o.Out, "%-13s %5d  error: %v\n", c.label(), c.procs, err)
			notes = append(notes, fmt.Sprintf("%s P=%d: %v", c.label(), c.procs, err))
			continue
		}
		fmt.Fprintln(o.Out, res.row.line())
		if res.quota != nil {
			quota = append(quota, res.quota.line())
		}
		if quiet != "" {
			res.notes[0] += "; " + quiet
		}
		notes = append(notes, res.notes...)
	}
	fmt.Fprintln(o.Out, "#")
	for _, n := range notes {
		fmt.Fprintln(o.Out, "# "+n)
	}
	if len(quota) > 0 {
		fmt.Fprintln(o.Out, quotaHeader(o.OutsideRate))
		for _, q := range quota {
			fmt.Fprintln(o.Out, q)
		}
	}
	return nil
}

func (b *bench) concurrency(procs int) int {
	if b.o.Concurrency > 0 {
		return b.o.Concurrency
	}
	return DefaultConcurrency(procs)
}

// waitQuiet waits, when Options.QuietBelow asks for it, until the machine's
// busy CPU over a second is at most QuietBelow cores, or QuietWait passed.
// It says what it did, for the configuration's note.
func (b *bench) waitQuiet(ctx context.Context) (string, error) {
	if b.o.QuietBelow <= 0 {
		return "", nil
	}
	start := time.Now()
	var busy float64
	for {
		a := takeCPU()
		if err := sleep.For(ctx, time.Second); err != nil {
			return "", err
		}
		use := cpuBetween(a, takeCPU(), 0)
		if !use.ok {
			return "", nil
		}
		busy = use.machine
		if busy <= b.o.QuietBelow {
			return fmt.Sprintf("waited %.0f s for a quiet machine (%.2f cores busy at the start)", time.Since(start).Seconds(), busy), nil
		}
		if time.Since(start) >= b.o.QuietWait {
			fmt.Fprintf(b.o.Progress, "bench:   the machine stayed busy (%.2f cores) for %s: running anyway\n", busy, b.o.QuietWait)
			return fmt.Sprintf("the machine stayed busy for %s (%.2f cores busy at the start)", b.o.QuietWait, busy), nil
		}
	}
}

// appEnv is a child's environment: the simulated app and its secret.
func (b *bench) appEnv() []string {
	return simproc.AppEnv(b.secret)
}

// header prints the machine, the command and what every column means.
func (b *bench) header() {
	o := b.o
	w := o.Out
	conc := make([]string, 0, len(o.Procs))
	for _, p := range o.Procs {
		conc = append(conc, fmt.Sprintf("P=%d:%d", p, b.concurrency(p)))
	}
	fmt.Fprintf(w, "# recallq bench: the shared limiter against the peers' limiters, end to end\n")
	fmt.Fprintf(w, "# command: %s\n", o.CommandLine)
	fmt.Fprintf(w, "# machine: nproc %d, %s, %s/%s, %s, %s; %s\n", runtime.NumCPU(), cpuModel(),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), redistest.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "# simulator: recallq imsim --latency L --fail-rate %v, its own process; cap %d calls in any sliding 1 s (60007 beyond);\n", o.FailRate, Cap)
	fmt.Fprintf(w, "#   the latency is slept before an arrival is counted; it runs at nice %d when allowed: it stands in for a remote\n", simproc.Nice)
	fmt.Fprintf(w, "#   server, whose clock this machine's load must not stall\n")
	fmt.Fprintf(w, "# every limiter is configured with rate %v/s (RECALL_RATE); the cap is %d\n", o.Rate, Cap)
	if o.OutsideRate > 0 {
		free := Cap - o.OutsideRate
		fmt.Fprintf(w, "# shared quota: the simulator counts an outside load of %v calls/s (evenly spaced, --outside-rate) toward its cap; a refused\n", o.OutsideRate)
		fmt.Fprintf(w, "#   call, outside or not, does not count. rate_busy/s and 60007s are recallq's own calls; max_in_any_1s counts every arrival\n")
		fmt.Fprintf(w, "#   converge_s  from recallq's first call to the first second from which every second until the queue ran dry held\n")
		fmt.Fprintf(w, "#               %.0f-%.0f of recallq's calls (%.0f%%-100%% of the free share %v/s), refused ones included; 1 s resolution\n", steadyLow*free, free, 100*steadyLow, free)
		fmt.Fprintf(w, "#   steady_s    how many seconds that lasted; own_useful/s recallq's calls not answered 60007 per busy second;\n")
		fmt.Fprintf(w, "#   own_60007   recallq's calls answered 60007 over the run / its calls; outside_60007 the outside caller's refused/made\n")
	}
	fmt.Fprintf(w, "# workers: P processes of recallq bench-worker, each the product's worker (assembly.New) with RetryBase %s (RetryMax %s),\n", DefaultRetryBase, worker.DefaultRetryMax)
	fmt.Fprintf(w, "#   DelayedTaskCheckInterval %s, TaskCheckInterval %s, ShutdownTimeout %s (worker defaults); concurrency per process %s\n",
		worker.DefaultDelayedTaskCheckInterval, worker.DefaultTaskCheckInterval, worker.DefaultShutdownTimeout, strings.Join(conc, " "))
	if o.QuietBelow > 0 {
		fmt.Fprintf(w, "# before each configuration: wait up to %s until at most %.2f cores of the machine are busy (over 1 s)\n", o.QuietWait, o.QuietBelow)
	}
	fmt.Fprintf(w, "# each configuration: FLUSHALL, POST /sim/reset, queue the tasks (urgent lane, enqueue library), start the workers,\n")
	fmt.Fprintf(w, "#   (shared only: take one slot first, so a fresh schedule's one-Horizon pause is over before the workers start),\n")
	fmt.Fprintf(w, "#   wait until every task is completed or archived (asynq Inspector, every %s), SIGTERM the workers, read their reports\n", pollEvery)
	fmt.Fprintf(w, "# limiters:\n")
	fmt.Fprintf(w, "#   shared       internal/limiter: one GCRA schedule in Redis for all processes, paced at r*(1+D) + 5*sqrt(r*G) = rate, G the\n")
	fmt.Fprintf(w, "#                measured mean difference of two latencies; a call later than D = %s after its slot is dropped\n", limiter.DefaultLateCutoff)
	fmt.Fprintf(w, "#   local        golang.org/x/time/rate in each process at rate/P, burst 1 (asynq's wiki recipe); SlowDown pauses that process only\n")
	fmt.Fprintf(w, "#   fixedwindow  BullMQ's: a Redis counter per 1 s window, PEXPIREd when the window's first call INCRs it; at rate callers wait\n")
	fmt.Fprintf(w, "#                the key's PTTL and ask again; SlowDown fills the window for its duration (BullMQ's rateLimit)\n")
	fmt.Fprintf(w, "# columns:\n")
	fmt.Fprintf(w, "#   wall_s          from starting the workers until every task was completed or archived\n")
	fmt.Fprintf(w, "#   rate_busy/s     calls the simulator counted in the busy seconds / their number. A busy second is a whole second\n")
	fmt.Fprintf(w, "#                   of the simulator's clock (from its reset) after the first counted call and after the last worker\n")
	fmt.Fprintf(w, "#                   was started, throughout which the queue had tasks pending (every Inspector sample from the one\n")
	fmt.Fprintf(w, "#                   before the second to the one after it): the workers had work and only the limiter held them back\n")
	fmt.Fprintf(w, "#   utilisation     rate_busy / %d\n", Cap)
	fmt.Fprintf(w, "#   max_in_any_1s   most calls the simulator counted in any sliding second (/sim/stats max_in_any_window)\n")
	fmt.Fprintf(w, "#                   (the detail line's \"on time\": the same, each of recallq's calls placed when the simulator read\n")
	fmt.Fprintf(w, "#                   it plus its latency, where a remote server never starved of CPU would count it; \"sent\": the\n")
	fmt.Fprintf(w, "#                   same by when the simulator read each call, before its latency: a burst of sends shows there)\n")
	fmt.Fprintf(w, "#   60007s          calls the simulator rejected for the rate (/sim/stats rejected_60007)\n")
	fmt.Fprintf(w, "#   redis_ops/call  limiter Redis round trips on the wait path / calls, summed over the workers' reports\n")
	fmt.Fprintf(w, "#   wait_p99        99th percentile of the time a call spent in Limiter.Wait, all workers merged (log histogram, <1.6%%)\n")
	fmt.Fprintf(w, "#   busy_s          how many busy seconds rate_busy/s averages over\n")
	fmt.Fprintf(w, "#   left            tasks neither completed nor archived when the configuration stopped (0: drained)\n")
}

// redisPID is the process_id INFO server reports, or 0.
func redisPID(ctx context.Context, rdb *redis.Client) int {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ := strconv.Atoi(v)
			return pid
		}
	}
	return 0
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "CPU model unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "CPU model unknown"
}
