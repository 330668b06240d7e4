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
	// Ten seconds on, each side of the fast bound has widened by the
	// drift allowance.
	if _, w := grant(10050, 10080, 0); w < 10*time.Millisecond || w > 10400*time.Microsecond {
		t.Errorf("width 10 s after the fast grant = %s, want 0.2 ms + 2 x 10 s x 500 ppm (about 10.2 ms)", w)
	}
	// Redis's clock is stepped back a second: the bounds no longer meet,
	// and the anchor follows the new clock.
	now := local(10100.5).Add(off - time.Second)
	slot, w, _ := a.place(local(10100), local(10101), now, now)
	if late := slot.Sub(now.Add(-off + time.Second)); late < 0 || late > time.Millisecond || w > time.Millisecond+time.Microsecond {
		t.Errorf("after a step of Redis's clock: placed %s late, width %s; want within the 1 ms round trip", late, w)
	}
}
