package campaignbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/assembly"
	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/simproc"
	"github.com/recallq/recallq/internal/sleep"
	"github.com/recallq/recallq/internal/tim"
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
	// Workers is how many worker servers run, each with its own limiter
	// (its own lane semaphores), as separate processes would. Default 2.
	Workers int
	// Concurrency per worker. Default worker.DefaultConcurrency.
	Concurrency int
	// LatencyMin and LatencyMax: the simulator's latency. Default 20-50 ms.
	LatencyMin, LatencyMax time.Duration
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
	// Out receives the figures; Progress the running commentary.
	Out, Progress io.Writer
}

func (o *BenchUrgentOptions) defaults() {
	if o.Backlog <= 0 {
		o.Backlog = DefaultBenchBacklog
	}
	if o.Urgent <= 0 {
		o.Urgent = DefaultBenchUrgent
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Concurrency <= 0 {
		o.Concurrency = worker.DefaultConcurrency
	}
	if o.LatencyMin == 0 && o.LatencyMax == 0 {
		o.LatencyMin, o.LatencyMax = 20*time.Millisecond, 50*time.Millisecond
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
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// urgentBench is the shared setup of BenchUrgent's scenarios.
type urgentBench struct {
	o       BenchUrgentOptions
	srv     *redistest.Server
	rdb     *redis.Client
	sim     *imsim.Sim
	url     string
	secret  string
	log     *slog.Logger
	arrived sync.Map // MsgKey -> time.Time the request reached the simulator
}

// urgentPrefix marks the MsgKeys of urgent recalls.
const urgentPrefix = "777"

// ServeHTTP timestamps urgent calls as they reach the simulator, before
// its latency.
func (b *urgentBench) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == imsim.APIPath {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if i := bytes.Index(body, []byte(`"MsgKey":"`+urgentPrefix+"_")); i >= 0 {
			rest := body[i+len(`"MsgKey":"`):]
			if j := bytes.IndexByte(rest, '"'); j > 0 {
				b.arrived.LoadOrStore(string(rest[:j]), now)
			}
		}
	}
	b.sim.ServeHTTP(w, r)
}

// BenchUrgent measures how long an urgent recall takes from being queued
// to reaching the API: under a campaign that saturates the cap, and with
// empty queues; and what asynq's polling of empty queues costs Redis.
func BenchUrgent(ctx context.Context, o BenchUrgentOptions) error {
	o.defaults()
	srv, err := redistest.LaunchTemp("recallq-bench-urgent-")
	if err != nil {
		return err
	}
	defer srv.Stop()
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		return err
	}
	b := &urgentBench{o: o, srv: srv, rdb: redis.NewClient(opt), secret: simproc.NewSecret(),
		log: slog.New(slog.NewTextHandler(o.Progress, &slog.HandlerOptions{Level: slog.LevelError}))}
	defer b.rdb.Close()
	b.sim, err = imsim.New(imsim.Config{SDKAppID: benchApp, SecretKey: b.secret, LatencyMin: o.LatencyMin, LatencyMax: o.LatencyMax})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	b.url = "http://" + ln.Addr().String()
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

// fleet is the running worker servers.
type fleet struct {
	stop  func()
	mu    sync.Mutex
	waits []time.Duration // limiter waits of urgent calls
}

func (f *fleet) Record(ev worker.Event) {
	if lane, _, _ := tasks.ParseQueue(ev.Queue); lane == tasks.QueueUrgent && ev.Fate.Final() {
		f.mu.Lock()
		f.waits = append(f.waits, ev.Waited)
		f.mu.Unlock()
	}
}

// startFleet starts the worker servers, as the worker command builds them
// (with their campaign feeders unless feeders is false).
func (b *urgentBench) startFleet(procs, aheadBulk int, checkEvery time.Duration, feeders bool) (*fleet, error) {
	fl := &fleet{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var closers []func()
	fl.stop = func() {
		cancel()
		wg.Wait()
		for _, c := range closers {
			c()
		}
	}
	for range procs {
		rdb := redis.NewClient(&redis.Options{Addr: b.srv.Addr})
		w, err := assembly.New(assembly.Config{
			Redis:     rdb,
			Queue:     asynq.RedisClientOpt{Addr: b.srv.Addr},
			App:       tim.Config{SDKAppID: benchApp, SecretKey: b.secret, Endpoint: b.url},
			AheadBulk: aheadBulk,
			Worker: worker.Config{Concurrency: b.o.Concurrency, TaskCheckInterval: checkEvery,
				Handler: worker.HandlerConfig{Recorder: fl}},
			NoFeeder: !feeders,
			Logger:   b.log,
		})
		if err != nil {
			rdb.Close()
			fl.stop()
			return nil, err
		}
		closers = append(closers, func() { w.Close(); rdb.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Run(ctx)
		}()
	}
	return fl, nil
}

type urgentResult struct {
	p50, p90, p99, max, waitP99 time.Duration
	simRate, maxWindow          string
	rejected                    int64
}

// reset empties Redis and the simulator between scenarios.
func (b *urgentBench) reset(ctx context.Context) error {
	b.sim.Reset()
	b.arrived.Clear()
	return b.rdb.FlushAll(ctx).Err()
}

func (b *urgentBench) urgentRun(ctx context.Context, backlog bool, aheadBulk int, checkEvery time.Duration) (urgentResult, error) {
	if err := b.reset(ctx); err != nil {
		return urgentResult{}, err
	}
	if backlog {
		if err := b.importBacklog(ctx); err != nil {
			return urgentResult{}, err
		}
	}
	fl, err := b.startFleet(b.o.Workers, aheadBulk, checkEvery, true)
	if err != nil {
		return urgentResult{}, err
	}
	defer fl.stop()
	if backlog {
		if err := b.waitSaturated(ctx); err != nil {
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
		for _, ok := b.arrived.Load(warm); !ok && ctx.Err() == nil; _, ok = b.arrived.Load(warm) {
			_ = sleep.For(ctx, 10*time.Millisecond)
		}
		_ = sleep.For(ctx, time.Second)
		b.arrived.Clear()
		fl.mu.Lock()
		fl.waits = nil
		fl.mu.Unlock()
	}
	b.sim.ResetStats()

	// When to queue each urgent recall, from now.
	at := make([]time.Duration, b.o.Urgent)
	if backlog {
		for i := range at {
			at[i] = time.Duration(mrand.Int64N(int64(b.o.Spread)))
		}
		sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	} else {
		var t time.Duration
		for i := range at {
			t += b.o.GapMin + time.Duration(mrand.Int64N(int64(b.o.GapMax-b.o.GapMin)+1))
			at[i] = t
		}
	}
	queued := make(map[string]time.Time, len(at))
	start := time.Now()
	for i, d := range at {
		_ = sleep.For(ctx, time.Until(start.Add(d)))
		key := fmt.Sprintf("%s_%d_%d", urgentPrefix, i, start.Unix())
		t0 := time.Now()
		if _, err := c.Recall(ctx, tasks.Recall{FromAccount: fmt.Sprintf("urgent%d", i), ToAccount: "moderated", MsgKey: key}); err != nil {
			return urgentResult{}, err
		}
		queued[key] = t0
	}
	deadline := time.Now().Add(30 * time.Second)
	var lat []time.Duration
	for {
		lat = lat[:0]
		for k, t0 := range queued {
			if v, ok := b.arrived.Load(k); ok {
				lat = append(lat, v.(time.Time).Sub(t0))
			}
		}
		if len(lat) == len(queued) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		_ = sleep.For(ctx, 50*time.Millisecond)
	}
	if len(lat) != len(queued) {
		return urgentResult{}, fmt.Errorf("%d of %d urgent recalls never reached the simulator", len(queued)-len(lat), len(queued))
	}
	st := b.sim.Stats()
	if backlog {
		// Still saturating when the last urgent recall went?
		if n, _ := backlogLen(ctx, b.rdb, b.srv.Addr, "backlog"); n == 0 {
			return urgentResult{}, fmt.Errorf("the campaign backlog ran out during the run: use a larger --backlog")
		}
	}
	sorted := sortDurations(lat)
	fl.mu.Lock()
	waits := sortDurations(fl.waits)
	fl.mu.Unlock()
	r := urgentResult{p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted[len(sorted)-1],
		waitP99: percentile(waits, 99), rejected: st.Rejected60007, simRate: "-", maxWindow: fmt.Sprint(st.MaxInAnyWindow)}
	if backlog && len(st.PerSecond) > 2 {
		full := st.PerSecond[:len(st.PerSecond)-1] // the last second is partial
		sum := 0
		for _, n := range full {
			sum += n
		}
		r.simRate = fmt.Sprintf("%.1f", float64(sum)/float64(len(full)))
	}
	return r, nil
}

// importBacklog imports the saturating campaign.
func (b *urgentBench) importBacklog(ctx context.Context) error {
	pr, pw := io.Pipe()
	go func() {
		var buf bytes.Buffer
		buf.WriteString("From_Account,To_Account,MsgKey\n")
		for i := range b.o.Backlog {
			r := benchRow(i)
			fmt.Fprintf(&buf, "%s,%s,%s\n", r.from, r.to, r.msgKey)
			if buf.Len() > 64<<10 {
				if _, err := pw.Write(buf.Bytes()); err != nil {
					return
				}
				buf.Reset()
			}
		}
		_, _ = pw.Write(buf.Bytes())
		pw.Close()
	}()
	in, err := campaign.OpenInput(pr, "backlog.csv", campaign.FormatAuto)
	if err != nil {
		return err
	}
	res, err := campaign.Import(ctx, campaign.ImportConfig{Redis: b.rdb, Name: "backlog", SDKAppID: benchApp}, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.o.Progress, "campaign of %d rows imported\n", res.New)
	return nil
}

// waitSaturated waits until the simulator sees at least 90% of the cap
// for two whole seconds in a row.
func (b *urgentBench) waitSaturated(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ps := b.sim.Stats().PerSecond
		if n := len(ps); n >= 3 && ps[n-2] >= 180 && ps[n-3] >= 180 {
			fmt.Fprintf(b.o.Progress, "saturated: %d and %d calls in the last two whole seconds\n", ps[n-3], ps[n-2])
			return nil
		}
		_ = sleep.For(ctx, 200*time.Millisecond)
	}
	return fmt.Errorf("the campaign did not saturate the cap within 20 s: %v", b.sim.Stats().PerSecond)
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
