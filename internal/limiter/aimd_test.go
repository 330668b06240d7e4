package limiter

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/redistest"
)

// TestRateLimitsThatKeepComingLowerTheRateUntilTimeRestoresIt: a quota
// shared with callers outside recallq shows as 60007s that keep coming; the
// bucket's rate drops by a fifth on each pausing strike and recovers by 2%
// of Rate a second.
func TestRateLimitsThatKeepComingLowerTheRateUntilTimeRestoresIt(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	l := newTestLimiter(t, rdb, Config{Rate: 10})
	seed(t, rdb, l)
	iv := slotInterval(l)
	gap := func() time.Duration {
		t.Helper()
		a := grabAhead(t, l, 1).RedisSlot
		return nextSlot(t, l).Sub(a)
	}
	if g := gap(); g != iv {
		t.Fatalf("slots %s apart before any rate-limit answer, want the interval %s", g, iv)
	}
	if err := l.SlowDown(ctx, time.Millisecond); err != nil { // isolated
		t.Fatal(err)
	}
	if g := gap(); g != iv {
		t.Errorf("an isolated rate-limit answer changed the spacing to %s, want %s", g, iv)
	}
	if err := l.SlowDown(ctx, time.Millisecond); err != nil { // the second within a second
		t.Fatal(err)
	}
	want := float64(iv) / aimdDecrease
	if g := gap(); math.Abs(float64(g)-want) > 0.01*want {
		t.Errorf("after rate-limit answers that keep coming, slots %s apart, want about %s (rate x %.1f)", g, time.Duration(want), aimdDecrease)
	}
	if r, want := l.Stats().Rate, aimdDecrease/iv.Seconds(); math.Abs(r-want) > 0.01*want {
		t.Errorf("Stats().Rate = %.2f/s, want about %.2f/s", r, want)
	}
	// Ten seconds later (the decrease moved back in time) the rate is back.
	scaled, err := rdb.HGet(ctx, l.keys.gcra, "scaled").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, l.keys.gcra, "scaled", scaled-10_000_000).Err(); err != nil {
		t.Fatal(err)
	}
	if g := gap(); g != iv {
		t.Errorf("10 s after the decrease slots %s apart, want the full rate's interval %s", g, iv)
	}
}
