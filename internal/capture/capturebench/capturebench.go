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
// the capture and Redis (it writes raw HTTP/1.1 on keep-alive connections
// to cost little): on a small machine the figures are lower bounds.
package capturebench

import (
	"bufio"
	"bytes"
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
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/bench"
	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/childproc"
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

// warmUp is the open loop's unmeasured start.
const warmUp = 2 * time.Second

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
	// Exe, if set, is a binary with recallq's commands: the capture then
	// runs as `Exe capture`, a process of its own, and its CPU and
	// redis-server's are measured per callback (Linux). Empty, or with
	// NetHTTP or CPUProfile (which profiles this process), the capture runs
	// in this process.
	Exe string
	// NetHTTP serves the capture with net/http instead of the capture's
	// own server (fasthttp), to compare the two.
	NetHTTP bool
	// CPUProfile, if set, is the file the closed loop's CPU profile is
	// written to (go tool pprof reads it).
	CPUProfile string
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
	rs, err := redistest.LaunchTemp("recallq-bench-capture-")
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
	var (
		server string
		url    string
		stats  func() (capture.Stats, error)
		cpu    func() (time.Duration, bool) // the capture's CPU so far
	)
	if o.Exe != "" && !o.NetHTTP && o.CPUProfile == "" {
		var procs childproc.Group
		defer procs.KillAll()
		child, err := startChild(ctx, &procs, rs.Dir(), o.Exe, "redis://"+rs.Addr+"/0")
		if err != nil {
			return err
		}
		defer child.stop()
		server = "`recallq capture`, a process of its own"
		url, stats, cpu = child.url+capture.CallbackPath, child.stats, child.cpu
	} else {
		s, err := capture.New(capture.Config{Index: ix, Redis: rdb, Logger: slog.New(slog.DiscardHandler),
			Auth: capture.Auth{SDKAppIDs: []uint64{benchApp}, Token: benchToken}})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		server = "fasthttp (the capture's own), in the generator's process"
		if o.NetHTTP {
			server = "net/http, in the generator's process"
			srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
			go srv.Serve(ln)
			defer srv.Close()
		} else {
			sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
			served := make(chan error, 1)
			go func() { served <- s.Serve(sctx, ln, nil) }()
			defer func() { stop(); <-served }()
		}
		url = "http://" + ln.Addr().String() + capture.CallbackPath
		stats = func() (capture.Stats, error) { return s.Stats(), nil }
		cpu = func() (time.Duration, bool) { return 0, false }
	}

	fmt.Fprintf(o.Out, "capture benchmark: %d CPUs (GOMAXPROCS %d), load average before: %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), loadAvg())
	fmt.Fprintf(o.Out, "the load generator, the capture (served by %s) and redis-server share this machine; callbacks are signed (token), spread over %d senders\n\n", server, o.Senders)

	// meter prints what one phase cost the capture and redis-server in
	// CPU per callback, and what two cores would take at that cost.
	meter := func() func(name string, ok int64) {
		c0, haveC := cpu()
		r0, haveR := redisCPU(ctx, rdb)
		return func(name string, ok int64) {
			c1, _ := cpu()
			r1, _ := redisCPU(ctx, rdb)
			if !haveC || !haveR || ok == 0 {
				return
			}
			per := (c1 - c0 + r1 - r0) / time.Duration(ok)
			fmt.Fprintf(o.Out, "  %s CPU per callback: the capture %.1f µs, redis-server %.1f µs; at that cost 2 cores take %.0f callbacks/s with the generator elsewhere\n",
				name, float64(c1-c0)/float64(ok)/1e3, float64(r1-r0)/float64(ok)/1e3, 2*float64(time.Second)/float64(max(per, 1)))
		}
	}
	gen := newGenerator(url, o.Senders, o.Concurrency)
	defer gen.close()

	// Tencent's callback clients keep their connections open: the open
	// loop is measured after a warm-up at its rate that opens them (and
	// grows the heap and the Redis pipelines), reported on its own line.
	fmt.Fprintf(o.Progress, "warm-up: %d callbacks/s for %s...\n", o.Rate, warmUp)
	warm := gen.openLoop(ctx, o.Rate, warmUp, o.Concurrency*4)
	fmt.Fprintf(o.Out, "warm-up at %d/s for %s (not counted below): answered OK %d, failed %d; answer time p50 %s, p99 %s, max %s\n",
		o.Rate, warmUp, warm.ok, warm.failed, q(warm.hist, 0.5), q(warm.hist, 0.99), q(warm.hist, 1))
	fmt.Fprintf(o.Progress, "open loop: %d callbacks/s for %s...\n", o.Rate, o.Duration)
	done := meter()
	open := gen.openLoop(ctx, o.Rate, o.Duration, o.Concurrency*4)
	fmt.Fprintf(o.Out, "open loop at %d/s for %s: sent %d, answered OK %d (%.0f/s), failed %d; answer time p50 %s, p99 %s, max %s (from the scheduled start)\n",
		o.Rate, o.Duration, open.sent, open.ok, open.okRate(), open.failed, q(open.hist, 0.5), q(open.hist, 0.99), q(open.hist, 1))
	done("open loop:", open.ok)
	if open.sent < int64(float64(o.Rate)*o.Duration.Seconds()*0.99) {
		fmt.Fprintf(o.Out, "  the generator could not schedule every callback on time (%d of %d): the machine is saturated\n",
			open.sent, int64(float64(o.Rate)*o.Duration.Seconds()))
	}
	fmt.Fprintf(o.Progress, "closed loop: %d clients for %s...\n", o.Concurrency, o.Duration)
	stopProfile, err := startProfile(o.CPUProfile)
	if err != nil {
		return err
	}
	done = meter()
	closed := gen.closedLoop(ctx, o.Concurrency, o.Duration)
	stopProfile()
	fmt.Fprintf(o.Out, "closed loop, %d clients for %s: answered OK %d (%.0f callbacks/s), failed %d; answer time p50 %s, p99 %s\n",
		o.Concurrency, o.Duration, closed.ok, closed.okRate(), closed.failed, q(closed.hist, 0.5), q(closed.hist, 0.99))
	done("closed loop:", closed.ok)
	st, err := stats()
	if err != nil {
		return fmt.Errorf("the capture's /stats: %w", err)
	}
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

// startProfile starts a CPU profile into path ("" profiles nothing).
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
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

// generator posts C2C callbacks over plain HTTP/1.1 keep-alive
// connections of its own: each request is appended into the connection's
// buffer and the answer read with a bufio.Reader, so the generator costs a
// fraction of what net/http's client does and leaves the cores it shares
// with the capture to the capture. The capture itself is served by its
// own Serve (fasthttp), as `recallq capture` runs it, or by net/http with
// Options.NetHTTP.
type generator struct {
	addr    string // host:port
	path    string
	senders int
	seq     atomic.Uint64
	idle    chan *conn
}

// conn is one keep-alive connection and its buffers.
type conn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

func newGenerator(url string, senders, conns int) *generator {
	rest, _ := strings.CutPrefix(url, "http://")
	addr, path, _ := strings.Cut(rest, "/")
	return &generator{addr: addr, path: "/" + path, senders: senders, idle: make(chan *conn, conns*4)}
}

func (g *generator) close() {
	for {
		select {
		case c := <-g.idle:
			c.c.Close()
		default:
			return
		}
	}
}

func (g *generator) get() (*conn, error) {
	select {
	case c := <-g.idle:
		return c, nil
	default:
	}
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, 4096), buf: make([]byte, 0, 2048)}, nil
}

func (g *generator) put(c *conn) {
	select {
	case g.idle <- c:
	default:
		c.c.Close()
	}
}

// post sends one callback and reports whether it was answered OK.
func (g *generator) post(ctx context.Context) bool {
	c, err := g.get()
	if err != nil {
		return false
	}
	// A callback under way is let finish when ctx ends (the closed loop's
	// end): only a hung answer is cut off.
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	c.buf = g.appendRequest(c.buf[:0])
	if _, err := c.c.Write(c.buf); err != nil {
		c.c.Close()
		return false
	}
	status, body, err := readAnswer(c.r)
	if err != nil {
		c.c.Close()
		return false
	}
	g.put(c)
	return status == http.StatusOK && bytes.Contains(body, []byte(`"ActionStatus":"OK"`))
}

// appendRequest appends one signed callback request, as Tencent sends it.
func (g *generator) appendRequest(b []byte) []byte {
	n := g.seq.Add(1)
	now := time.Now().Unix()
	rnd := uint64(rand.Uint32())
	b = append(b, "POST "...)
	b = append(b, g.path...)
	b = append(b, "?SdkAppid="...)
	b = strconv.AppendInt(b, benchApp, 10)
	b = append(b, "&CallbackCommand=C2C.CallbackAfterSendMsg&contenttype=json&ClientIP=203.0.113.9&OptPlatform=Android&RequestTime="...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, "&Sign="...)
	b = append(b, capture.SignFor(benchToken, now)...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, g.addr...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	lenAt := len(b)
	b = append(b, "00000\r\n\r\n"...)
	bodyAt := len(b)
	b = append(b, `{"CallbackCommand":"C2C.CallbackAfterSendMsg","From_Account":"user_`...)
	b = appendPadded(b, uint64(rand.IntN(g.senders)))
	b = append(b, `","To_Account":"user_`...)
	b = appendPadded(b, uint64(rand.IntN(1000000)))
	b = append(b, `","MsgSeq":`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `,"MsgRandom":`...)
	b = strconv.AppendUint(b, rnd, 10)
	b = append(b, `,"MsgTime":`...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `,"MsgKey":"`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, '_')
	b = strconv.AppendUint(b, rnd, 10)
	b = append(b, '_')
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `","OnlineOnlyFlag":0,"SendMsgResult":0,"ErrorInfo":"send msg succeed","UnreadMsgNum":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello, this is an ordinary chat message of some length"}}],"CloudCustomData":"","EventTime":`...)
	b = strconv.AppendInt(b, time.Now().UnixMilli(), 10)
	b = append(b, '}')
	l := len(b) - bodyAt
	for i := lenAt + 4; i >= lenAt; i-- { // the length, right-aligned in its five digits
		b[i] = byte('0' + l%10)
		l /= 10
	}
	return b
}

// appendPadded appends n in at least six digits, as user_%06d does.
func appendPadded(b []byte, n uint64) []byte {
	for d := uint64(100000); d > 1 && n < d; d /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, n, 10)
}

// readAnswer reads one HTTP/1.1 answer with a Content-Length.
func readAnswer(r *bufio.Reader) (int, []byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0, nil, errors.New("no status line")
	}
	status, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, nil, err
	}
	length := -1
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, nil, err
			}
		}
	}
	if length < 0 {
		return 0, nil, errors.New("no Content-Length")
	}
	body := make([]byte, length)
	_, err = io.ReadFull(r, body)
	return status, body, err
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
	info, err := rdb.InfoMap(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
}

// redisCPU is redis-server's CPU time so far (INFO cpu: used_cpu_sys +
// used_cpu_user).
func redisCPU(ctx context.Context, rdb *redis.Client) (time.Duration, bool) {
	info, err := rdb.InfoMap(ctx, "cpu").Result()
	if err != nil {
		return 0, false
	}
	sys, err1 := strconv.ParseFloat(info["CPU"]["used_cpu_sys"], 64)
	user, err2 := strconv.ParseFloat(info["CPU"]["used_cpu_user"], 64)
	if errors.Join(err1, err2) != nil {
		return 0, false
	}
	return time.Duration((sys + user) * float64(time.Second)), true
}
