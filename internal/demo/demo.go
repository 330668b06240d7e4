// Package demo runs recallq end to end inside one process, with no Redis
// and no Tencent account: an in-memory Redis (miniredis), the simulator of
// Tencent's endpoint, a real worker and the real producer library. It
// queues a few hundred recalls chosen to hit every outcome, and group
// recalls of a few groups whose MsgSeqs hit the group outcomes (groups.go),
// shows progress, and ends with what happened to each class of result; then a spam wave is
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
	rec := &recorder{byCode: map[int]int{}, groupByCode: map[int]int{}, final: map[string]int{}}
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
	groups := makeGroupPlan()
	if err := groups.prepare(sim); err != nil {
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
	gdups, err := groups.queue(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "queued %d group recalls of %d groups and topics, one task per MsgSeq (and %d duplicates, each answered \"already queued\")\n",
		groups.size(), len(groups.batches), gdups)
	total := plan.size() + groups.size()

	insp := asynq.NewInspector(queue)
	defer insp.Close()
	bar := newProgress(o.Out, total, "recalling")
	var info *asynq.QueueInfo
	for {
		info, err = insp.GetQueueInfo(tasks.AppQueue(tasks.QueueUrgent, sdkAppID))
		if err != nil {
			return fmt.Errorf("read the queue: %w", err)
		}
		bar.set(info.Completed + info.Archived)
		if info.Completed+info.Archived >= total {
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
	err = summarize(o.Out, insp, info, rec, sim, plan, groups, w.Limiter)
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

// recorder counts every API call's result: one-to-one calls, and each
// seq of a group call.
type recorder struct {
	mu          sync.Mutex
	calls       int
	byCode      map[int]int    // admin_msgwithdraw's answers
	groupByCode map[int]int    // group_msg_recall's answers, per seq
	final       map[string]int // task ID -> last code
}

func (r *recorder) Record(ev worker.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if ev.Group != nil {
		r.groupByCode[ev.Code]++
	} else {
		r.byCode[ev.Code]++
	}
	r.final[ev.TaskID] = ev.Code
}

// ended is how many tasks of one type reached each final state.
type ended struct {
	completed, archived int
	recalled, already   int            // completed: code 0, and the "already recalled" code
	deadBy              map[string]int // archived, by deadLabel
}

// endedOf reads the final state of the urgent lane's tasks of type typ back
// from Redis; already is the code that means "already recalled".
func endedOf(insp *asynq.Inspector, typ string, page int, final map[string]int, already int) (ended, error) {
	e := ended{deadBy: map[string]int{}}
	completed, err := insp.ListCompletedTasks(tasks.AppQueue(tasks.QueueUrgent, sdkAppID), asynq.PageSize(page))
	if err != nil {
		return e, fmt.Errorf("list completed tasks: %w", err)
	}
	for _, t := range completed {
		if t.Type != typ {
			continue
		}
		e.completed++
		switch final[t.ID] {
		case 0:
			e.recalled++
		case already:
			e.already++
		}
	}
	archived, err := insp.ListArchivedTasks(tasks.AppQueue(tasks.QueueUrgent, sdkAppID), asynq.PageSize(page))
	if err != nil {
		return e, fmt.Errorf("list dead letters: %w", err)
	}
	for _, t := range archived {
		if t.Type == typ {
			e.archived++
			e.deadBy[deadLabel(t.LastErr, typ)]++
		}
	}
	return e, nil
}

// write prints what happened to the tasks: their final states, the dead
// letters by answer, and the urgent lane's tasks not yet ended.
func (e ended) write(out io.Writer, alreadyNote string, pending int) {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "  completed\t%d\t(recalled %d, %s: %d)\n", e.completed, e.recalled, alreadyNote, e.already)
	fmt.Fprintf(tw, "  dead-lettered\t%d\t\n", e.archived)
	keys := make([]string, 0, len(e.deadBy))
	for k := range e.deadBy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "    %s\t%d\t\n", k, e.deadBy[k])
	}
	fmt.Fprintf(tw, "  still pending or retrying\t%d\t\n", pending)
	tw.Flush()
}

// writeCodes prints a table of answers by code, each with its row of the
// outcome table.
func writeCodes(out io.Writer, byCode map[int]int, classify func(int) worker.Outcome) {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	codes := make([]int, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		o := classify(c)
		what := o.Meaning
		if c == worker.NoAnswer {
			what = "no answer (network)"
		}
		fmt.Fprintf(tw, "  %d\t%d\t%s -> %s\n", c, byCode[c], what, o.Class)
	}
	tw.Flush()
}

func summarize(out io.Writer, insp *asynq.Inspector, info *asynq.QueueInfo, rec *recorder, sim *imsim.Sim, p *plan, gp *groupPlan, lim *limiter.Limiter) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	page := p.size() + gp.size() + 10
	one, err := endedOf(insp, tasks.TypeRecall, page, rec.final, 20023)
	if err != nil {
		return err
	}
	group, err := endedOf(insp, tasks.TypeGroupRecall, page, rec.final, 10030)
	if err != nil {
		return err
	}
	pending := info.Pending + info.Retry + info.Scheduled + info.Active
	fmt.Fprintf(out, "\nwhat happened to %d recalls (final asynq state, read back from Redis):\n", p.size())
	one.write(out, "already recalled 20023", pending)
	fmt.Fprintf(out, "\nwhat happened to %d group recalls (one task per MsgSeq; final asynq state, read back from Redis):\n", gp.size())
	group.write(out, "already recalled or never sent 10030", pending)

	fmt.Fprintf(out, "\non the way (every API call, by Tencent code):\n")
	writeCodes(out, rec.byCode, worker.Classify)
	fmt.Fprintf(out, "\non the way (every seq of every group_msg_recall call, by Tencent code):\n")
	writeCodes(out, rec.groupByCode, worker.ClassifyGroup)
	st := sim.Stats()
	fmt.Fprintf(out, "\nthe simulator saw %d calls; the most in any sliding second: %d (cap 200); calls refused by the cap (60007): %d\n",
		st.Calls, st.MaxInAnyWindow, st.Rejected60007)
	carried := 0
	for _, n := range rec.groupByCode {
		carried += n
	}
	fmt.Fprintf(out, "and %d group_msg_recall calls carrying %d seqs in all (up to ten a call)\n", sim.GroupStats().Calls, carried)
	fmt.Fprintf(out, "shared limiter spacing: %s per call\n", lim.Interval().Round(10*time.Microsecond))
	if lost := p.size() - one.completed - one.archived; lost != 0 {
		return fmt.Errorf("%d recalls did not reach a final state", lost)
	}
	if want := p.wantDead(); one.archived != want {
		return fmt.Errorf("%d recalls were dead-lettered, the plan expects %d", one.archived, want)
	}
	if lost := gp.size() - group.completed - group.archived; lost != 0 {
		return fmt.Errorf("%d group recalls did not reach a final state", lost)
	}
	if want := gp.wantDead(); group.archived != want {
		return fmt.Errorf("%d group recalls were dead-lettered, the plan expects %d", group.archived, want)
	}
	return nil
}

// deadLabel names a dead letter of type typ by the answer its stored
// error starts with, e.g. "tencent 20022: the message to recall does not
// exist", or "no answer".
func deadLabel(lastErr, typ string) string {
	code := worker.StoredCode(lastErr)
	classify := worker.Classify
	if typ == tasks.TypeGroupRecall {
		classify = worker.ClassifyGroup
	}
	return (&worker.AnswerError{Code: code, Meaning: classify(code).Meaning}).Error()
}

var errPlan = errors.New("demo plan")
