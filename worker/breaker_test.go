package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// pod is one worker process's handler, with its own path to Tencent (a
// simulator of its own) and its own limiter on the app's shared bucket.
type pod struct {
	sim     *imsim.Sim
	lim     *limiter.Limiter
	h       *worker.Handler
	mu      sync.Mutex
	changes []bool
	outs    []worker.Outcome // the Outcome of each change
}

func newPod(t *testing.T, rdb redis.UniversalClient) *pod {
	t.Helper()
	return newPodAt(t, rdb, nil)
}

// newPodAt is newPod with now (nil: time.Now) as the clock of its handler
// and limiter.
func newPodAt(t *testing.T, rdb redis.UniversalClient, now func() time.Time) *pod {
	t.Helper()
	p := &pod{}
	var err error
	if p.sim, err = imsim.New(imsim.Config{SDKAppID: testApp, SecretKey: testSecret}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.sim)
	t.Cleanup(srv.Close)
	api, err := tim.New(tim.Config{SDKAppID: testApp, SecretKey: testSecret, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if p.lim, err = limiter.New(limiter.Config{Redis: rdb, App: testApp, API: tim.APIWithdraw, Now: now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.lim.Close() })
	p.h, err = worker.NewHandler(worker.HandlerConfig{SDKAppID: testApp, API: api, Limiter: p.lim,
		Logger: slog.New(slog.DiscardHandler), Now: now,
		OnBreaker: func(_ string, open bool, o worker.Outcome) { // a pod calls admin_msgwithdraw only
			p.mu.Lock()
			p.changes = append(p.changes, open)
			p.outs = append(p.outs, o)
			p.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pod) breakerChanges() []bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.changes)
}

func (p *pod) process(t *testing.T, n int) error {
	t.Helper()
	r := msg(n)
	r.SDKAppID = testApp
	task, err := tasks.NewTask(r, tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p.h.ProcessTask(context.Background(), task)
}

// TestOneBadWorkerDoesNotStopTheApp: one process whose own configuration is
// wrong (here its admin, 90009) stops itself, not the app: the shared
// bucket is not paused and the healthy process goes on; the bad one hands
// tasks back without calling and without using a retry.
func TestOneBadWorkerDoesNotStopTheApp(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	bad, good := newPod(t, rs.Client(t)), newPod(t, rs.Client(t))
	bad.sim.SetFaults(imsim.Faults{CodeUntil: time.Now().Add(time.Hour), Code: 90009})

	for i := range worker.DefaultBreakerThreshold {
		if err := bad.process(t, i); err == nil || worker.IsFailure(err) {
			t.Fatalf("bad worker, task %d: %v, want a configuration error that is not a failure", i, err)
		}
	}
	bad.mu.Lock()
	changes := bad.changes
	bad.mu.Unlock()
	if len(changes) != 1 || !changes[0] {
		t.Fatalf("bad worker's circuit changes %v, want [open]", changes)
	}

	// Nothing paused the app's bucket.
	key := fmt.Sprintf("recallq:{lim:%d:admin_msgwithdraw}:gcra", testApp)
	pause, err := rdb.HGet(context.Background(), key, "pause").Int64()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	if now, _ := rdb.Time(context.Background()).Result(); pause > now.UnixMicro() {
		t.Errorf("the bucket is paused %s beyond Redis's now: one worker's configuration error paused the app",
			time.UnixMicro(pause).Sub(now))
	}
	for i := 100; i < 105; i++ {
		if err := good.process(t, i); err != nil {
			t.Errorf("healthy worker, task %d: %v", i, err)
		}
	}
	if got := good.sim.Stats().ByCode[0]; got != 5 {
		t.Errorf("healthy worker recalled %d messages, want 5", got)
	}

	// The bad worker hands the next task back without a call.
	err = bad.process(t, 10)
	if err == nil || worker.IsFailure(err) {
		t.Errorf("bad worker with an open circuit: %v, want the task handed back, not a failure", err)
	}
	if got := bad.sim.Stats().Calls; got != worker.DefaultBreakerThreshold {
		t.Errorf("bad worker made %d calls, want only the %d that opened its circuit", got, worker.DefaultBreakerThreshold)
	}
	if d := worker.RetryDelay(time.Second, time.Minute)(0, err, nil); d > time.Second {
		t.Errorf("a task handed back by an open circuit waits %s before another worker may take it, want at most a second", d)
	}
}

// TestUserSigRefusedEveryTimeOpensTheCircuit: a wrong or revoked key
// (60004 on every call) is refused twice in a row by each task, a
// configuration error; three of them open the circuit. The first refusal
// of each task (answered by calling again with a fresh UserSig) must not
// count as a good answer that resets the run.
func TestUserSigRefusedEveryTimeOpensTheCircuit(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	p := newPod(t, rs.Client(t))
	p.sim.SetFaults(imsim.Faults{CodeUntil: time.Now().Add(time.Hour), Code: 60004})
	for i := range worker.DefaultBreakerThreshold {
		if err := p.process(t, i); err == nil || worker.IsFailure(err) {
			t.Fatalf("task %d: %v, want a configuration error that is not a failure", i, err)
		}
	}
	if got := p.breakerChanges(); !slices.Equal(got, []bool{true}) {
		t.Fatalf("after %d tasks refused 60004 twice each: circuit changes %v, want [open]", worker.DefaultBreakerThreshold, got)
	}
	if got, want := p.sim.Stats().Calls, int64(2*worker.DefaultBreakerThreshold); got != want {
		t.Errorf("%d calls, want %d (two per task, none once the circuit is open)", got, want)
	}
}

// TestUserSigRefusedProbeKeepsTheCircuitOpen: a probe whose call meets a
// refused UserSig calls again as the probe; refused again, the circuit
// stays open (it was opened by another configuration error, 70009).
func TestUserSigRefusedProbeKeepsTheCircuitOpen(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	p := newPodAt(t, rs.Client(t), func() time.Time { return time.Unix(0, now.Load()) })
	p.sim.SetFaults(imsim.Faults{CodeUntil: time.Now().Add(time.Hour), Code: 70009})
	for i := range worker.DefaultBreakerThreshold {
		_ = p.process(t, i)
	}
	if got := p.breakerChanges(); !slices.Equal(got, []bool{true}) {
		t.Fatalf("after %d configuration errors: circuit changes %v, want [open]", worker.DefaultBreakerThreshold, got)
	}
	p.sim.SetFaults(imsim.Faults{CodeUntil: time.Now().Add(time.Hour), Code: 60004})
	now.Add(int64(worker.DefaultBreakerOpenMax)) // the pause is over: the next task is the probe
	if err := p.process(t, 10); err == nil || worker.IsFailure(err) {
		t.Fatalf("probe: %v, want a configuration error that is not a failure", err)
	}
	if got := p.breakerChanges(); !slices.Equal(got, []bool{true}) {
		t.Errorf("probe refused 60004 twice: circuit changes %v, want it still open [open]", got)
	}
	if got, want := p.sim.Stats().Calls, int64(worker.DefaultBreakerThreshold+2); got != want {
		t.Errorf("%d calls, want %d (the probe calls twice: a fresh UserSig, then refused again)", got, want)
	}
}

// TestProbeReportsAFaultOfTheOtherKind: an open circuit's probe that meets
// a configuration error of the other kind (the app's console setting, or
// this worker's own) reports the circuit open again with it, so readiness
// follows the fault that now keeps it open; another error of the same kind
// reports nothing.
func TestProbeReportsAFaultOfTheOtherKind(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	p := newPodAt(t, rs.Client(t), func() time.Time { return time.Unix(0, now.Load()) })
	fault := func(code int) { p.sim.SetFaults(imsim.Faults{CodeUntil: time.Now().Add(time.Hour), Code: code}) }
	probe := func(n int) {
		t.Helper()
		now.Add(int64(worker.DefaultBreakerOpenMax)) // the pause is over: the next task is the probe
		_ = p.process(t, n)
	}
	reported := func() []int {
		p.mu.Lock()
		defer p.mu.Unlock()
		var codes []int
		for i, o := range p.outs {
			if p.changes[i] {
				codes = append(codes, o.Code)
			} else {
				codes = append(codes, 0)
			}
		}
		return codes
	}

	fault(60020) // the app's plan expired: the console's
	for i := range worker.DefaultBreakerThreshold {
		_ = p.process(t, i)
	}
	fault(90009) // this worker's admin is no app admin: its own
	probe(10)
	fault(60004) // a key refused twice: its own as well
	probe(11)
	fault(60016) // the app disabled: the console's
	probe(12)
	p.sim.SetFaults(imsim.Faults{})
	probe(13)
	// 0: closed.
	if got, want := reported(), []int{60020, 90009, 60016, 0}; !slices.Equal(got, want) {
		t.Fatalf("circuit reported open on %v, want %v", got, want)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range p.outs[:3] {
		if want := o.Code != 90009; o.Console != want {
			t.Errorf("report %d (%d): Console %v, want %v", i, o.Code, o.Console, want)
		}
	}
}

// TestATaskOneBadWorkerMetGoesBackSoon: the tasks a process's own
// configuration error met (its first calls, before its circuit opened, and
// each probe's) go back to the queue about as soon as the tasks it holds
// while the circuit is open, for the healthy processes to take: the
// breaker bounds the calls, so the task need not wait. Before, it waited a
// minute in the retry set: one bad pod of four made a 3,000-recall
// campaign of 16 s last 85-129 s, its last tasks the ones the bad pod met.
func TestATaskOneBadWorkerMetGoesBackSoon(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	bad := newPod(t, rs.Client(t))
	bad.sim.SetFaults(imsim.Faults{CodeUntil: time.Now().Add(time.Hour), Code: 90009})
	delay := worker.RetryDelay(worker.DefaultRetryBase, worker.DefaultRetryMax)
	r := msg(1)
	r.SDKAppID = testApp
	task, err := tasks.NewTask(r, tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range worker.DefaultBreakerThreshold + 1 { // the last one held while the circuit is open
		err := bad.h.ProcessTask(context.Background(), task)
		if err == nil || worker.IsFailure(err) {
			t.Fatalf("task %d: %v, want a configuration error that is not a failure", i, err)
		}
		if d := delay(0, err, task); d > 2*time.Second {
			t.Errorf("task %d (%v) goes back in %s, want about a second", i, err, d.Round(time.Second))
		}
	}
}
