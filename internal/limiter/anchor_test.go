package limiter

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
)

// slowNth holds back the reply of the nth script call by delay: one grant
// whose answer sat in a socket or whose goroutine waited for a CPU.
type slowNth struct {
	n     int64
	delay time.Duration
	seen  atomic.Int64
}

func (*slowNth) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*slowNth) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *slowNth) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if n := cmd.Name(); err == nil && (n == "evalsha" || n == "eval") && h.seen.Add(1) == h.n {
			time.Sleep(h.delay)
		}
		return err
	}
}

// TestASlowGrantAnswerDoesNotMoveItsSlot: a grant whose answer came 30 ms
// late, for a slot still well ahead, is placed where Redis's schedule has
// it, as the grants answered at once are. Placing it from its own arrival
// ("in slot-now after I read it") sent that call 30 ms after its slot, and
// so a few calls a second on a busy machine: jitter the pacing had to pay
// for across the fleet.
func TestASlowGrantAnswerDoesNotMoveItsSlot(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	slow := s.Client(t)
	const delay = 30 * time.Millisecond
	slow.AddHook(&slowNth{n: 12, delay: delay})
	l := newTestLimiter(t, slow, Config{Rate: 40}) // 25 ms apart: four waiters hold slots 100 ms ahead
	ignoreStalls(l)
	seed(t, rdb, l)

	var mu sync.Mutex
	var offs []time.Duration // Slot - RedisSlot on the wall clock both share here
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 6 {
				p, err := l.Wait(context.Background(), Urgent)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				offs = append(offs, time.Duration(p.Slot.UnixNano()-p.RedisSlot.UnixNano()))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(offs)
	med := offs[len(offs)/2]
	if worst := offs[len(offs)-1] - med; worst > delay/3 {
		t.Errorf("a permit's slot lies %s later against Redis's schedule than the median one (offsets %v): the slow answer moved its slot", worst, offs)
	}
}

// TestClockAnchor: the anchor knows the offset to within the fastest
// recent round trip, widens it as the clocks may drift, and starts again
// when Redis's clock is stepped.
func TestClockAnchor(t *testing.T) {
	base := time.Unix(1000, 0)
	a := newClockAnchor(base)
	local := func(ms float64) time.Time { return base.Add(time.Duration(ms * float64(time.Millisecond))) }
	// Redis's clock reads local + 1 h, read mid-way through each round trip.
	const off = time.Hour
	grant := func(sent, recv float64, lead time.Duration) (time.Duration, time.Duration) {
		now := local((sent + recv) / 2).Add(off)
		slot, w, _ := a.place(local(sent), local(recv), now, now.Add(lead))
		return slot.Sub(now.Add(lead).Add(-off)), w // how late the slot is placed
	}
	near := func(d, want time.Duration) bool { return d >= want && d <= want+20*time.Microsecond }
	if late, w := grant(0, 4, 0); !near(late, 2*time.Millisecond) || !near(w, 4*time.Millisecond) {
		t.Errorf("first grant, 4 ms round trip: placed %s late, width %s; want 2 ms, 4 ms", late, w)
	}
	if late, w := grant(10, 10.2, 0); late > 200*time.Microsecond || w > 300*time.Microsecond {
		t.Errorf("a 0.2 ms round trip: placed %s late, width %s; want both about 0.2 ms", late, w)
	}
	// A slow answer (30 ms) a moment later is placed by the fast one.
	if late, w := grant(20, 50, 100*time.Millisecond); late > 300*time.Microsecond || w > 300*time.Microsecond {
		t.Errorf("a 30 ms round trip after a fast one: placed %s late, width %s; want about 0.2 ms", late, w)
	}
	// Most of a second on, each side of the fast bound has widened by
	// the drift allowance.
	if _, w := grant(900, 930, 0); w < 1000*time.Microsecond || w > 1150*time.Microsecond {
		t.Errorf("width 0.9 s after the fast grant = %s, want 0.2 ms + 2 x 0.92 s x 500 ppm (about 1.12 ms)", w)
	}
	// Ten seconds on, the fast bound is forgotten (a slewing clock has
	// moved past it): the width is the grants' of the last second.
	if _, w := grant(10050, 10080, 0); w != 30*time.Millisecond {
		t.Errorf("width 10 s after the fast grant = %s, want the 30 ms round trip of the only grant in the last second", w)
	}
	// Redis's clock is stepped back a second: the bounds no longer meet,
	// and the anchor follows the new clock.
	now := local(10100.5).Add(off - time.Second)
	slot, w, _ := a.place(local(10100), local(10101), now, now)
	if late := slot.Sub(now.Add(-off + time.Second)); late < 0 || late > time.Millisecond || w > time.Millisecond+time.Microsecond {
		t.Errorf("after a step of Redis's clock: placed %s late, width %s; want within the 1 ms round trip", late, w)
	}
}

// TestASlewingClockIsNoStep: NTP slews a wall clock back into line (chrony
// as fast as it likes, a restored VM's clock by several ms a second), and
// Redis's TIME reads the wall clock. Seen against the local monotonic
// clock, Redis's then runs a few thousand ppm fast or slow. That is not a
// step: the anchor must not report a jump, or the schedule restarts one
// horizon ahead again and again (seen after this VM was restored: 30
// restarts in one test, grants seconds apart, each "jump" 8-9 ms).
func TestASlewingClockIsNoStep(t *testing.T) {
	for _, c := range []struct {
		name  string
		ppm   float64
		every time.Duration
	}{
		{"2000 ppm fast, grants 3 s apart", 2000, 3 * time.Second},
		{"2000 ppm fast, grants 20 ms apart", 2000, 20 * time.Millisecond},
		{"5000 ppm slow, grants 3 s apart", -5000, 3 * time.Second},
		{"10000 ppm fast, grants 5 ms apart", 10000, 5 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := time.Unix(1000, 0)
			a := newClockAnchor(base)
			redis := func(local time.Duration) time.Time { // Redis's clock at a local time
				return base.Add(time.Hour + local + time.Duration(c.ppm*1e-6*float64(local)))
			}
			const rtt = 300 * time.Microsecond
			var worstEarly, worstLate time.Duration
			for at := time.Duration(0); at < 60*time.Second; at += c.every {
				now := redis(at + rtt/2)
				slotLocal := at + 50*time.Millisecond
				placed, _, forward := a.place(base.Add(at), base.Add(at+rtt), now, redis(slotLocal))
				if forward > 0 {
					t.Fatalf("at %s: the anchor reports Redis's clock jumped %s forward; it only slews", at, forward)
				}
				off := placed.Sub(base.Add(slotLocal)) // > 0: placed late
				worstLate, worstEarly = max(worstLate, off), min(worstEarly, off)
			}
			// A slot is placed on the late side, by at most about the
			// round trip plus what the clock slewed in the anchor's memory.
			if worstLate > 2*time.Millisecond || worstEarly < -time.Millisecond {
				t.Errorf("slots placed from %s early to %s late, want within about the %s round trip", -worstEarly, worstLate, rtt)
			}
		})
	}
}

// TestAStepIsSeenBetweenCloseGrants: a step forward of Redis's clock by 20
// ms between grants 50 ms apart is a step, whatever the clock slewed before.
func TestAStepIsSeenBetweenCloseGrants(t *testing.T) {
	base := time.Unix(1000, 0)
	a := newClockAnchor(base)
	step := time.Duration(0)
	const rtt = 300 * time.Microsecond
	var seen time.Duration
	for at := time.Duration(0); at < 2*time.Second; at += 50 * time.Millisecond {
		if at == time.Second {
			step = 20 * time.Millisecond
		}
		now := base.Add(time.Hour + at + rtt/2 + step + time.Duration(2000e-6*float64(at)))
		_, _, forward := a.place(base.Add(at), base.Add(at+rtt), now, now)
		if at < time.Second && forward > 0 {
			t.Fatalf("at %s, before the step: forward %s", at, forward)
		}
		if at == time.Second {
			seen = forward
		}
	}
	if seen < 15*time.Millisecond || seen > 20*time.Millisecond {
		t.Errorf("a 20 ms step forward reported as %s, want about 20 ms less the slew the anchor allows for 50 ms", seen)
	}
}
