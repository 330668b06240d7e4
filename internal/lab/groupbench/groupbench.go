// Package groupbench measures bulk group recall end to end: a campaign-like
// load of group recall tasks (one MsgSeq each, spread over a few groups) on
// the bulk lane, drained by 1 and 4 worker processes (the product's worker,
// assembly.New, re-executed from the lab binary) against the simulator's
// group_msg_recall with its 200 calls/s cap. It prints messages/s, calls/s,
// seqs per call, the most calls in any sliding second and the 10006 count.
// It is a program that prints figures, not a timed test: the machine is
// shared and noisy, so each row carries the load average.
package groupbench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/assembly"
	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/childproc"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// WorkerCommand is the hidden subcommand of recallq-lab that runs one
// worker process of the group benchmark.
const WorkerCommand = "bench-group-worker"

// The benchmark's app (the simulator's; nothing real).
const (
	benchApp    = 1400000000
	benchSecret = "groupbench-secret-key-0123456789abcdef0123456789abcdef"
)

// Defaults of Options.
const (
	DefaultSeqs   = 20000
	DefaultGroups = 4
)

// DefaultProcs are the worker process counts measured.
var DefaultProcs = []int{1, 4}

// Options configures Run.
type Options struct {
	// Exe is the recallq-lab binary: it must answer WorkerCommand.
	Exe string
	// Procs: one run each. Default DefaultProcs.
	Procs []int
	// Seqs is how many group recall tasks a run queues. Default DefaultSeqs.
	Seqs int
	// Groups is how many groups they are spread over (round robin, as a
	// campaign file of several groups interleaves them). Default DefaultGroups.
	Groups int
	// Concurrency per worker process; 0 is max(64, 256/procs).
	Concurrency int
	// Linger is the bulk lane's batch linger (worker.HandlerConfig.GroupLinger);
	// 0 is the worker's default.
	Linger time.Duration
	// CPUProfileDir, when set, gets a CPU profile of each worker process
	// (go tool pprof reads them).
	CPUProfileDir string
	// LatencyMin and LatencyMax bound the simulator's latency.
	LatencyMin, LatencyMax time.Duration
	// DrainTimeout bounds one run. Default 60 s + Seqs/100 s.
	DrainTimeout time.Duration
	// Campaign: the seqs come as a campaign (campaign.ImportRows, the rows
	// a `GroupId,MsgSeq` file gives) that the workers' feeders hand to the
	// bulk queue a window at a time, instead of tasks queued up front.
	Campaign bool
	// Out receives the table; Progress the progress lines.
	Out, Progress io.Writer
}

// Row is one run's figures.
type Row struct {
	Procs, Concurrency int
	Seqs               int
	Elapsed            time.Duration // first call to last
	Calls              int64         // calls the cap counted
	Recalled           int64         // seqs answered 0
	SeqsAnswered       int64         // seqs answered with any RetCode
	MaxInSecond        int
	Rejected           int64 // 10006s
	Load               string
}

// Run measures each process count of o and prints the table.
func Run(ctx context.Context, o Options) error {
	if o.Exe == "" {
		return errors.New("groupbench: Options.Exe is not set")
	}
	if len(o.Procs) == 0 {
		o.Procs = DefaultProcs
	}
	if o.Seqs <= 0 {
		o.Seqs = DefaultSeqs
	}
	if o.Groups <= 0 {
		o.Groups = DefaultGroups
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 60*time.Second + time.Duration(o.Seqs/100)*time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	srv, err := redistest.LaunchTemp("recallq-groupbench-")
	if err != nil {
		return err
	}
	defer srv.Stop()
	dir := srv.Dir()
	sim, err := imsim.New(imsim.Config{SDKAppID: benchApp, SecretKey: benchSecret, LatencyMin: o.LatencyMin, LatencyMax: o.LatencyMax})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln) //nolint:errcheck // ends with Close below
	defer hs.Close()
	endpoint := "http://" + ln.Addr().String()
	fmt.Fprintf(o.Progress, "bench-group: redis-server at %s, simulator at %s (latency %s-%s)\n", srv.Addr, endpoint, o.LatencyMin, o.LatencyMax)

	var rows []Row
	for _, procs := range o.Procs {
		row, err := runOne(ctx, o, dir, srv.URL, endpoint, sim, procs)
		if err != nil {
			return fmt.Errorf("%d worker processes: %w", procs, err)
		}
		rows = append(rows, row)
		fmt.Fprintf(o.Progress, "bench-group: %d procs done\n", procs)
	}
	printTable(o, rows)
	return nil
}

func runOne(ctx context.Context, o Options, dir, redisURL, endpoint string, sim *imsim.Sim, procs int) (Row, error) {
	// The run's own redis-server: none of the shell's REDIS_* settings
	// apply to it (nor reach the workers: childproc.Env below).
	conn, err := redisconn.Parse(redisURL)
	if err != nil {
		return Row{}, err
	}
	rdb := conn.Client()
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return Row{}, err
	}
	sim.Reset()
	per := uint64(o.Seqs/o.Groups + 1)
	for g := 0; g < o.Groups; g++ {
		if err := sim.CreateGroup(imsim.GroupSpec{GroupID: groupID(g), Messages: per}); err != nil {
			return Row{}, err
		}
	}
	if o.Campaign {
		if err := importLoad(ctx, rdb, o.Seqs, o.Groups); err != nil {
			return Row{}, err
		}
	} else if err := enqueueLoad(ctx, conn.AsynqOpt(), o.Seqs, o.Groups); err != nil {
		return Row{}, err
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = max(64, 256/procs)
	}
	fmt.Fprintf(o.Progress, "bench-group: %d tasks queued; starting %d workers (concurrency %d)\n", o.Seqs, procs, conc)
	load0 := loadAvg()
	var kids childproc.Group
	defer kids.KillAll()
	// childproc.Env: the workers serve this run's own redis-server, not
	// the Redis (or the app) of the shell's REDIS_* and TIM_* settings.
	env := childproc.Env("TIM_SDKAPPID="+strconv.Itoa(benchApp), "TIM_SECRET_KEY="+benchSecret)
	var children []*childproc.Child
	for i := 0; i < procs; i++ {
		args := []string{WorkerCommand, "--redis-url", redisURL, "--endpoint", endpoint,
			"--concurrency", strconv.Itoa(conc), "--linger", o.Linger.String(), "--feeder=" + strconv.FormatBool(o.Campaign)}
		name := fmt.Sprintf("group-worker-%d-%d", procs, i)
		if o.CPUProfileDir != "" {
			args = append(args, "--cpuprofile", filepath.Join(o.CPUProfileDir, name+".pprof"))
		}
		c, err := kids.Start(dir, name, o.Exe, args, env)
		if err != nil {
			return Row{}, err
		}
		children = append(children, c)
	}
	insp := asynq.NewInspector(conn.AsynqOpt())
	defer insp.Close()
	mgr, err := campaign.NewManager(campaign.ManagerConfig{Redis: rdb, Queue: conn.AsynqOpt()})
	if err != nil {
		return Row{}, err
	}
	defer mgr.Close()
	deadline := time.Now().Add(o.DrainTimeout)
	for {
		info, err := insp.GetQueueInfo(tasks.AppQueue(tasks.QueueBulk, benchApp))
		drained := err == nil && info.Pending+info.Active+info.Scheduled+info.Retry == 0
		if drained && o.Campaign {
			var st campaign.Status
			st, err = mgr.Status(ctx, benchCampaign)
			drained = err == nil && st.State == campaign.StateDone
		}
		if drained {
			break
		}
		if time.Now().After(deadline) {
			return Row{}, fmt.Errorf("not drained after %s: %+v", o.DrainTimeout, info)
		}
		select {
		case <-ctx.Done():
			return Row{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, c := range children {
		c.Signal(syscall.SIGTERM)
	}
	for _, c := range children {
		c.Wait(20 * time.Second)
	}
	st := sim.GroupStats()
	row := Row{Procs: procs, Concurrency: conc, Seqs: o.Seqs, Elapsed: st.Last.Sub(st.First), Calls: st.Counted,
		Recalled: st.ByRetCode[0], SeqsAnswered: st.Seqs, MaxInSecond: st.MaxInAnyWindow, Rejected: st.ByCode[10006],
		Load: load0 + " -> " + loadAvg()}
	return row, nil
}

func groupID(g int) string { return fmt.Sprintf("bench_group_%d", g) }

// enqueueLoad queues n group recalls on the bulk lane, seq i+1 of group
// i%groups, from a few goroutines.
func enqueueLoad(ctx context.Context, opt asynq.RedisConnOpt, n, groups int) error {
	c := asynq.NewClient(opt)
	defer c.Close()
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				g := tasks.GroupRecall{SDKAppID: benchApp, GroupID: groupID(i % groups), MsgSeq: uint64(i/groups + 1), Campaign: ""}
				t, err := tasks.NewGroupTask(g, tasks.Options{Queue: tasks.QueueBulk})
				if err == nil {
					_, err = c.EnqueueContext(ctx, t)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// benchCampaign is the campaign of a --campaign run.
const benchCampaign = "bench-group"

// importLoad imports the seqs of enqueueLoad, in its order, as the campaign
// benchCampaign.
func importLoad(ctx context.Context, rdb redis.UniversalClient, n, groups int) error {
	rows := make([]campaign.Row, n)
	for i := range rows {
		rows[i] = campaign.Row{Group: true, GroupID: groupID(i % groups), MsgSeq: uint64(i/groups + 1)}
	}
	res, err := campaign.ImportRows(ctx, campaign.ImportConfig{Redis: rdb, Name: benchCampaign, SDKAppID: benchApp, RequestedBy: "bench-group"},
		"bench-group --campaign", rows)
	if err != nil {
		return err
	}
	if res.New != int64(n) {
		return fmt.Errorf("campaign %s: %d of %d rows imported", benchCampaign, res.New, n)
	}
	return nil
}

// loadAvg is the 1-minute load average, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func printTable(o Options, rows []Row) {
	w := o.Out
	fmt.Fprintf(w, "group recall, %d seqs over %d groups on the bulk lane, simulator latency %s-%s, cap 200 calls/s\n",
		o.Seqs, o.Groups, o.LatencyMin, o.LatencyMax)
	fmt.Fprintf(w, "%-6s %-6s %10s %8s %9s %8s %10s %6s %s\n", "procs", "conc", "messages/s", "calls/s", "seqs/call", "max/1s", "10006", "secs", "load (1 min) start -> end")
	for _, r := range rows {
		secs := r.Elapsed.Seconds()
		mps, cps, per := 0.0, 0.0, 0.0
		if secs > 0 {
			mps, cps = float64(r.Recalled)/secs, float64(r.Calls)/secs
		}
		if answered := r.Calls - r.Rejected; answered > 0 {
			per = float64(r.SeqsAnswered) / float64(answered)
		}
		fmt.Fprintf(w, "%-6d %-6d %10.0f %8.1f %9.2f %8d %10d %6.1f %s\n", r.Procs, r.Concurrency, mps, cps, per, r.MaxInSecond, r.Rejected, secs, r.Load)
	}
}

// RunWorkerArgs runs one worker process of the benchmark: the product's
// worker (assembly.New) serving the queues until ctx ends. Its app comes
// from TIM_SDKAPPID and TIM_SECRET_KEY in getenv, and the Redis settings
// a URL cannot hold (REDIS_CA_FILE, ...) from getenv as the product's
// commands read them (redisconn.OptionsFrom).
func RunWorkerArgs(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet(WorkerCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis-url", redisconn.DefaultURL, "Redis of the queues and limiters")
	endpoint := fs.String("endpoint", "", "the simulator's base URL")
	conc := fs.Int("concurrency", worker.DefaultConcurrency, "tasks at once")
	linger := fs.Duration("linger", 0, "bulk batch linger (0: the worker's default)")
	feeder := fs.Bool("feeder", false, "run the campaign feeder, as the shipped worker does")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	id, err := strconv.ParseUint(getenv("TIM_SDKAPPID"), 10, 64)
	if err != nil || id == 0 || getenv("TIM_SECRET_KEY") == "" || *endpoint == "" {
		return errors.New("bench-group-worker needs TIM_SDKAPPID, TIM_SECRET_KEY and --endpoint")
	}
	// The Redis settings of the environment, read as the product's
	// commands read them (REDIS_CA_FILE, a client certificate, ...).
	ro, err := redisconn.OptionsFrom(getenv)
	if err != nil {
		return err
	}
	conn, err := redisconn.ParseWith(*redisURL, ro)
	if err != nil {
		return fmt.Errorf("--redis-url: %w", err)
	}
	rdb := conn.Client()
	defer rdb.Close()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := assembly.New(assembly.Config{
		Redis:    redis.UniversalClient(rdb),
		Queue:    conn.AsynqOpt(),
		App:      tim.Config{SDKAppID: id, SecretKey: getenv("TIM_SECRET_KEY"), Endpoint: *endpoint},
		Worker:   worker.Config{Concurrency: *conc, Handler: worker.HandlerConfig{GroupLinger: *linger}},
		NoFeeder: !*feeder,
		Logger:   log,
	})
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Run(ctx)
}
