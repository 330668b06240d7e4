package limiter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/redistest"
)

// grabAhead takes n slots and abandons each as soon as it is granted, so
// the schedule's tat lies n intervals ahead, as a busy fleet's lookahead
// does. It returns the last slot granted.
func grabAhead(t *testing.T, l *Limiter, n int) Permit {
	t.Helper()
	var last Permit
	defer func() { l.afterGrant = nil }()
	for range n {
		ctx, cancel := context.WithCancel(context.Background())
		l.afterGrant = func(p Permit) { last = p; cancel() }
		// A slot due now returns at once; a later one ends in Canceled.
		if _, err := l.Wait(ctx, Urgent); err != nil && !errors.Is(err, context.Canceled) {
			cancel()
			t.Fatalf("Wait = %v, want a permit or context.Canceled after the grant", err)
		}
		cancel()
	}
	return last
}

// pauseBucket pauses l's bucket for d: two rate-limit answers within a
// second, so not an isolated one.
func pauseBucket(t *testing.T, l *Limiter, d time.Duration) {
	t.Helper()
	for range 2 {
		if err := l.SlowDown(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

// nextSlot is the slot the next grant gets, abandoned at once.
func nextSlot(t *testing.T, l *Limiter) time.Time {
	t.Helper()
	return grabAhead(t, l, 1).RedisSlot
}

func TestSlowDownStartsAfterTheSlotsAlreadyGranted(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	// Rate 10: 8 slots reach 0.84 s ahead, as the lookahead of 16 processes
	// does at 200/s.
	l := newTestLimiter(t, rdb, Config{Rate: 10})
	seed(t, rdb, l)
	last := grabAhead(t, l, 8)
	if ahead := last.RedisSlot.Sub(redisNow(t, rdb)); ahead < 500*time.Millisecond {
		t.Fatalf("the schedule is only %s ahead: the test needs a lookahead", ahead)
	}
	const pause = time.Second
	for range 2 { // not isolated
		if err := l.SlowDown(ctx, pause); err != nil {
			t.Fatal(err)
		}
	}
	// The call after the last granted one comes a whole pause after where
	// it would have been, not at Redis now + pause (inside the lookahead).
	want := last.RedisSlot.Add(slotInterval(l)).Add(pause)
	if got := nextSlot(t, l); got.Before(want) {
		t.Errorf("next slot after a %s slow-down %s after the last granted slot, want at least interval + %s",
			pause, got.Sub(last.RedisSlot), pause)
	}
}

func TestIsolatedRateLimitAnswerPausesNothing(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	l := newTestLimiter(t, rdb, Config{Rate: 10})
	seed(t, rdb, l)
	last := grabAhead(t, l, 3)
	if err := l.SlowDown(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := nextSlot(t, l), last.RedisSlot.Add(slotInterval(l)); !got.Equal(want) {
		t.Errorf("after one isolated rate-limit answer the next slot moved by %s, want it unchanged", got.Sub(want))
	}
	if st := l.Stats(); st.SlowDowns != 0 || st.IsolatedStrikes != 1 {
		t.Errorf("Stats() SlowDowns=%d IsolatedStrikes=%d, want 0 and 1", st.SlowDowns, st.IsolatedStrikes)
	}
}

func TestLostScheduleRestartsPastTheFleetsLookahead(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	// Rate 10 and a lookahead of 9 slots: the schedule lies about 0.9 s
	// ahead, beyond a Horizon of 200ms.
	l := newTestLimiter(t, rdb, Config{Rate: 10, AheadUrgent: 8, Horizon: 200 * time.Millisecond})
	seed(t, rdb, l)
	last := grabAhead(t, l, 9)
	if ahead := last.RedisSlot.Sub(redisNow(t, rdb)); ahead < 600*time.Millisecond {
		t.Fatalf("the schedule is only %s ahead: the test needs a lookahead beyond Horizon", ahead)
	}
	// The schedule is lost (FLUSHALL, failover): the slots granted before
	// still go, so the first new one must come after them.
	if err := rdb.Del(ctx, l.keys.gcra).Err(); err != nil {
		t.Fatal(err)
	}
	if got := nextSlot(t, l); got.Before(last.RedisSlot.Add(slotInterval(l))) {
		t.Errorf("after a loss the first slot lies %s after the last slot granted before it, want at least the interval %s",
			got.Sub(last.RedisSlot), slotInterval(l))
	}
	if st := l.Stats(); st.Resets != 1 || st.Horizon <= 200*time.Millisecond {
		t.Errorf("Stats() Resets=%d Horizon=%s, want 1 and more than the configured 200ms", st.Resets, st.Horizon)
	}
}
