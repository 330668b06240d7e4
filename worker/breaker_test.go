package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
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
}

func newPod(t *testing.T, rdb redis.UniversalClient) *pod {
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
	if p.lim, err = limiter.New(limiter.Config{Redis: rdb, App: testApp, API: tim.APIWithdraw}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.lim.Close() })
	p.h, err = worker.NewHandler(worker.HandlerConfig{SDKAppID: testApp, API: api, Limiter: p.lim,
		Logger: slog.New(slog.DiscardHandler),
		OnBreaker: func(open bool, _ worker.Outcome) {
			p.mu.Lock()
			p.changes = append(p.changes, open)
			p.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	return p
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
