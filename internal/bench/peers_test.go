package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
)

// TestFixedWindowCountsAndWaits pins BullMQ's arithmetic: max calls go in a
// window, the next is told to wait for the window's end, and SlowDown fills
// the window for its duration.
func TestFixedWindowCountsAndWaits(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	f := newFixedWindow(rdb, 1, 3, time.Minute)
	ask := func() int64 {
		t.Helper()
		v, err := fixedWindowScript.Run(ctx, rdb, []string{f.key}, f.max, f.window.Milliseconds()).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for i := range 3 {
		if v := ask(); v != 0 {
			t.Fatalf("call %d of 3 told to wait %d ms", i+1, v)
		}
	}
	if v := ask(); v <= 0 || v > time.Minute.Milliseconds() {
		t.Fatalf("the 4th call in the window got %d, want the window's PTTL", v)
	}
	if ttl := rdb.PTTL(ctx, f.key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("window PTTL %s, want set by the first call", ttl)
	}

	g := newFixedWindow(rdb, 2, 3, time.Minute)
	if err := g.SlowDown(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := g.Wait(wctx, limiter.Urgent); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait after SlowDown = %v, want it to wait out the pause", err)
	}
	if g.waitRoundTrips() < 1 {
		t.Error("round trips not counted")
	}
}

// TestLocalLimiterSlowDownPausesThisProcess: the per-process recipe has
// only its own process to pause.
func TestLocalLimiterSlowDownPausesThisProcess(t *testing.T) {
	l := newLocalLimiter(1000)
	if _, err := l.Wait(context.Background(), limiter.Urgent); err != nil {
		t.Fatal(err)
	}
	if err := l.SlowDown(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Wait(ctx, limiter.Urgent); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait after SlowDown = %v, want it to wait out the pause", err)
	}
}
