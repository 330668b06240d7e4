package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

const (
	testApp    = 1400000000
	testSecret = "s3cret-key-0123456789abcdef0123456789abcdef0123456789abcdef"
)

// The test app's queues.
var (
	urgentQ = tasks.AppQueue(tasks.QueueUrgent, testApp)
	bulkQ   = tasks.AppQueue(tasks.QueueBulk, testApp)
)

// env is a whole recall pipeline for one test: a real redis-server, the
// simulator behind a real HTTP server, the Tencent client, the shared
// limiter, a running worker and the producer library.
type env struct {
	t        *testing.T
	redis    *redistest.Server
	sim      *imsim.Sim
	api      *tim.Client
	lim      *limiter.Limiter
	glim     *limiter.Limiter // group_msg_recall's bucket
	calls    groupCallLog
	insp     *asynq.Inspector
	enq      *enqueue.Client
	logs     *logtest.Buffer
	sigsSeen *sigRecorder
	refresh  atomic.Int64
	events   eventLog
	unserved unservedLog
	breaker  struct {
		mu      sync.Mutex
		changes map[string][]bool // by API: true opened, false closed
	}
	stop func()
}

type envOptions struct {
	configRetryDelay time.Duration
	outageRetryDelay time.Duration // default the handler's
	breakerThreshold int           // default the handler's
	maxRetry         int
	retryBase        time.Duration // default 20ms
	// front wraps the simulator's handler (to break connections, say).
	front func(http.Handler) http.Handler
	// endpoint rewrites the simulator's http:// URL into TIM_ENDPOINT.
	endpoint func(string) string
	// groupLinger is the bulk lane's linger of group batches (default
	// the handler's); groupUrgentLinger the urgent lane's.
	groupLinger, groupUrgentLinger time.Duration
	// unservedCheck is the worker's UnservedCheck (default the worker's).
	unservedCheck time.Duration
	// dialDelay holds every new connection to the simulator back this long
	// before its connect (a server a continent away).
	dialDelay time.Duration
	// noPreconnect starts the worker with no connection open (as after
	// Tencent closed the pool's connections).
	noPreconnect bool
	// proxyRefusal makes every new connection connect at once, then fail
	// this long after with an HTTP proxy's refusal of CONNECT: a step of
	// the dial that net/http's hooks do not show.
	proxyRefusal time.Duration
	// tls serves the simulator over TLS with a certificate the worker does
	// not trust.
	tls bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.retryBase == 0 {
		o.retryBase = 20 * time.Millisecond
	}
	if o.configRetryDelay == 0 {
		o.configRetryDelay = time.Hour // stays in the retry set where the test can see it
	}
	e := &env{t: t, redis: redistest.Start(t), logs: &logtest.Buffer{}, sigsSeen: &sigRecorder{}}
	sim, err := imsim.New(imsim.Config{SDKAppID: testApp, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	var h http.Handler = sim
	if o.front != nil {
		// The fronts stand for faults of the API's calls; the worker's
		// preconnect (HEAD /) reaches the simulator past them.
		front := o.front(sim)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				sim.ServeHTTP(w, r)
				return
			}
			front.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewUnstartedServer(e.sigsSeen.wrap(h))
	if o.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)

	endpoint := srv.URL
	if o.endpoint != nil {
		endpoint = o.endpoint(endpoint)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var dial func(ctx context.Context, network, addr string) (net.Conn, error) // nil: tim's default client
	if o.proxyRefusal > 0 {
		var d net.Dialer
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			time.Sleep(o.proxyRefusal)
			conn.Close()
			return nil, &tim.ProxyError{Status: http.StatusForbidden}
		}
	}
	if o.dialDelay > 0 {
		// Inside the dial, after its ConnectStart, as a connect's round
		// trip is.
		d := net.Dialer{Control: func(string, string, syscall.RawConn) error {
			time.Sleep(o.dialDelay)
			return nil
		}}
		dial = d.DialContext
	}
	var client *http.Client
	if dial != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = dial
		// As tim's own client: net/http's default pool keeps 2 idle
		// connections to a host and would close the rest the worker opened.
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = tim.DefaultMaxIdleConnsPerHost, tim.DefaultMaxIdleConnsPerHost
		client = &http.Client{Transport: tr, Timeout: tim.DefaultHTTPTimeout}
		t.Cleanup(tr.CloseIdleConnections)
	}
	e.api, err = tim.New(tim.Config{SDKAppID: testApp, SecretKey: testSecret, Endpoint: endpoint, Logger: log,
		HTTPClient: client, OnSigRefresh: func(string) { e.refresh.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	rdb := e.redis.Client(t)
	e.lim, err = limiter.New(limiter.Config{Redis: rdb, App: testApp, API: tim.APIWithdraw, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.lim.Close() })
	e.glim, err = limiter.New(limiter.Config{Redis: rdb, App: testApp, API: tim.APIGroupRecall, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.glim.Close() })
	opt := asynq.RedisClientOpt{Addr: e.redis.Addr}
	e.insp = asynq.NewInspector(opt)
	t.Cleanup(func() { e.insp.Close() })
	e.enq, err = enqueue.New(enqueue.Config{RedisURL: e.redis.URL, SDKAppID: testApp, MaxRetry: o.maxRetry})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.enq.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, worker.Config{
			Redis:                    opt,
			Concurrency:              16,
			Preconnect:               preconnectOf(o),
			TaskCheckInterval:        10 * time.Millisecond,
			DelayedTaskCheckInterval: 100 * time.Millisecond,
			RetryBase:                o.retryBase,
			RetryMax:                 5 * o.retryBase,
			UnservedCheck:            o.unservedCheck,
			OnUnserved:               e.unserved.set,
			Logger:                   log,
			Handler: worker.HandlerConfig{
				SDKAppID: testApp, API: e.api, Limiter: e.lim, Secrets: []string{testSecret},
				ConfigRetryDelay: o.configRetryDelay, OutageRetryDelay: o.outageRetryDelay, BreakerThreshold: o.breakerThreshold, SlowDown: 20 * time.Millisecond,
				Recorder:     &e.events,
				GroupLimiter: e.glim, GroupLinger: o.groupLinger, GroupUrgentLinger: o.groupUrgentLinger,
				OnGroupCall: e.calls.add,
				OnBreaker: func(api string, open bool, _ worker.Outcome) {
					e.breaker.mu.Lock()
					if e.breaker.changes == nil {
						e.breaker.changes = map[string][]bool{}
					}
					e.breaker.changes[api] = append(e.breaker.changes[api], open)
					e.breaker.mu.Unlock()
				},
			},
		})
	}()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker.Run: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

// breakerChanges returns how the worker's circuit of api changed, in
// order: true opened, false closed.
func (e *env) breakerChanges(api string) []bool {
	e.breaker.mu.Lock()
	defer e.breaker.mu.Unlock()
	return slices.Clone(e.breaker.changes[api])
}

// queueTenSeqs queues the recalls of seqs 1 to 10 of group on the bulk
// lane (one call's worth) and returns their task IDs.
func (e *env) queueTenSeqs(group string) []string {
	e.t.Helper()
	var ids []string
	for seq := uint64(1); seq <= 10; seq++ {
		ids = append(ids, e.queueGroup(tasks.QueueBulk, tasks.GroupRecall{GroupID: group, MsgSeq: seq}))
	}
	return ids
}

// waitBreaker waits up to 5 s for api's circuit to have changed exactly as
// want (true: opened), and fails the test naming after what otherwise.
func (e *env) waitBreaker(api string, want []bool, after string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		changes := e.breakerChanges(api)
		if slices.Equal(changes, want) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s breaker changes %v after %s, want %v", api, changes, after, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noSlots pauses the test app's bucket for d.
func (e *env) noSlots(d time.Duration) {
	e.t.Helper()
	noSlots(e.t, e.lim, d)
}

// noSlots pauses lim's bucket for d: two rate-limit answers within a
// second (one alone is isolated and pauses nothing). It checks that no
// slot is granted.
func noSlots(t *testing.T, lim *limiter.Limiter, d time.Duration) {
	t.Helper()
	for range 2 {
		if err := lim.SlowDown(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if p, err := lim.Wait(ctx, limiter.Urgent); err == nil {
		t.Fatalf("the bucket still grants slots (one at %s) after two rate-limit answers", p.Slot.Format(time.RFC3339Nano))
	}
}

// lastAttempt queues r with no retry at all and the given deadline (its
// first attempt is its last), and returns its task ID.
func (e *env) lastAttempt(r tasks.Recall, timeout time.Duration) string {
	e.t.Helper()
	return e.rawTask(r, asynq.Queue(urgentQ), asynq.MaxRetry(0), asynq.Timeout(timeout), asynq.Retention(time.Hour))
}

// rawTask queues r (of the test app unless it names another) with asynq's
// own client and opts, bypassing the enqueue library's options, and
// returns its task ID.
func (e *env) rawTask(r tasks.Recall, opts ...asynq.Option) string {
	e.t.Helper()
	if r.SDKAppID == 0 {
		r.SDKAppID = testApp
	}
	payload, err := r.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: e.redis.Addr})
	defer c.Close()
	if _, err := c.Enqueue(asynq.NewTask(tasks.TypeRecall, payload), append([]asynq.Option{asynq.TaskID(r.TaskID())}, opts...)...); err != nil {
		e.t.Fatal(err)
	}
	return r.TaskID()
}

// recall queues a recall of a fresh message named by key's suffix.
func (e *env) recall(r tasks.Recall) string {
	e.t.Helper()
	res, err := e.enq.Recall(context.Background(), r)
	if err != nil {
		e.t.Fatalf("queue %+v: %v", r, err)
	}
	return res.TaskID
}

// waitTask polls the task until ok says it has arrived, and returns it.
func (e *env) waitTask(id string, what string, ok func(*asynq.TaskInfo) bool) *asynq.TaskInfo {
	e.t.Helper()
	return e.waitTaskIn(urgentQ, id, what, ok)
}

// waitTaskIn is waitTask for a task of queue.
func (e *env) waitTaskIn(queue, id string, what string, ok func(*asynq.TaskInfo) bool) *asynq.TaskInfo {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last *asynq.TaskInfo
	for time.Now().Before(deadline) {
		info, err := e.insp.GetTaskInfo(queue, id)
		if err == nil {
			last = info
			if ok(info) {
				return info
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last == nil {
		e.t.Fatalf("task %s: never found", id)
	}
	e.t.Fatalf("task %s never became %s: state=%v retried=%d last_err=%q\nthe worker's log:\n%s",
		id, what, last.State, last.Retried, last.LastErr, e.logs.String())
	return nil
}

func inState(s asynq.TaskState) func(*asynq.TaskInfo) bool {
	return func(i *asynq.TaskInfo) bool { return i.State == s }
}

// msg returns a fresh, well-formed message for a test row.
func msg(n int) tasks.Recall {
	return tasks.Recall{FromAccount: fmt.Sprintf("sender_%d", n), ToAccount: fmt.Sprintf("recipient_%d", n),
		MsgKey: fmt.Sprintf("%d_%d_1572869830", 1000+n, 833502+n)}
}

// sigRecorder remembers every UserSig that reached the simulator, so tests
// can search outputs for them.
type sigRecorder struct {
	mu   sync.Mutex
	sigs map[string]bool
}

func (r *sigRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if s := req.URL.Query().Get("usersig"); s != "" {
			r.mu.Lock()
			if r.sigs == nil {
				r.sigs = map[string]bool{}
			}
			r.sigs[s] = true
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	})
}

func (r *sigRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for s := range r.sigs {
		out = append(out, s)
	}
	return out
}

func assertNoSecret(t *testing.T, where, text string, sigs []string) {
	t.Helper()
	if strings.Contains(text, testSecret) {
		t.Errorf("%s contains the secret key", where)
	}
	for _, s := range sigs {
		if strings.Contains(text, s) {
			t.Errorf("%s contains a UserSig", where)
		}
	}
}

func imsimOutage(d time.Duration) imsim.Faults {
	return imsim.Faults{OutageUntil: time.Now().Add(d)}
}

// eventLog keeps every Event the handler recorded.
type eventLog struct {
	mu  sync.Mutex
	evs []worker.Event
}

func (l *eventLog) Record(ev worker.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

// fates lists the fates recorded for a task, in order.
func (l *eventLog) fates(taskID string) []worker.Fate {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []worker.Fate
	for _, ev := range l.evs {
		if ev.TaskID == taskID {
			out = append(out, ev.Fate)
		}
	}
	return out
}

// groupCallLog keeps every group call the handler reported.
type groupCallLog struct {
	mu    sync.Mutex
	calls []worker.GroupCall
}

func (l *groupCallLog) add(c worker.GroupCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

func (l *groupCallLog) all() []worker.GroupCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]worker.GroupCall(nil), l.calls...)
}

// keptForOtherApp checks that the task of app testApp+1 stays pending in
// that app's urgent queue, untouched, while this worker (of testApp) runs,
// and that calls (the simulator's count) stays 0.
func (e *env) keptForOtherApp(id string, calls func() int) {
	e.t.Helper()
	q := tasks.AppQueue(tasks.QueueUrgent, testApp+1)
	info := e.waitTaskIn(q, id, "pending", inState(asynq.TaskStatePending))
	time.Sleep(500 * time.Millisecond) // ten times the worker's queue check
	info = e.waitTaskIn(q, id, "still pending", inState(asynq.TaskStatePending))
	if info.Retried != 0 || info.LastErr != "" {
		e.t.Errorf("another app's task was taken: retried=%d last_err=%q", info.Retried, info.LastErr)
	}
	if n := calls(); n != 0 {
		e.t.Errorf("the API was called %d times for another app's task", n)
	}
}

// preconnectOf is the worker's Config.Preconnect for o.
func preconnectOf(o envOptions) int {
	if o.noPreconnect {
		return -1
	}
	return 0
}
