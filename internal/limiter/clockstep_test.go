package limiter

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
)

// redis-server's TIME is its wall clock, which a test cannot step. The grant
// script sees only Redis's now and the stored fields, so these tests put the
// stored schedule where a step of Redis's clock leaves it: a step back by S
// leaves every stored time S further ahead of now.

// shiftSchedule moves the bucket's stored times by d, as a step of Redis's
// clock by -d would leave them.
func shiftSchedule(t *testing.T, rdb *redis.Client, l *Limiter, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	for _, f := range []string{"tat", "pause", "rnow", "scaled", "hold", "strike"} {
		v, err := rdb.HGet(ctx, l.keys.gcra, f).Int64()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, l.keys.gcra, f, v+d.Microseconds()).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// firstGrant waits for one permit (at most 2 s) and returns the grant Wait
// got first, kept or not.
func firstGrant(t *testing.T, l *Limiter) Permit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var first Permit
	l.afterGrant = func(p Permit) {
		if first.Slot.IsZero() {
			first = p
		}
	}
	defer func() { l.afterGrant = nil }()
	_, err := l.Wait(ctx, Urgent)
	if first.Slot.IsZero() {
		t.Fatalf("no grant: %v", err)
	}
	return first
}

// TestRedisClockStepBackDoesNotStallTheFleet: Redis's clock stepped back an
// hour (or a new primary's runs behind): the stored schedule lies an hour
// ahead of now, and every grant queued behind it, the whole fleet asleep
// for the hour. The schedule is restarted one horizon ahead instead.
func TestRedisClockStepBackDoesNotStallTheFleet(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	l := newTestLimiter(t, rdb, Config{})
	seed(t, rdb, l)
	grabAhead(t, l, 1)
	shiftSchedule(t, rdb, l, time.Hour)
	p := firstGrant(t, l)
	if ahead := p.RedisSlot.Sub(p.redisNow); ahead > l.cfg.Horizon+time.Second {
		t.Errorf("after Redis's clock stepped back an hour the next slot lies %s ahead of Redis's now (resets %d): the fleet sleeps until then",
			ahead.Round(time.Second), l.Stats().Resets)
	}
	if l.Stats().Resets != 1 {
		t.Errorf("resets = %d, want the step to restart the schedule", l.Stats().Resets)
	}
}

// TestAForeignScheduleIsNotKept: a schedule written by another server
// (failover, restore) is in that server's clock; one 10 minutes ahead of
// this one's must not hold the fleet for 10 minutes.
func TestAForeignScheduleIsNotKept(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	const horizon = 200 * time.Millisecond
	l := newTestLimiter(t, rdb, Config{Horizon: horizon})
	ahead := redisNow(t, rdb).Add(10 * time.Minute).UnixMicro()
	if err := rdb.HSet(context.Background(), l.keys.gcra, "tat", ahead, "pause", ahead, "srv", "0123456789abcdef").Err(); err != nil {
		t.Fatal(err)
	}
	p := firstGrant(t, l)
	if got := p.RedisSlot.Sub(p.redisNow); got > horizon+time.Second {
		t.Errorf("the first slot after a foreign schedule lies %s ahead of Redis's now, want about the horizon %s", got.Round(time.Second), horizon)
	}
}

// TestRedisClockStepForwardRestartsTheSchedule: Redis's clock stepped
// forward (an NTP step, a VM resumed): the stored schedule lies behind
// now, so the next grant starts a new schedule at now, on top of the slots
// the fleet already holds ahead in the old clock. The script cannot tell
// that from an idle bucket; the process's clock anchor can (the grant's
// bounds on Redis's clock do not meet the recent ones), and the schedule
// restarts one horizon ahead, the grant that showed it dropped.
func TestRedisClockStepForwardRestartsTheSchedule(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	l := newTestLimiter(t, rdb, Config{})
	seed(t, rdb, l)
	grabAhead(t, l, 1)
	// As a step of S forward shows to the anchor: Redis's now S later
	// than the local clock says; and the schedule S behind now.
	const step = 300 * time.Millisecond
	l.anchor.shift(step)
	shiftSchedule(t, rdb, l, -step)
	p := firstGrant(t, l)
	if got := p.RedisSlot.Sub(p.redisNow); got < l.cfg.Horizon || l.Stats().Resets != 1 {
		t.Errorf("after Redis's clock stepped forward %s the slot lies %s after Redis's now (resets %d): want the schedule restarted one horizon (%s) ahead",
			step, got, l.Stats().Resets, l.cfg.Horizon)
	}
}

// TestANewProcessPacesAsTheFleetFromItsFirstGrant: a process that starts
// while the fleet paces from a measured dispersion must not grant at its
// InitialSpread interval until its first publish (a second later): on a
// heavy-tailed network that is 7% faster than the fleet, after every pod
// start.
func TestANewProcessPacesAsTheFleetFromItsFirstGrant(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	a := newTestLimiter(t, s.Client(t), Config{})
	paceFrom(t, a, lognormalLatency(80, 600))
	b := newTestLimiter(t, s.Client(t), Config{})
	seed(t, rdb, b)
	p1 := grabAhead(t, b, 1)
	p2 := grabAhead(t, b, 1)
	if got, fleet := p2.RedisSlot.Sub(p1.RedisSlot), slotInterval(a); got < fleet {
		t.Errorf("a new process spaces its grants %s apart (%.1f/s) while the fleet paces at %s (%.1f/s)",
			got, 1/got.Seconds(), fleet, 1/fleet.Seconds())
	}
}

// TestAPauseBeforeTheFirstGrantHolds: a slow-down on a bucket that has no
// schedule yet (first use, after FLUSHALL) writes a pause in this server's
// clock; the grant that restarts the schedule must keep it, not only the
// horizon (the restart after a clock step drops stored times; this one
// must not).
func TestAPauseBeforeTheFirstGrantHolds(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	l := newTestLimiter(t, rdb, Config{Horizon: 100 * time.Millisecond})
	ctx := context.Background()
	const pause = 3 * time.Second
	for range 2 { // one answer alone is isolated and pauses nothing
		if err := l.SlowDown(ctx, pause); err != nil {
			t.Fatal(err)
		}
	}
	p := firstGrant(t, l)
	if got := p.RedisSlot.Sub(p.redisNow); got < 2*time.Second {
		t.Errorf("the first slot after a slow-down of %s lies %s after Redis's now: the pause was dropped", pause, got)
	}
}

// TestASlewingRedisClockDoesNotRestartTheSchedule: Redis's clock, against
// this process's, runs 4000 ppm fast (its wall clock slewed back into line
// after a VM restore) and this process asks for a slot every 2 s. Each
// grant then finds Redis's clock 8 ms further on than the last grant's
// bounds allow at 500 ppm; read as a step, each restarted the schedule one
// horizon ahead and raised the horizon by a quarter, and a task with a
// 1 s deadline never got a slot.
func TestASlewingRedisClockDoesNotRestartTheSchedule(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	start := time.Now()
	slow := func() time.Time { // the local clock, 4000 ppm behind Redis's
		e := time.Since(start)
		return start.Add(e - e/250)
	}
	l := newTestLimiter(t, rdb, Config{Now: slow})
	seed(t, rdb, l)
	grabAhead(t, l, 1)
	resets := l.Stats().Resets
	for range 3 {
		time.Sleep(2 * time.Second)
		grabAhead(t, l, 1)
	}
	if got := l.Stats().Resets - resets; got != 0 {
		t.Errorf("a clock slewing at 4000 ppm restarted the schedule %d times (horizon now %s), want none", got, l.horizon())
	}
}
