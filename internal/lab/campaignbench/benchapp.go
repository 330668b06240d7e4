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
	"sort"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/assembly"
	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/simproc"
	"github.com/recallq/recallq/internal/sleep"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// RunOptions are what BenchUrgent and BenchApps share: the worker
// servers, the simulators' latency, where the output goes.
type RunOptions struct {
	// Workers is how many worker servers run, each with its own limiter
	// (its own lane semaphores) and serving every app of the benchmark,
	// as separate processes would. Default 2.
	Workers int
	// Concurrency per worker and app. Default worker.DefaultConcurrency.
	Concurrency int
	// LatencyMin and LatencyMax: the simulators' latency. Default 20-50 ms.
	LatencyMin, LatencyMax time.Duration
	// Out receives the figures; Progress the running commentary.
	Out, Progress io.Writer
}

func (o *RunOptions) defaults() {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Concurrency <= 0 {
		o.Concurrency = worker.DefaultConcurrency
	}
	if o.LatencyMin == 0 && o.LatencyMax == 0 {
		o.LatencyMin, o.LatencyMax = 20*time.Millisecond, 50*time.Millisecond
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// launchRedis starts a redis-server in a temporary folder named after
// pattern, and a client of it; stop stops both.
func launchRedis(pattern string) (srv *redistest.Server, rdb *redis.Client, stop func(), err error) {
	srv, err = redistest.LaunchTemp(pattern)
	if err != nil {
		return nil, nil, nil, err
	}
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		srv.Stop()
		return nil, nil, nil, err
	}
	rdb = redis.NewClient(opt)
	return srv, rdb, func() { rdb.Close(); srv.Stop() }, nil
}

// simApp is one app of a benchmark: its simulator, in process on
// loopback, with the app's own SDKAppID and secret (so it counts only that
// app's calls), and the moments its urgent calls arrived.
type simApp struct {
	id      uint64
	secret  string
	sim     *imsim.Sim
	url     string
	hs      *http.Server
	arrived sync.Map // MsgKey -> time.Time the request reached the simulator
}

// urgentPrefix marks the MsgKeys of urgent recalls.
const urgentPrefix = "777"

// startSimApp starts app id's simulator with a fresh secret.
func startSimApp(id uint64, latencyMin, latencyMax time.Duration) (*simApp, error) {
	a := &simApp{id: id, secret: simproc.NewSecret()}
	var err error
	a.sim, err = imsim.New(imsim.Config{SDKAppID: id, SecretKey: a.secret, LatencyMin: latencyMin, LatencyMax: latencyMax})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a.hs = &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second}
	go a.hs.Serve(ln)
	a.url = "http://" + ln.Addr().String()
	return a, nil
}

func (a *simApp) close() { a.hs.Close() }

// reset empties the simulator and the arrivals.
func (a *simApp) reset() {
	a.sim.Reset()
	a.arrived.Clear()
}

// ServeHTTP timestamps urgent calls as they reach the simulator, before
// its latency.
func (a *simApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == imsim.APIPath {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if i := bytes.Index(body, []byte(`"MsgKey":"`+urgentPrefix+"_")); i >= 0 {
			rest := body[i+len(`"MsgKey":"`):]
			if j := bytes.IndexByte(rest, '"'); j > 0 {
				a.arrived.LoadOrStore(string(rest[:j]), now)
			}
		}
	}
	a.sim.ServeHTTP(w, r)
}

// fleetConfig is the worker servers a benchmark runs.
type fleetConfig struct {
	addr        string // redis-server's
	apps        []*simApp
	procs       int // worker servers, each serving every app
	concurrency int // per app
	aheadBulk   int
	checkEvery  time.Duration
	feeders     bool
	log         *slog.Logger
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

// urgentWaits returns the limiter waits of the urgent calls so far, sorted.
func (f *fleet) urgentWaits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortDurations(f.waits)
}

func (f *fleet) clearWaits() {
	f.mu.Lock()
	f.waits = nil
	f.mu.Unlock()
}

// startFleet starts fc.procs worker servers, each with a worker per app
// built by assembly.New and run as assembly.Workers, as the worker command
// builds them from an apps file (with their campaign feeders unless
// fc.feeders is false): fc.procs worker processes, in one.
func startFleet(fc fleetConfig) (*fleet, error) {
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
	for range fc.procs {
		rdb := redis.NewClient(&redis.Options{Addr: fc.addr})
		var ws assembly.Workers
		for _, a := range fc.apps {
			w, err := assembly.New(assembly.Config{
				Redis:     rdb,
				Queue:     asynq.RedisClientOpt{Addr: fc.addr},
				App:       tim.Config{SDKAppID: a.id, SecretKey: a.secret, Endpoint: a.url},
				AheadBulk: fc.aheadBulk,
				Worker: worker.Config{Concurrency: fc.concurrency, TaskCheckInterval: fc.checkEvery,
					Handler: worker.HandlerConfig{Recorder: fl}},
				NoFeeder: !fc.feeders,
				Logger:   fc.log,
			})
			if err != nil {
				ws.Close()
				rdb.Close()
				fl.stop()
				return nil, err
			}
			ws = append(ws, w)
		}
		closers = append(closers, func() { ws.Close(); rdb.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ws.Run(ctx)
		}()
	}
	return fl, nil
}

// importCampaign imports campaign name of app: rows benchRow(first) to
// benchRow(first+rows-1).
func importCampaign(ctx context.Context, rdb redis.UniversalClient, app uint64, name string, first, rows int, progress io.Writer) error {
	pr, pw := io.Pipe()
	go func() {
		var buf bytes.Buffer
		buf.WriteString("From_Account,To_Account,MsgKey\n")
		for i := first; i < first+rows; i++ {
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
	in, err := campaign.OpenInput(pr, name+".csv", campaign.FormatAuto)
	if err != nil {
		return err
	}
	res, err := campaign.Import(ctx, campaign.ImportConfig{Redis: rdb, Name: name, SDKAppID: app}, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "campaign %s of app %d: %d rows imported\n", name, app, res.New)
	return nil
}

// waitSaturated waits until sim sees at least 90% of the cap for two
// whole seconds in a row.
func waitSaturated(ctx context.Context, sim *imsim.Sim, progress io.Writer) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ps := sim.Stats().PerSecond
		if n := len(ps); n >= 3 && ps[n-2] >= 180 && ps[n-3] >= 180 {
			fmt.Fprintf(progress, "saturated: %d and %d calls in the last two whole seconds\n", ps[n-3], ps[n-2])
			return nil
		}
		_ = sleep.For(ctx, 200*time.Millisecond)
	}
	return fmt.Errorf("the campaign did not saturate the cap within 20 s: %v", sim.Stats().PerSecond)
}

// randomTimes is n moments in [0, spread), sorted.
func randomTimes(n int, spread time.Duration) []time.Duration {
	at := make([]time.Duration, n)
	for i := range at {
		at[i] = time.Duration(mrand.Int64N(int64(spread)))
	}
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	return at
}

// queueUrgent queues one urgent recall through c at each moment of at
// (from now) and returns when each Enqueue call began, by MsgKey.
func queueUrgent(ctx context.Context, c *enqueue.Client, at []time.Duration) (map[string]time.Time, error) {
	queued := make(map[string]time.Time, len(at))
	start := time.Now()
	for i, d := range at {
		_ = sleep.For(ctx, time.Until(start.Add(d)))
		key := fmt.Sprintf("%s_%d_%d", urgentPrefix, i, start.Unix())
		t0 := time.Now()
		if _, err := c.Recall(ctx, tasks.Recall{FromAccount: fmt.Sprintf("urgent%d", i), ToAccount: "moderated", MsgKey: key}); err != nil {
			return nil, err
		}
		queued[key] = t0
	}
	return queued, ctx.Err()
}

// awaitUrgent waits up to 30 s for every queued urgent recall to reach
// a's simulator and returns their queue-to-API times, sorted.
func awaitUrgent(ctx context.Context, a *simApp, queued map[string]time.Time) ([]time.Duration, error) {
	deadline := time.Now().Add(30 * time.Second)
	var lat []time.Duration
	for {
		lat = lat[:0]
		for k, t0 := range queued {
			if v, ok := a.arrived.Load(k); ok {
				lat = append(lat, v.(time.Time).Sub(t0))
			}
		}
		if len(lat) == len(queued) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		_ = sleep.For(ctx, 50*time.Millisecond)
	}
	if len(lat) != len(queued) {
		return nil, fmt.Errorf("%d of %d urgent recalls never reached the simulator of app %d", len(queued)-len(lat), len(queued), a.id)
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("no urgent recall was queued for app %d", a.id)
	}
	return sortDurations(lat), nil
}

// busyRate is the mean calls per second over the busy seconds of
// perSecond: those between its first and last second with a call, both
// left out (the workers' start, a partial last second).
func busyRate(perSecond []int) (float64, bool) {
	first, last := -1, -1
	for i, n := range perSecond {
		if n > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 || last-first < 2 {
		return 0, false
	}
	sum := 0
	for _, n := range perSecond[first+1 : last] {
		sum += n
	}
	return float64(sum) / float64(last-first-1), true
}

// benchLogger logs the workers' errors only, to progress.
func benchLogger(progress io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelError}))
}
