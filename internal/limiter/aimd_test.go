package limiter

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
)

// aimdBucket is a limiter at Rate 10 on a seeded schedule, with helpers to
// read the spacing of its slots and to move the bucket's AIMD state back in
// time.
type aimdBucket struct {
	t   *testing.T
	rdb *redis.Client
	l   *Limiter
	iv  time.Duration // the interval at the full rate
}

func newAIMDBucket(t *testing.T) *aimdBucket {
	s := redistest.Start(t)
	rdb := s.Client(t)
	l := newTestLimiter(t, rdb, Config{Rate: 10})
	seed(t, rdb, l)
	return &aimdBucket{t: t, rdb: rdb, l: l, iv: slotInterval(l)}
}

// gap is the spacing of two slots granted now, in intervals at the full
// rate: 1/scale.
func (b *aimdBucket) gap() float64 {
	b.t.Helper()
	a := grabAhead(b.t, b.l, 1).RedisSlot
	return float64(nextSlot(b.t, b.l).Sub(a)) / float64(b.iv)
}

// strike reports two rate-limit answers, so that the second is not
// isolated.
func (b *aimdBucket) strike() {
	b.t.Helper()
	for range 2 {
		if err := b.l.SlowDown(context.Background(), time.Second); err != nil {
			b.t.Fatal(err)
		}
	}
}

// age moves the times of the AIMD state (when the scale was set, the hold,
// the last strike) d into the past, as if d had passed.
func (b *aimdBucket) age(d time.Duration) {
	b.t.Helper()
	ctx := context.Background()
	for _, f := range []string{"scaled", "hold", "strike"} {
		v, err := b.rdb.HGet(ctx, b.l.keys.gcra, f).Int64()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			b.t.Fatalf("HGET %s: %v", f, err)
		}
		if err := b.rdb.HSet(ctx, b.l.keys.gcra, f, v-d.Microseconds()).Err(); err != nil {
			b.t.Fatal(err)
		}
	}
}

func near(got, want float64) bool { return math.Abs(got-want) <= 0.01*want }

// TestRateLimitsThatKeepComingLowerTheRate: a quota shared with callers
// outside recallq shows as 60007s that keep coming; an isolated one changes
// nothing, a strike cuts the bucket's rate by a fifth for every process.
func TestRateLimitsThatKeepComingLowerTheRate(t *testing.T) {
	b := newAIMDBucket(t)
	if g := b.gap(); g != 1 {
		t.Fatalf("slots %.3f intervals apart before any rate-limit answer, want 1", g)
	}
	if err := b.l.SlowDown(context.Background(), time.Millisecond); err != nil { // isolated
		t.Fatal(err)
	}
	if g := b.gap(); g != 1 {
		t.Errorf("an isolated rate-limit answer changed the spacing to %.3f intervals, want 1", g)
	}
	b.strike()
	if g, want := b.gap(), 1/aimdDecrease; !near(g, want) {
		t.Errorf("after a strike slots %.3f intervals apart, want %.3f (rate x %.1f)", g, want, aimdDecrease)
	}
	if r, want := b.l.Stats().Rate, aimdDecrease/b.iv.Seconds(); !near(r, want) {
		t.Errorf("Stats().Rate = %.2f/s, want %.2f/s", r, want)
	}
}

// TestStrikesBeforeTheCutTookEffectDoNotCutAgain: the 60007s that answer
// calls granted before a cut (the fleet's lookahead, the pause) say nothing
// of the lower rate: they must neither cut it again nor pause again. (They
// cut it once per 60007, to a tenth, at 16 processes.)
func TestStrikesBeforeTheCutTookEffectDoNotCutAgain(t *testing.T) {
	b := newAIMDBucket(t)
	b.strike()
	b.strike() // still within the pause of the first
	if g, want := b.gap(), 1/aimdDecrease; !near(g, want) {
		t.Errorf("strikes during the hold: slots %.3f intervals apart, want %.3f (one cut)", g, want)
	}
	if st := b.l.Stats(); st.SlowDowns != 1 || st.HeldStrikes != 2 {
		t.Errorf("Stats() SlowDowns=%d HeldStrikes=%d, want 1 and 2", st.SlowDowns, st.HeldStrikes)
	}
}

// TestRecoveryFlattensNearTheRateThatDrewTheStrikes: after a cut the rate
// climbs back fast to just under where the 60007s came (the knee), stays
// near it, and probes above it only slowly; in under a minute it is back
// at the full rate.
func TestRecoveryFlattensNearTheRateThatDrewTheStrikes(t *testing.T) {
	b := newAIMDBucket(t)
	b.strike() // at the full rate: the ceiling is 1
	knee := 1 - aimdMargin
	for _, step := range []struct {
		age  time.Duration
		want float64 // scale
		why  string
	}{
		// The climb starts a strike window after the pause (d = 1 s) of a
		// cut at the full rate.
		{time.Second + strikeWindow + aimdRegain, knee, "back at the knee after aimdRegain"},
		{10 * time.Second, knee + aimdProbe*1000, "still under where it hurt 10 s later"},
		{50 * time.Second, 1, "at the full rate within a minute"},
	} {
		b.age(step.age)
		if g := b.gap(); !near(1/g, step.want) {
			t.Errorf("%s: rate scale %.4f, want %.4f", step.why, 1/g, step.want)
		}
	}
}

// TestStrikeBelowTheFullRateCutsWithoutAPause: once the rate is lowered, a
// strike near the ceiling is answered by a lower rate alone; a pause of
// every process would cost a second of calls at every probe.
func TestStrikeBelowTheFullRateCutsWithoutAPause(t *testing.T) {
	b := newAIMDBucket(t)
	ctx := context.Background()
	now := redisNow(t, b.rdb).UnixMicro()
	if err := b.rdb.HSet(ctx, b.l.keys.gcra, "scale", "0.5", "scaled", now, "ceil", "0.5").Err(); err != nil {
		t.Fatal(err)
	}
	last := grabAhead(t, b.l, 1).RedisSlot
	b.strike()
	if d, want := nextSlot(t, b.l).Sub(last), 2*b.iv; d != want {
		t.Errorf("after a strike at half the rate the next slot came %s after the last, want %s: no pause", d, want)
	}
	if g, want := b.gap(), 1/(0.5*aimdDecrease); !near(g, want) {
		t.Errorf("after a strike at half the rate slots %.3f intervals apart, want %.3f", g, want)
	}
	if st := b.l.Stats(); st.SlowDowns != 1 {
		t.Errorf("Stats() SlowDowns=%d, want 1", st.SlowDowns)
	}
}
