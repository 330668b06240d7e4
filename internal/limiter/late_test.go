package limiter

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
)

// slowReplies is a go-redis hook that holds back the reply of successful
// script calls by delay: every one (a Redis a few milliseconds away, in
// another zone, or a busy one), or with first only the first one (the
// grant's answer comes late, as when the process is descheduled or stopped
// while it waits for Redis).
type slowReplies struct {
	delay time.Duration
	first bool
	done  atomic.Bool
}

func (*slowReplies) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*slowReplies) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *slowReplies) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if n := cmd.Name(); err == nil && (n == "evalsha" || n == "eval") && (!h.first || h.done.CompareAndSwap(false, true)) {
			time.Sleep(h.delay)
		}
		return err
	}
}

func TestLateGrantIsDropped(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	slow := s.Client(t)
	const delay = 300 * time.Millisecond
	l := newTestLimiter(t, slow, Config{Rate: 200})
	seed(t, rdb, l)
	<-l.spreadRead // the first script call from now on is the grant's
	slow.AddHook(&slowReplies{delay: delay, first: true})

	p, err := l.Wait(context.Background(), Urgent)
	if err != nil {
		t.Fatal(err)
	}
	// The first slot was granted at Redis now and its answer sat 300 ms in
	// the client: the call would have gone 300 ms after its slot. The
	// permit Wait returns must be a fresh one.
	if late := redisNow(t, rdb).Sub(p.RedisSlot); late > delay/2 {
		t.Errorf("Wait returned a slot %s in the past of Redis's clock: the late grant was not dropped", late)
	}
	if st := l.Stats(); st.LateDrops != 1 || st.LateGrantDrops != 1 || st.WaitRoundTrips < 2 {
		t.Errorf("Stats() LateDrops=%d LateGrantDrops=%d WaitRoundTrips=%d, want 1 drop, at the grant, and a second grant",
			st.LateDrops, st.LateGrantDrops, st.WaitRoundTrips)
	}
}

func TestAdmitDropsACallPastTheCutoff(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	l := newTestLimiter(t, rdb, Config{Rate: 200, LateCutoff: 15 * time.Millisecond})
	seed(t, rdb, l)
	p, err := l.Wait(context.Background(), Urgent)
	if err != nil {
		t.Fatal(err)
	}
	before := l.Stats() // Wait may drop a slot on a loaded machine
	drops := before.LateDrops
	if err := p.Admit(p.Slot.Add(15 * time.Millisecond)); err != nil {
		t.Errorf("Admit at the cutoff = %v, want nil", err)
	}
	if err := p.Admit(p.Slot.Add(16 * time.Millisecond)); !errors.Is(err, ErrLate) {
		t.Errorf("Admit 16ms after the slot = %v, want ErrLate (cutoff 15ms)", err)
	}
	if st := l.Stats(); st.LateDrops != drops+1 || st.LateCutoff != 15*time.Millisecond {
		t.Errorf("Stats() LateDrops=%d LateCutoff=%s, want %d and 15ms", st.LateDrops, st.LateCutoff, drops+1)
	} else if st.LateGrantDrops != before.LateGrantDrops || st.LateWakeDrops != before.LateWakeDrops {
		t.Errorf("the caller's own drop counted as Wait's: grant %d -> %d, wake-up %d -> %d",
			before.LateGrantDrops, st.LateGrantDrops, before.LateWakeDrops, st.LateWakeDrops)
	}
	foreign := Permit{Slot: p.Slot}
	if err := foreign.Admit(p.Slot.Add(time.Hour)); err != nil {
		t.Errorf("a Permit not made by a Limiter: Admit = %v, want nil", err)
	}
}

// stopSelf stops this very process for d with SIGSTOP; a child continues it.
func stopSelf(t *testing.T, d time.Duration) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("stops the process with SIGSTOP: Linux only")
	}
	cont := exec.Command("sh", "-c", "sleep "+strconv.FormatFloat(d.Seconds(), 'f', 3, 64)+"; kill -CONT "+strconv.Itoa(os.Getpid()))
	if err := cont.Start(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := cont.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestStalledProcessLeavesTheFleetAlone(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	l := newTestLimiter(t, rdb, Config{Rate: 1})
	seed(t, rdb, l)
	// A healthy envelope: answers 10-40 ms after their slots.
	now := time.Now()
	for i := range 1000 {
		lo := 10*time.Millisecond + time.Duration(i)*30*time.Microsecond
		l.window.add(sample{at: now, lo: lo, hi: lo})
	}
	if err := l.publishSpread(ctx); err != nil {
		t.Fatal(err)
	}
	spread := l.Stats().Spread

	p, err := l.Wait(ctx, Urgent)
	if err != nil {
		t.Fatal(err)
	}
	tat0, err := rdb.HGet(ctx, l.keys.gcra, "tat").Int64()
	if err != nil {
		t.Fatal(err)
	}
	// The call went out at its slot; then the process was stopped for
	// 400 ms, and read the answer when it ran again.
	stopSelf(t, 400*time.Millisecond)
	l.Observe(p, time.Now())
	l.bg.Wait()

	if tat, _ := rdb.HGet(ctx, l.keys.gcra, "tat").Int64(); tat != tat0 {
		t.Errorf("the stalled process's answer pushed the shared schedule back by %dµs", tat-tat0)
	}
	if err := l.publishSpread(ctx); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Spread != spread || st.StalledSamples != 1 || st.Compensations != 0 {
		t.Errorf("after a stall: spread %s (was %s), %d stalled samples, %d compensations; want the spread unchanged, 1 and 0",
			st.Spread, spread, st.StalledSamples, st.Compensations)
	}
}

func TestStallWatchMarksGapsBetweenTicks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	now := t0
	w := newStallWatch(func() time.Time { return now }, 20*time.Millisecond)
	for i := 1; i <= 5; i++ {
		now = t0.Add(time.Duration(i) * stallTick)
		w.tick(now)
	}
	if w.overlaps(t0, now) {
		t.Error("regular ticks marked as a stall")
	}
	stopped := now
	now = now.Add(300 * time.Millisecond)
	if !w.overlaps(stopped.Add(-time.Millisecond), now) {
		t.Error("no tick for 300 ms: overlaps = false while the stall runs, want true")
	}
	w.tick(now)
	if !w.overlaps(stopped.Add(-50*time.Millisecond), stopped.Add(time.Millisecond)) {
		t.Error("a call out across the stall's start is not marked")
	}
	if w.overlaps(t0, stopped.Add(-time.Millisecond)) || w.overlaps(now.Add(time.Millisecond), now.Add(time.Second)) {
		t.Error("calls before or after the stall are marked")
	}
}

// ignoreStalls makes l's stall watch see no stall: for tests about late
// answers, which a hiccup of a loaded machine would otherwise hide.
func ignoreStalls(l *Limiter) {
	l.stalls.mu.Lock()
	l.stalls.excess = 365 * 24 * time.Hour
	l.stalls.stalls = [stallMemory]stall{} // and forget any seen already
	l.stalls.mu.Unlock()
}

// A grant on an idle schedule is for Redis's now; when Redis answers in
// more than the lateness cutoff, that slot is past the cutoff on arrival
// and dropped, and so is the next one, for ever: a worker whose Redis is
// 10 ms away never called at all. The grant must ask for a slot far enough
// ahead that its answer comes before it.
func TestGrantsOnAnIdleScheduleOutrunTheirRoundTrip(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	slow := s.Client(t)
	slow.AddHook(&slowReplies{delay: 10 * time.Millisecond})
	l := newTestLimiter(t, slow, Config{Rate: 200})
	ignoreStalls(l)
	seed(t, rdb, l)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 5 {
		// Idle between calls: the schedule falls back to Redis's now.
		time.Sleep(50 * time.Millisecond)
		p, err := l.Wait(ctx, Urgent)
		if err != nil {
			t.Fatalf("Wait %d on an idle schedule, Redis answering in 10 ms: %v (late drops %d)", i, err, l.Stats().LateDrops)
		}
		if err := p.Admit(time.Now()); err != nil {
			t.Fatalf("Wait %d returned a permit already past the cutoff: %v", i, err)
		}
	}
	// The first grant may be dropped while the round trip is unknown, and
	// one more on a loaded machine, whose scheduling adds to the 10 ms (the
	// full suite under -race once answered two grants 10.4 and 13 ms late).
	// Before the fix every grant was dropped, and no Wait returned.
	if st := l.Stats(); st.LateGrantDrops > 2 {
		t.Errorf("%d grants dropped as late, want at most the first and one more", st.LateGrantDrops)
	}
}

// TestLatenessBeforeTheSendDoesNotWidenTheSpread: calls that go up to the
// cutoff after their slots (woken late) and then take exactly 21 ms. The
// pacing already leaves the cutoff's room for that lateness (pacing.go);
// counting it in the spread as well paid for it twice: the spread is the
// network's, measured from the send Admit let go.
func TestLatenessBeforeTheSendDoesNotWidenTheSpread(t *testing.T) {
	s := redistest.Start(t)
	l := newTestLimiter(t, s.Client(t), Config{})
	cutoff := l.cfg.LateCutoff
	base := time.Now()
	for i := range 600 {
		p := Permit{Slot: base.Add(time.Duration(i) * 5 * time.Millisecond), RedisSlot: base, lim: l}
		sent := p.Slot.Add(time.Duration(i%6) * cutoff / 5) // 0 to the cutoff late
		if err := p.Admit(sent); err != nil {
			t.Fatalf("call %d, %s late: %v", i, sent.Sub(p.Slot), err)
		}
		l.Observe(p, sent.Add(21*time.Millisecond))
	}
	j, ok := l.window.spread(time.Now())
	if !ok {
		t.Fatal("no spread from 600 samples")
	}
	if j > cutoff/5 {
		t.Fatalf("spread %s from calls that all took 21 ms but went 0-%s after their slots: the lateness is counted in the spread as well as in the cutoff's room", j, cutoff)
	}
}
