// Package demo runs recallq end to end inside one process, with no Redis
// and no Tencent account: an in-memory Redis (miniredis), the simulator of
// Tencent's endpoint, a real worker and the real producer library. It
// queues a few hundred recalls chosen to hit every outcome, shows progress,
// and ends with what happened to each class of result; then a spam wave is
// captured from the simulator's after-send callbacks and recalled as one
// campaign found by sender (wave.go); then a digest of the
// worker's metrics (the series it serves on /metrics when
// Options.MetricsAddr is set).
//
// miniredis stands in for Redis here only; every test of Redis behaviour
// runs against a real redis-server.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/assembly"
	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// DefaultCount is how many recalls the demo queues.
const DefaultCount = 300

// sdkAppID is the demo's made-up app.
const sdkAppID = 1400000000

// Options configures Run.
type Options struct {
	// Count is how many recalls to queue. Default DefaultCount.
	Count int
	// Out receives the progress bar and the summary.
	Out io.Writer
	// Logger receives the worker's logs. Default: discarded.
	Logger *slog.Logger
	// Timeout bounds the whole run. Default 2 minutes.
	Timeout time.Duration
	// MetricsAddr, if set, is where the demo serves /metrics (the worker's
	// series), /healthz and /readyz while it runs. Default "": not served;
	// the digest at the end is printed either way.
	MetricsAddr string
	// AtEnd, if set, is called after the summary, while the worker and the
	// metrics server still run, with the metrics server's address (""
	// when MetricsAddr is empty): one last look before the demo tears down.
	AtEnd func(metricsAddr string)
}

// Run runs the demo. It returns an error if anything did not end where it
// should (a task lost or still pending when the time is up).
func Run(ctx context.Context, o Options) error {
	if o.Count <= 0 {
		o.Count = DefaultCount
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	mr, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("start the in-memory Redis: %w", err)
	}
	defer mr.Close()
	redisURL := "redis://" + mr.Addr() + "/0"

	secret := randomKey()
	sim, err := imsim.New(imsim.Config{SDKAppID: sdkAppID, SecretKey: secret, LatencyMin: 5 * time.Millisecond, LatencyMax: 15 * time.Millisecond, FailRate: 0.05, Seed: 7})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the simulator: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	endpoint := "http://" + ln.Addr().String()

	fmt.Fprintf(o.Out, "recallq demo: in-memory Redis at %s, Tencent simulator at %s (app %d)\n", mr.Addr(), endpoint, sdkAppID)

	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	queue := asynq.RedisClientOpt{Addr: mr.Addr()}
	rec := &recorder{byCode: map[int]int{}, final: map[string]int{}}
	w, err := assembly.New(assembly.Config{
		Redis: rdb,
		Queue: queue,
		App:   tim.Config{SDKAppID: sdkAppID, SecretKey: secret, Endpoint: endpoint},
		Worker: worker.Config{
			Concurrency: 32,
			// Short delays so every retry path finishes within seconds.
			RetryBase: 200 * time.Millisecond,
			Handler:   worker.HandlerConfig{ConfigRetryDelay: 2 * time.Second, Recorder: rec},
		},
		// The spam wave's campaign starts at once.
		Feeder: campaign.FeederConfig{Interval: 50 * time.Millisecond},
		Logger: o.Logger,
	})
	if err != nil {
		return err
	}
	defer w.Close()
	plan := makePlan(o.Count)
	if err := plan.prepare(ctx, sim, w.API); err != nil {
		return err
	}
	wctx, stopWorker := context.WithCancel(ctx)
	var msrv *metrics.Server
	if o.MetricsAddr != "" {
		var stopMetrics func()
		msrv, stopMetrics, err = w.ServeMetrics(wctx, o.MetricsAddr)
		if err != nil {
			stopWorker()
			return err
		}
		defer stopMetrics() // after the worker has stopped
		fmt.Fprintf(o.Out, "metrics at http://%s/metrics (and /healthz, /readyz)\n", msrv.Addr())
	}

	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(wctx) }()
	defer func() {
		stopWorker()
		<-workerDone
	}()

	// Queue every recall through the producer library, then a few twice.
	c, err := enqueue.New(enqueue.Config{RedisURL: redisURL, SDKAppID: sdkAppID, MaxRetry: 5})
	if err != nil {
		return err
	}
	defer c.Close()
	dups := 0
	for i, r := range plan.recalls {
		if _, err := c.Recall(ctx, r); err != nil {
			return fmt.Errorf("queue recall %d: %w", i, err)
		}
		if i%50 == 0 {
			res, err := c.Recall(ctx, r)
			if err != nil {
				return err
			}
			if res.AlreadyQueued {
				dups++
			}
		}
	}
	fmt.Fprintf(o.Out, "queued %d recalls (and %d duplicates, each answered \"already queued\")\n", len(plan.recalls), dups)

	insp := asynq.NewInspector(queue)
	defer insp.Close()
	bar := newProgress(o.Out, len(plan.recalls), "recalling")
	var info *asynq.QueueInfo
	for {
		info, err = insp.GetQueueInfo(tasks.AppQueue(tasks.QueueUrgent, sdkAppID))
		if err != nil {
			return fmt.Errorf("read the queue: %w", err)
		}
		bar.set(info.Completed + info.Archived)
		if info.Completed+info.Archived >= len(plan.recalls) {
			break
		}
		select {
		case <-ctx.Done():
			bar.done()
			return fmt.Errorf("the demo did not finish in %s: %d pending, %d retrying, %d active", o.Timeout, info.Pending, info.Retry, info.Active)
		case <-time.After(100 * time.Millisecond):
		}
	}
	bar.done()
	err = summarize(o.Out, insp, info, rec, sim, plan, w.Limiter)
	if err == nil {
		err = runWave(ctx, o.Out, sim, rdb, queue, o.Logger)
	}
	if derr := w.Metrics.WriteDigest(o.Out); derr != nil && err == nil {
		err = derr
	}
	if o.AtEnd != nil {
		addr := ""
		if msrv != nil {
			addr = msrv.Addr()
		}
		o.AtEnd(addr)
	}
	return err
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// recorder counts every API call's result.
type recorder struct {
	mu     sync.Mutex
	calls  int
	byCode map[int]int
	final  map[string]int // task ID -> last code
}

func (r *recorder) Record(ev worker.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.byCode[ev.Code]++
	r.final[ev.TaskID] = ev.Code
}

func summarize(out io.Writer, insp *asynq.Inspector, info *asynq.QueueInfo, rec *recorder, sim *imsim.Sim, p *plan, lim *limiter.Limiter) error {
	archived, err := insp.ListArchivedTasks(tasks.AppQueue(tasks.QueueUrgent, sdkAppID), asynq.PageSize(p.size()+10))
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	deadBy := map[string]int{}
	for _, t := range archived {
		deadBy[deadLabel(t.LastErr)]++
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	recalled, already := 0, 0
	for _, code := range rec.final {
		switch code {
		case 0:
			recalled++
		case 20023:
			already++
		}
	}
	fmt.Fprintf(out, "\nwhat happened to %d recalls (final asynq state, read back from Redis):\n", p.size())
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "  completed\t%d\t(recalled %d, already recalled 20023: %d)\n", info.Completed, recalled, already)
	fmt.Fprintf(tw, "  dead-lettered\t%d\t\n", info.Archived)
	keys := make([]string, 0, len(deadBy))
	for k := range deadBy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "    %s\t%d\t\n", k, deadBy[k])
	}
	fmt.Fprintf(tw, "  still pending or retrying\t%d\t\n", info.Pending+info.Retry+info.Scheduled+info.Active)
	tw.Flush()

	fmt.Fprintf(out, "\non the way (every API call, by Tencent code):\n")
	tw = tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	codes := make([]int, 0, len(rec.byCode))
	for c := range rec.byCode {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		o := worker.Classify(c)
		what := o.Meaning
		if c == worker.NoAnswer {
			what = "no answer (network)"
		}
		fmt.Fprintf(tw, "  %d\t%d\t%s -> %s\n", c, rec.byCode[c], what, o.Class)
	}
	tw.Flush()
	st := sim.Stats()
	fmt.Fprintf(out, "\nthe simulator saw %d calls; the most in any sliding second: %d (cap 200); calls refused by the cap (60007): %d\n",
		st.Calls, st.MaxInAnyWindow, st.Rejected60007)
	fmt.Fprintf(out, "shared limiter spacing: %s per call\n", lim.Interval().Round(10*time.Microsecond))
	if lost := p.size() - info.Completed - info.Archived; lost != 0 {
		return fmt.Errorf("%d recalls did not reach a final state", lost)
	}
	if want := p.wantDead(); info.Archived != want {
		return fmt.Errorf("%d recalls were dead-lettered, the plan expects %d", info.Archived, want)
	}
	return nil
}

// deadLabel names a dead letter by the answer its stored error starts
// with, e.g. "tencent 20022: the message to recall does not exist", or
// "no answer".
func deadLabel(lastErr string) string {
	code := worker.StoredCode(lastErr)
	return (&worker.AnswerError{Code: code, Meaning: worker.Classify(code).Meaning}).Error()
}

var errPlan = errors.New("demo plan")
