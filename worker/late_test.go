package worker_test

import (
	"context"
	"log/slog"
	"net/http"
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
	t.Parallel()
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
	// A busy machine may also cut a call waiting for its new connection
	// (Permit.Go), which asks for one more.
	if got := cl.waits.Load() - lim.Stats().LateConnDrops; got != 2 {
		t.Errorf("%d permits asked for (not counting %d cut waiting for a connection), want 2: the late one dropped, then a fresh one",
			got, lim.Stats().LateConnDrops)
	}
	if got := sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey); len(got) != 1 {
		t.Errorf("simulator saw %v, want exactly one call", got)
	}
	// The handler's own check dropped one; Wait may drop more on a busy
	// machine (a grant answer or a wake-up late), which it counts apart.
	if st := lim.Stats(); st.LateDrops-st.LateGrantDrops-st.LateWakeDrops-st.LateConnDrops != 1 {
		t.Errorf("limiter LateDrops = %d (grant %d, wake-up %d, connection %d), want 1 dropped before the send",
			st.LateDrops, st.LateGrantDrops, st.LateWakeDrops, st.LateConnDrops)
	}
}

// observingLimiter records what the handler tells Observe, and when.
type observingLimiter struct {
	*limiter.Limiter
	done, told atomic.Int64 // UnixNano
}

func (o *observingLimiter) Observe(p limiter.Permit, done time.Time) {
	o.done.Store(done.UnixNano())
	o.told.Store(time.Now().UnixNano())
	o.Limiter.Observe(p, done)
}

// TestAnswerTimeIsTheFirstByte: the latency sample the handler gives the
// limiter ends when the answer's first byte came, not when the handler had
// read and decoded it all: the answer's way back moves no call's arrival,
// and counting it widens the spread that paces every worker.
func TestAnswerTimeIsTheFirstByte(t *testing.T) {
	t.Parallel()
	const trail = 150 * time.Millisecond
	rs := redistest.Start(t)
	sim, err := imsim.New(imsim.Config{SDKAppID: testApp, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	// The simulator's answer, its head sent at once and its body 150 ms
	// later (a slow way back).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.(http.Flusher).Flush()
		time.Sleep(trail)
		_, _ = w.Write(rec.Body.Bytes())
	}))
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
	ol := &observingLimiter{Limiter: lim}
	h, err := worker.NewHandler(worker.HandlerConfig{SDKAppID: testApp, API: api, Limiter: ol,
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
	if ol.done.Load() == 0 {
		t.Fatal("Observe was not called")
	}
	if got := time.Duration(ol.told.Load() - ol.done.Load()); got < trail*2/3 {
		t.Errorf("Observe was told an answer time %s before it was called, want about %s: the first byte's time, not the end of the body", got, trail)
	}
}
