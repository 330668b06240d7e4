package worker_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// countingLimiter counts the permits a handler asks for.
type countingLimiter struct {
	*limiter.Limiter
	waits atomic.Int64
}

func (c *countingLimiter) Wait(ctx context.Context, lane limiter.Lane) (limiter.Permit, error) {
	c.waits.Add(1)
	return c.Limiter.Wait(ctx, lane)
}

// TestLateSendAsksForAnotherSlot: a handler that gets to its call more than
// the cutoff after its slot (descheduled, stopped) must not send it; it
// drops the slot and asks for another.
func TestLateSendAsksForAnotherSlot(t *testing.T) {
	rs := redistest.Start(t)
	sim, err := imsim.New(imsim.Config{SDKAppID: testApp, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	api, err := tim.New(tim.Config{SDKAppID: testApp, SecretKey: testSecret, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limiter.New(limiter.Config{Redis: rs.Client(t), App: testApp, API: tim.APIWithdraw})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lim.Close() })
	cl := &countingLimiter{Limiter: lim}
	// The handler's first look at the clock, just before its first call,
	// finds it a second after the slot.
	var looks atomic.Int64
	now := func() time.Time {
		if looks.Add(1) == 1 {
			return time.Now().Add(time.Second)
		}
		return time.Now()
	}
	h, err := worker.NewHandler(worker.HandlerConfig{SDKAppID: testApp, API: api, Limiter: cl, Now: now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r := msg(1)
	r.SDKAppID = testApp
	task, err := tasks.NewTask(r, tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(context.Background(), task); err != nil {
		t.Fatalf("ProcessTask = %v, want the message recalled", err)
	}
	if got := cl.waits.Load(); got != 2 {
		t.Errorf("%d permits asked for, want 2: the late one dropped, then a fresh one", got)
	}
	if got := sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey); len(got) != 1 {
		t.Errorf("simulator saw %v, want exactly one call", got)
	}
	if st := lim.Stats(); st.LateDrops != 1 {
		t.Errorf("limiter LateDrops = %d, want 1", st.LateDrops)
	}
}
