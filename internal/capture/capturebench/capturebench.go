// Package capturebench measures the capture: callbacks per second into one
// process, the answer time Tencent would see, and the Redis bytes each
// indexed message costs. It is a lab, kept out of package capture so that
// it can leave the shipped binary without touching the capture.
//
// Run starts its own redis-server (it must be on PATH) and a capture
// listening on loopback, then drives it over HTTP from this process:
//
//  1. open loop at Rate callbacks/s for Duration (answer time is measured
//     from each callback's scheduled start, so a stall counts in full);
//  2. closed loop with Concurrency clients for Duration: the most the
//     capture takes;
//  3. Redis memory per message, with the index emptied before each case,
//     for senders that send 1, 10 and 100 messages per bucket.
//
// The load generator runs in the same process and on the same cores as
// the capture and Redis: on a small machine the figures are lower bounds.
package capturebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/bench"
	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/redistest"
)

// Defaults of Options.
const (
	DefaultRate        = 20000
	DefaultDuration    = 10 * time.Second
	DefaultConcurrency = 64
	DefaultSenders     = 5000
	DefaultMemMessages = 100000
)

// Options configures Run.
type Options struct {
	// Rate is the open loop's callbacks per second. Default DefaultRate.
	Rate int
	// Duration of each load phase. Default DefaultDuration.
	Duration time.Duration
	// Concurrency is the closed loop's clients (and the open loop's most
	// callbacks in flight). Default DefaultConcurrency.
	Concurrency int
	// Senders the load phases spread their messages over. Default
	// DefaultSenders.
	Senders int
	// MemMessages per memory case. Default DefaultMemMessages.
	MemMessages int
	// Out receives the figures; Progress the progress lines.
	Out, Progress io.Writer
}

const (
	benchApp   = 1400000000
	benchToken = "bench-token-0123456789abcdef"
)

// Run runs the benchmark and prints its figures.
func Run(ctx context.Context, o Options) error {
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Senders <= 0 {
		o.Senders = DefaultSenders
	}
	if o.MemMessages <= 0 {
		o.MemMessages = DefaultMemMessages
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "recallq-bench-capture-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rs, err := redistest.Launch(dir)
	if err != nil {
		return fmt.Errorf("start redis-server (it must be on PATH): %w", err)
	}
	defer rs.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, PoolSize: 32})
	defer rdb.Close()
	ix, err := capture.NewIndex(capture.IndexConfig{Redis: rdb})
	if err != nil {
		return err
	}
	defer ix.Close()
	s, err := capture.New(capture.Config{Index: ix, Redis: rdb, Logger: slog.New(slog.DiscardHandler),
		Auth: capture.Auth{SDKAppIDs: []uint64{benchApp}, Token: benchToken}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + capture.CallbackPath

	fmt.Fprintf(o.Out, "capture benchmark: %d CPUs (GOMAXPROCS %d), load average before: %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), loadAvg())
	fmt.Fprintf(o.Out, "the load generator, the capture and redis-server share this machine; callbacks are signed (token), spread over %d senders\n\n", o.Senders)

	gen := newGenerator(url, o.Senders, o.Concurrency)
	defer gen.close()

	fmt.Fprintf(o.Progress, "open loop: %d callbacks/s for %s...\n", o.Rate, o.Duration)
	open := gen.openLoop(ctx, o.Rate, o.Duration, o.Concurrency*4)
	fmt.Fprintf(o.Out, "open loop at %d/s for %s: sent %d, answered OK %d (%.0f/s), failed %d; answer time p50 %s, p99 %s, max %s (from the scheduled start)\n",
		o.Rate, o.Duration, open.sent, open.ok, open.okRate(), open.failed, q(open.hist, 0.5), q(open.hist, 0.99), q(open.hist, 1))
	if open.sent < int64(float64(o.Rate)*o.Duration.Seconds()*0.99) {
		fmt.Fprintf(o.Out, "  the generator could not schedule every callback on time (%d of %d): the machine is saturated\n",
			open.sent, int64(float64(o.Rate)*o.Duration.Seconds()))
	}
	fmt.Fprintf(o.Progress, "closed loop: %d clients for %s...\n", o.Concurrency, o.Duration)
	closed := gen.closedLoop(ctx, o.Concurrency, o.Duration)
	fmt.Fprintf(o.Out, "closed loop, %d clients for %s: answered OK %d (%.0f callbacks/s), failed %d; answer time p50 %s, p99 %s\n",
		o.Concurrency, o.Duration, closed.ok, closed.okRate(), closed.failed, q(closed.hist, 0.5), q(closed.hist, 0.99))
	st := s.Stats()
	fmt.Fprintf(o.Out, "the capture counted: %d indexed, %d refused, %d index errors, %d callers gone (the closed loop's clients cut off at its end)\n",
		st.IndexedC2C+st.IndexedGroup, sum(st.Refused), st.IndexErrors, st.CallerGone)
	fmt.Fprintf(o.Out, "load average after: %s\n\n", loadAvg())

	fmt.Fprintf(o.Out, "Redis memory per indexed message (used_memory growth / messages; %d messages a case, 11-byte UserIDs, MsgKey seq_random_time):\n", o.MemMessages)
	for _, per := range []int{1, 10, 100} {
		b, err := memoryCase(ctx, rdb, ix, o.MemMessages, per)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "  %3d messages per sender and bucket: %5.1f bytes/message\n", per, b)
	}
	return nil
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func q(h *bench.Histogram, p float64) string {
	d, ok := h.Quantile(p)
	if !ok {
		return "-"
	}
	return d.Round(10 * time.Microsecond).String()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// generator posts C2C callbacks.
type generator struct {
	url     string
	senders int
	client  *http.Client
	seq     atomic.Uint64
}

func newGenerator(url string, senders, conns int) *generator {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost, t.MaxConnsPerHost = conns*4, conns*4, conns*4
	return &generator{url: url, senders: senders, client: &http.Client{Transport: t, Timeout: 10 * time.Second}}
}

func (g *generator) close() { g.client.CloseIdleConnections() }

// post sends one callback and reports whether it was answered OK.
func (g *generator) post(ctx context.Context) bool {
	n := g.seq.Add(1)
	now := time.Now().Unix()
	rt := strconv.FormatInt(now, 10)
	from := fmt.Sprintf("user_%06d", rand.IntN(g.senders))
	to := fmt.Sprintf("user_%06d", rand.IntN(1000000))
	rnd := rand.Uint32()
	body := fmt.Sprintf(`{"CallbackCommand":"C2C.CallbackAfterSendMsg","From_Account":%q,"To_Account":%q,"MsgSeq":%d,"MsgRandom":%d,"MsgTime":%d,"MsgKey":"%d_%d_%d","OnlineOnlyFlag":0,"SendMsgResult":0,"ErrorInfo":"send msg succeed","UnreadMsgNum":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello, this is an ordinary chat message of some length"}}],"CloudCustomData":"","EventTime":%d}`,
		from, to, n, rnd, now, n, rnd, now, time.Now().UnixMilli())
	u := g.url + "?SdkAppid=" + strconv.Itoa(benchApp) + "&CallbackCommand=C2C.CallbackAfterSendMsg&contenttype=json&ClientIP=203.0.113.9&OptPlatform=Android&RequestTime=" + rt + "&Sign=" + capture.SignFor(benchToken, now)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"ActionStatus":"OK"`)
}

type result struct {
	sent, ok, failed int64
	elapsed          time.Duration
	hist             *bench.Histogram
}

func (r result) okRate() float64 { return float64(r.ok) / max(r.elapsed.Seconds(), 1e-9) }

// openLoop schedules callbacks at rate for d, at most inflight at once; a
// callback that finds every slot busy waits, and its answer time counts
// from its scheduled start.
func (g *generator) openLoop(ctx context.Context, rate int, d time.Duration, inflight int) result {
	res := result{hist: &bench.Histogram{}}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	total := int(d / interval)
	sched := make(chan time.Time, inflight)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range sched {
				if g.post(ctx) {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
				res.hist.Record(time.Since(at))
			}
		}()
	}
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > time.Millisecond {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		sched <- at
		res.sent++
	}
	close(sched)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ok, res.failed = ok.Load(), failed.Load()
	return res
}

// closedLoop runs n clients back to back for d.
func (g *generator) closedLoop(ctx context.Context, n int, d time.Duration) result {
	res := result{hist: &bench.Histogram{}}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				if g.post(ctx) {
					ok.Add(1)
					res.hist.Record(time.Since(t))
				} else if ctx.Err() == nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ok, res.failed = ok.Load(), failed.Load()
	return res
}

// memoryCase empties Redis, indexes n messages from n/per senders (per
// messages each, in one bucket) and returns used_memory's growth per
// message.
func memoryCase(ctx context.Context, rdb *redis.Client, ix *capture.Index, n, per int) (float64, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return 0, err
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return 0, err
	}
	now := time.Now().Unix()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	const workers = 64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				seq := uint64(i + 1)
				rnd := uint64(rand.Uint32())
				m := capture.Message{Kind: capture.C2C, From: fmt.Sprintf("user_%06d", i/per), To: fmt.Sprintf("user_%06d", rand.IntN(1000000)),
					MsgKey: fmt.Sprintf("%d_%d_%d", seq, rnd, now), Time: now}
				if err := ix.Add(ctx, benchApp, m); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("INFO memory has no used_memory")
}
