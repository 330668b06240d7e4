package fanout_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/recallq/recallq/internal/fanout"
)

func TestEachCallsEveryItemOnce(t *testing.T) {
	const n = 1000
	var seen [n]atomic.Int32
	var inFlight, most atomic.Int32
	err := fanout.Each(context.Background(), n, 8, func(_ context.Context, i int) error {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); cur > m && !most.CompareAndSwap(m, cur); m = most.Load() {
		}
		seen[i].Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if got := seen[i].Load(); got != 1 {
			t.Fatalf("item %d: called %d times, want once", i, got)
		}
	}
	if m := most.Load(); m > 8 {
		t.Fatalf("%d calls at once, want at most 8", m)
	}
}

func TestEachStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int32
	err := fanout.Each(context.Background(), 100000, 4, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 10 {
			return boom
		}
		return ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the first error", err)
	}
	if c := calls.Load(); c >= 100000 {
		t.Fatalf("%d calls: the error did not stop the rest", c)
	}
}

func TestEachReturnsTheContextsError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fanout.Each(ctx, 10, 2, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
