package campaignbench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/sleep"
	"github.com/recallq/recallq/worker"
)

// Defaults of BenchAppsOptions.
const (
	// DefaultBenchAppsBacklog is app A's campaign. A million rows work
	// (issue 13's figure) but take about 85 minutes to drain at 200/s, and
	// the run does not wait for them: it measures app A while app B works.
	DefaultBenchAppsBacklog = 100_000
	// DefaultBenchAppsCampaign is app B's campaign: about 100 s at 200/s.
	DefaultBenchAppsCampaign = 20_000
	// DefaultBenchAppsUrgent is how many urgent recalls app B queues.
	DefaultBenchAppsUrgent = 200
	// DefaultBenchAppsSpread is how long they are spread over.
	DefaultBenchAppsSpread = 60 * time.Second
)

// The two apps of BenchApps.
const (
	benchAppA = benchApp
	benchAppB = benchApp + 1
)

// BenchAppsOptions configures BenchApps.
type BenchAppsOptions struct {
	// Backlog is app A's saturating campaign. Default DefaultBenchAppsBacklog.
	Backlog int
	// Campaign is app B's campaign. Default DefaultBenchAppsCampaign.
	Campaign int
	// Urgent is how many urgent recalls app B queues while both campaigns
	// run. Default DefaultBenchAppsUrgent.
	Urgent int
	// Spread: app B's urgent recalls are queued at random times over this
	// long, from app A's saturating its cap. Default DefaultBenchAppsSpread.
	Spread time.Duration
	// RunOptions: each worker server serves both apps, as a worker
	// process with an apps file does; Concurrency is per app.
	RunOptions
}

func (o *BenchAppsOptions) defaults() {
	o.RunOptions.defaults()
	if o.Backlog <= 0 {
		o.Backlog = DefaultBenchAppsBacklog
	}
	if o.Campaign <= 0 {
		o.Campaign = DefaultBenchAppsCampaign
	}
	if o.Urgent <= 0 {
		o.Urgent = DefaultBenchAppsUrgent
	}
	if o.Spread <= 0 {
		o.Spread = DefaultBenchAppsSpread
	}
}

// BenchApps runs two apps on one redis-server, each with its own
// simulator: app A with a campaign that saturates its cap, app B with a
// campaign of its own and urgent recalls at random times. It prints each
// app's calls/s and most calls in any sliding second at its simulator, its
// campaign's drain rate, and app B's urgent queue-to-API times: whether a
// saturated app slows another one. It stops once app B's campaign and
// urgent recalls are done; app A's campaign is left undrained.
func BenchApps(ctx context.Context, o BenchAppsOptions) error {
	o.defaults()
	srv, rdb, stop, err := launchRedis("recallq-bench-apps-")
	if err != nil {
		return err
	}
	defer stop()
	a, err := startSimApp(benchAppA, o.LatencyMin, o.LatencyMax)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := startSimApp(benchAppB, o.LatencyMin, o.LatencyMax)
	if err != nil {
		return err
	}
	defer b.close()
	info, _ := rdb.Info(ctx, "server").Result()

	fmt.Fprintf(o.Out, "recallq-lab bench-apps: two apps on one redis-server %s (loopback), each its own simulator (SDKAppID and secret;\n"+
		"latency %s-%s, cap %d in any sliding second); %d worker servers in one process, each serving both apps as a worker\n"+
		"with an apps file does (assembly.Workers), concurrency %d per app; %d CPUs\n",
		infoField(info, "redis_version"), o.LatencyMin, o.LatencyMax, imsim.DefaultCap, o.Workers, o.Concurrency, runtime.NumCPU())
	fmt.Fprintf(o.Out, "  app A %d: a campaign of %s rows that saturates its cap (not drained: measured while app B works)\n",
		benchAppA, thousands(int64(o.Backlog)))
	fmt.Fprintf(o.Out, "  app B %d: a campaign of %s rows and %d urgent recalls queued at random times over %s\n\n",
		benchAppB, thousands(int64(o.Campaign)), o.Urgent, o.Spread)

	const nameA, nameB = "apps-a", "apps-b"
	if err := importCampaign(ctx, rdb, benchAppA, nameA, 0, o.Backlog, o.Progress); err != nil {
		return err
	}
	if err := importCampaign(ctx, rdb, benchAppB, nameB, o.Backlog, o.Campaign, o.Progress); err != nil {
		return err
	}
	m, err := campaign.NewManager(campaign.ManagerConfig{Redis: rdb, Queue: asynq.RedisClientOpt{Addr: srv.Addr}})
	if err != nil {
		return err
	}
	defer m.Close()

	fl, err := startFleet(fleetConfig{addr: srv.Addr, apps: []*simApp{a, b}, procs: o.Workers, concurrency: o.Concurrency,
		aheadBulk: limiter.DefaultAheadBulk, checkEvery: worker.DefaultTaskCheckInterval, feeders: true, log: benchLogger(o.Progress)})
	if err != nil {
		return err
	}
	defer fl.stop()
	// A machine too busy to reach the cap still gives figures: the window
	// starts after the 20 s bound, and the output says so.
	unsaturated := waitSaturated(ctx, a.sim, o.Progress)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	t0 := time.Now()
	doneA0, err := campaignDone(ctx, m, nameA)
	if err != nil {
		return err
	}
	doneB0, err := campaignDone(ctx, m, nameB)
	if err != nil {
		return err
	}

	c, err := enqueue.New(enqueue.Config{RedisURL: srv.URL, SDKAppID: benchAppB})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(o.Progress, "queueing app B's %d urgent recalls over %s\n", o.Urgent, o.Spread)
	queued, err := queueUrgent(ctx, c, randomTimes(o.Urgent, o.Spread))
	if err != nil {
		return err
	}
	stB, err := m.Status(ctx, nameB)
	if err != nil {
		return err
	}
	bRanOut := stB.Pending == 0
	lat, err := awaitUrgent(ctx, b, queued)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Progress, "app B's urgent recalls done; waiting for its campaign (%d rows pending)\n", stB.Pending)
	tB, doneB1, err := awaitDrained(ctx, m, nameB, time.Duration(stB.Pending)*10*time.Millisecond+time.Minute)
	if err != nil {
		return err
	}
	t1 := time.Now()
	doneA1, err := campaignDone(ctx, m, nameA)
	if err != nil {
		return err
	}
	stA, err := m.Status(ctx, nameA)
	if err != nil {
		return err
	}
	simA, simB := a.sim.Stats(), b.sim.Stats()

	fmt.Fprintf(o.Out, "window: %.1f s, from app A's saturating its cap to app B's campaign and urgent recalls done\n", t1.Sub(t0).Seconds())
	fmt.Fprintf(o.Out, "  %-16s %11s %7s %6s %15s %11s %9s %9s %9s %9s\n",
		"app", "sim calls/s", "max/1s", "60007", "campaign rows/s", "rows left", "urgent", "p50", "p99", "max")
	fmt.Fprintf(o.Out, "  %-16s %11s %7d %6d %15s %11s %9s %9s %9s %9s\n",
		fmt.Sprintf("A %d", benchAppA), rateOf(simA.PerSecond), simA.MaxInAnyWindow, simA.Rejected60007,
		drainRate(doneA1-doneA0, t1.Sub(t0)), thousands(stA.Pending), "-", "-", "-", "-")
	fmt.Fprintf(o.Out, "  %-16s %11s %7d %6d %15s %11s %9d %9s %9s %9s\n",
		fmt.Sprintf("B %d", benchAppB), rateOf(simB.PerSecond), simB.MaxInAnyWindow, simB.Rejected60007,
		drainRate(doneB1-doneB0, tB.Sub(t0)), "0", len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]))
	fmt.Fprintf(o.Out, "  targets: each app at its own cap (max/1s <= %d, no 60007), app B's urgent p99 <= 250 ms\n", imsim.DefaultCap)
	fmt.Fprintf(o.Out, "  sim calls/s: mean over the busy seconds at the app's simulator (the first and last left out), from the workers' start;\n"+
		"  max/1s: most calls in any sliding second there; campaign rows/s: rows ended over the window (app B: until its campaign drained)\n")
	if unsaturated != nil {
		fmt.Fprintf(o.Out, "  note: app A did not reach 90%% of its cap for two seconds in a row within 20 s (is the machine busy?); the window began then\n")
	}
	if bRanOut {
		fmt.Fprintf(o.Out, "  note: app B's campaign had drained before its last urgent recall was queued: the later ones met no campaign of their own\n")
	}
	if stA.Pending == 0 {
		fmt.Fprintf(o.Out, "  note: app A's campaign ran out during the window, so app A was not saturated throughout: use a larger --backlog\n")
	}
	return nil
}

// campaignDone is how many rows of campaign name have ended: recalled,
// already recalled or dead-lettered.
func campaignDone(ctx context.Context, m *campaign.Manager, name string) (int64, error) {
	st, err := m.Status(ctx, name)
	if err != nil {
		return 0, err
	}
	return st.Recalled + st.AlreadyRecalled + st.DeadLettered, nil
}

// awaitDrained waits up to bound for campaign name to have no row pending
// or retrying, and returns when it found so and how many rows had ended.
func awaitDrained(ctx context.Context, m *campaign.Manager, name string, bound time.Duration) (time.Time, int64, error) {
	deadline := time.Now().Add(bound)
	for {
		st, err := m.Status(ctx, name)
		if err != nil {
			return time.Time{}, 0, err
		}
		if st.Pending == 0 && st.Retrying == 0 {
			return time.Now(), st.Recalled + st.AlreadyRecalled + st.DeadLettered, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, 0, fmt.Errorf("campaign %s did not drain within %s: %d rows pending, %d retrying", name, bound, st.Pending, st.Retrying)
		}
		if err := sleep.For(ctx, 100*time.Millisecond); err != nil {
			return time.Time{}, 0, err
		}
	}
}

// rateOf formats busyRate, "-" without enough busy seconds.
func rateOf(perSecond []int) string {
	if r, ok := busyRate(perSecond); ok {
		return fmt.Sprintf("%.1f", r)
	}
	return "-"
}

// drainRate formats rows per second over d, "-" when nothing ended in it.
func drainRate(rows int64, d time.Duration) string {
	if rows <= 0 || d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(rows)/d.Seconds())
}
