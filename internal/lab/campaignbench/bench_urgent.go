package campaignbench

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/sleep"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// Defaults of BenchUrgentOptions.
const (
	DefaultBenchBacklog = 100_000
	DefaultBenchUrgent  = 200
)

// BenchUrgentOptions configures BenchUrgent.
type BenchUrgentOptions struct {
	// Backlog is the campaign that saturates the cap. Default DefaultBenchBacklog.
	Backlog int
	// Urgent is how many urgent recalls each scenario queues. Default DefaultBenchUrgent.
	Urgent int
	// Spread: the urgent recalls of a saturated run are queued at random
	// times over this long. Default 20 s.
	Spread time.Duration
	// GapMin, GapMax: in the empty-queue runs each urgent recall follows
	// the previous one by a random gap in this range. Default 50-250 ms.
	GapMin, GapMax time.Duration
	// Idle is how long each idle Redis cost is measured. Default 10 s.
	Idle time.Duration
	// Contrast adds the runs that show what the defaults buy: AheadBulk 32
	// instead of 2, and asynq's TaskCheckInterval of 1 s instead of 50 ms.
	Contrast bool
	RunOptions
}

func (o *BenchUrgentOptions) defaults() {
	o.RunOptions.defaults()
	if o.Backlog <= 0 {
		o.Backlog = DefaultBenchBacklog
	}
	if o.Urgent <= 0 {
		o.Urgent = DefaultBenchUrgent
	}
	if o.Spread <= 0 {
		o.Spread = 20 * time.Second
	}
	if o.GapMin <= 0 && o.GapMax <= 0 {
		o.GapMin, o.GapMax = 50*time.Millisecond, 250*time.Millisecond
	}
	o.GapMax = max(o.GapMax, o.GapMin)
	if o.Idle <= 0 {
		o.Idle = 10 * time.Second
	}
}

// urgentBench is the shared setup of BenchUrgent's scenarios.
type urgentBench struct {
	o   BenchUrgentOptions
	srv *redistest.Server
	rdb *redis.Client
	app *simApp
	log *slog.Logger
}

// BenchUrgent measures how long an urgent recall takes from being queued
// to reaching the API: under a campaign that saturates the cap, and with
// empty queues; and what asynq's polling of empty queues costs Redis.
func BenchUrgent(ctx context.Context, o BenchUrgentOptions) error {
	o.defaults()
	srv, rdb, stop, err := launchRedis("recallq-bench-urgent-")
	if err != nil {
		return err
	}
	defer stop()
	b := &urgentBench{o: o, srv: srv, rdb: rdb, log: benchLogger(o.Progress)}
	if b.app, err = startSimApp(benchApp, o.LatencyMin, o.LatencyMax); err != nil {
		return err
	}
	defer b.app.close()
	info, _ := b.rdb.Info(ctx, "server").Result()

	fmt.Fprintf(o.Out, "recallq campaign bench-urgent: %d worker servers in one process, each with its own limiter and lane semaphores\n"+
		"(as %d worker processes), concurrency %d each; simulator latency %s-%s, cap %d/s; redis-server %s on loopback; %d CPUs\n\n",
		o.Workers, o.Workers, o.Concurrency, o.LatencyMin, o.LatencyMax, imsim.DefaultCap, infoField(info, "redis_version"), runtime.NumCPU())

	type scenario struct {
		name       string
		backlog    bool
		aheadBulk  int
		checkEvery time.Duration
	}
	scenarios := []scenario{{fmt.Sprintf("campaign backlog %s, AheadBulk %d", thousands(int64(o.Backlog)), limiter.DefaultAheadBulk), true, limiter.DefaultAheadBulk, worker.DefaultTaskCheckInterval}}
	if o.Contrast {
		scenarios = append(scenarios, scenario{fmt.Sprintf("campaign backlog %s, AheadBulk 32", thousands(int64(o.Backlog))), true, 32, worker.DefaultTaskCheckInterval})
	}
	scenarios = append(scenarios, scenario{"empty queues, TaskCheckInterval 50ms", false, limiter.DefaultAheadBulk, worker.DefaultTaskCheckInterval})
	if o.Contrast {
		scenarios = append(scenarios, scenario{"empty queues, TaskCheckInterval 1s (asynq's default)", false, limiter.DefaultAheadBulk, time.Second})
	}
	var rows []string
	for _, s := range scenarios {
		fmt.Fprintf(o.Progress, "scenario: %s\n", s.name)
		r, err := b.urgentRun(ctx, s.backlog, s.aheadBulk, s.checkEvery)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows = append(rows, fmt.Sprintf("  %-54s %9s %9s %9s %9s %12s %12s %8s %6d", s.name, ms(r.p50), ms(r.p90), ms(r.p99), ms(r.max),
			ms(r.waitP99), r.simRate, r.maxWindow, r.rejected))
	}
	fmt.Fprintf(o.Out, "urgent recall, from the producer's Enqueue call to its request reaching the simulator (%d recalls each):\n", o.Urgent)
	fmt.Fprintf(o.Out, "  %-54s %9s %9s %9s %9s %12s %12s %8s %6s\n", "scenario", "p50", "p90", "p99", "max", "lim.wait p99", "sim calls/s", "max/1s", "60007")
	for _, r := range rows {
		fmt.Fprintln(o.Out, r)
	}
	fmt.Fprintf(o.Out, "  targets: p99 <= 250 ms under a saturating campaign, <= 100 ms with empty queues\n")
	fmt.Fprintf(o.Out, "  lim.wait: time the urgent call spent in limiter.Wait (behind the slots already granted, bulk lookahead included)\n\n")

	fmt.Fprintf(o.Out, "Redis cost of idle workers (INFO over %s, nothing queued; commands include those run inside scripts):\n", o.Idle)
	fmt.Fprintf(o.Out, "  %-62s %11s %11s %11s %12s\n", "setup", "commands/s", "scripts/s", "Redis CPU", "cmds/s/proc")
	idle := []struct {
		name       string
		procs      int
		checkEvery time.Duration
		feeder     bool
	}{
		{"no recallq process", 0, 0, false},
		{fmt.Sprintf("%d workers, TaskCheckInterval 50ms, with the campaign feeder", o.Workers), o.Workers, worker.DefaultTaskCheckInterval, true},
		{fmt.Sprintf("%d workers, TaskCheckInterval 50ms, no feeder", o.Workers), o.Workers, worker.DefaultTaskCheckInterval, false},
		{fmt.Sprintf("%d workers, TaskCheckInterval 1s, no feeder", o.Workers), o.Workers, time.Second, false},
	}
	for _, s := range idle {
		fmt.Fprintf(o.Progress, "idle: %s\n", s.name)
		c, err := b.idleCost(ctx, s.procs, s.checkEvery, s.feeder)
		if err != nil {
			return err
		}
		per := "-"
		if s.procs > 0 {
			per = fmt.Sprintf("%.1f", c.commands/float64(s.procs))
		}
		fmt.Fprintf(o.Out, "  %-62s %11.1f %11.1f %10.2f%% %12s\n", s.name, c.commands, c.scripts, c.cpu, per)
	}
	return nil
}

// startFleet starts the worker servers of the one app.
func (b *urgentBench) startFleet(procs, aheadBulk int, checkEvery time.Duration, feeders bool) (*fleet, error) {
	return startFleet(fleetConfig{addr: b.srv.Addr, apps: []*simApp{b.app}, procs: procs, concurrency: b.o.Concurrency,
		aheadBulk: aheadBulk, checkEvery: checkEvery, feeders: feeders, log: b.log})
}

type urgentResult struct {
	p50, p90, p99, max, waitP99 time.Duration
	simRate, maxWindow          string
	rejected                    int64
}

// reset empties Redis and the simulator between scenarios.
func (b *urgentBench) reset(ctx context.Context) error {
	b.app.reset()
	return b.rdb.FlushAll(ctx).Err()
}

func (b *urgentBench) urgentRun(ctx context.Context, backlog bool, aheadBulk int, checkEvery time.Duration) (urgentResult, error) {
	if err := b.reset(ctx); err != nil {
		return urgentResult{}, err
	}
	if backlog {
		if err := importCampaign(ctx, b.rdb, benchApp, "backlog", 0, b.o.Backlog, b.o.Progress); err != nil {
			return urgentResult{}, err
		}
	}
	fl, err := b.startFleet(b.o.Workers, aheadBulk, checkEvery, true)
	if err != nil {
		return urgentResult{}, err
	}
	defer fl.stop()
	if backlog {
		if err := waitSaturated(ctx, b.app.sim, b.o.Progress); err != nil {
			return urgentResult{}, err
		}
	}
	c, err := enqueue.New(enqueue.Config{RedisURL: b.srv.URL, SDKAppID: benchApp})
	if err != nil {
		return urgentResult{}, err
	}
	defer c.Close()
	if !backlog {
		// The first call after FLUSHALL finds the limiter's schedule gone
		// and restarts it one Horizon (1 s) ahead, by design (see package
		// limiter); a live system has its schedule. One call takes that
		// hit before the measurement; then every poller goes idle.
		warm := urgentPrefix + "_warm_1"
		if _, err := c.Recall(ctx, tasks.Recall{FromAccount: "urgentwarm", ToAccount: "moderated", MsgKey: warm}); err != nil {
			return urgentResult{}, err
		}
		for _, ok := b.app.arrived.Load(warm); !ok && ctx.Err() == nil; _, ok = b.app.arrived.Load(warm) {
			_ = sleep.For(ctx, 10*time.Millisecond)
		}
		_ = sleep.For(ctx, time.Second)
		b.app.arrived.Clear()
		fl.clearWaits()
	}
	b.app.sim.ResetStats()

	// When to queue each urgent recall, from now.
	var at []time.Duration
	if backlog {
		at = randomTimes(b.o.Urgent, b.o.Spread)
	} else {
		at = make([]time.Duration, b.o.Urgent)
		var t time.Duration
		for i := range at {
			t += b.o.GapMin + time.Duration(mrand.Int64N(int64(b.o.GapMax-b.o.GapMin)+1))
			at[i] = t
		}
	}
	queued, err := queueUrgent(ctx, c, at)
	if err != nil {
		return urgentResult{}, err
	}
	sorted, err := awaitUrgent(ctx, b.app, queued)
	if err != nil {
		return urgentResult{}, err
	}
	st := b.app.sim.Stats()
	if backlog {
		// Still saturating when the last urgent recall went?
		if n, _ := backlogLen(ctx, b.rdb, b.srv.Addr, "backlog"); n == 0 {
			return urgentResult{}, fmt.Errorf("the campaign backlog ran out during the run: use a larger --backlog")
		}
	}
	waits := fl.urgentWaits()
	r := urgentResult{p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted[len(sorted)-1],
		waitP99: percentile(waits, 99), rejected: st.Rejected60007, simRate: "-", maxWindow: fmt.Sprint(st.MaxInAnyWindow)}
	if rate, ok := busyRate(st.PerSecond); backlog && ok {
		r.simRate = fmt.Sprintf("%.1f", rate)
	}
	return r, nil
}

// idleCost is what idle workers cost Redis, per second.
type idleCost struct {
	commands, scripts, cpu float64 // commands (those run by scripts included), script calls, Redis CPU %
}

// idleCost measures Redis's load with procs idle workers.
func (b *urgentBench) idleCost(ctx context.Context, procs int, checkEvery time.Duration, feeders bool) (idleCost, error) {
	if err := b.reset(ctx); err != nil {
		return idleCost{}, err
	}
	if procs > 0 {
		fl, err := b.startFleet(procs, limiter.DefaultAheadBulk, checkEvery, feeders)
		if err != nil {
			return idleCost{}, err
		}
		defer fl.stop()
	}
	_ = sleep.For(ctx, 2*time.Second) // start-up traffic settles
	s0, err := b.load(ctx)
	if err != nil {
		return idleCost{}, err
	}
	t0 := time.Now()
	_ = sleep.For(ctx, b.o.Idle)
	s1, err := b.load(ctx)
	if err != nil {
		return idleCost{}, err
	}
	sec := time.Since(t0).Seconds()
	// -1: the first INFO, counted once it ran.
	return idleCost{commands: (s1.commands - s0.commands - 1) / sec, scripts: (s1.scripts - s0.scripts) / sec,
		cpu: 100 * (s1.cpu - s0.cpu) / sec}, ctx.Err()
}

// load reads Redis's cumulative counters: commands processed, script
// calls, CPU seconds.
func (b *urgentBench) load(ctx context.Context) (idleCost, error) {
	info, err := b.rdb.Info(ctx, "stats", "commandstats", "cpu").Result()
	if err != nil {
		return idleCost{}, err
	}
	var c idleCost
	for _, l := range strings.Split(info, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "total_commands_processed:"):
			c.commands, _ = strconv.ParseFloat(strings.TrimPrefix(l, "total_commands_processed:"), 64)
		case strings.HasPrefix(l, "cmdstat_evalsha:"), strings.HasPrefix(l, "cmdstat_eval:"):
			// cmdstat_evalsha:calls=N,usec=...
			if _, rest, ok := strings.Cut(l, "calls="); ok {
				n, _ := strconv.ParseFloat(rest[:strings.IndexByte(rest+",", ',')], 64)
				c.scripts += n
			}
		case strings.HasPrefix(l, "used_cpu_sys:"), strings.HasPrefix(l, "used_cpu_user:"):
			_, v, _ := strings.Cut(l, ":")
			f, _ := strconv.ParseFloat(v, 64)
			c.cpu += f
		}
	}
	return c, nil
}
