package limiter

import (
	"sync"
	"time"
)

// A process that is stopped (a long GC pause, CPU throttling by its cgroup,
// SIGSTOP, a VM steal) sees the answers of the calls it had out only when it
// runs again. Those calls left on time and reached Tencent on time; their
// answers look late only because nobody was there to read them. Counted as
// samples they would widen the fleet's spread, and so slow every healthy
// process down, for the window's whole length; compensated, they would push
// the schedule back for everyone. stallWatch notices such stops from the
// inside: a goroutine ticks every stallTick, and a tick that comes more than
// the late cutoff after the one before marks the gap between them as a stall.
// Observe drops a sample whose call was out during a stall, or while one is
// running (the tick that would record it has not come yet).
//
// The calls themselves need no help from here: a stopped process's permits
// come back late and Wait or Permit.Admit drops them.
const (
	// stallTick is how often the watch ticks: 100 wakeups a second, a few
	// microseconds of CPU each.
	stallTick = 10 * time.Millisecond
	// stallMemory is how many recent stalls are kept; older ones cannot
	// overlap a call still out (calls time out within seconds).
	stallMemory = 16
)

// stall is one interval, local clock, during which the process did not run.
type stall struct{ from, to time.Time }

type stallWatch struct {
	now func() time.Time

	mu     sync.Mutex
	excess time.Duration // a tick this much later than due is a stall
	last   time.Time     // the last tick
	stalls [stallMemory]stall
	next   int
}

func newStallWatch(now func() time.Time, excess time.Duration) *stallWatch {
	return &stallWatch{now: now, excess: excess, last: now()}
}

// run ticks until done is closed.
func (w *stallWatch) run(done <-chan struct{}) {
	t := time.NewTicker(stallTick)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			w.tick(w.now())
		}
	}
}

// tick records now as the latest tick, and the gap since the one before as
// a stall if it exceeds stallTick by more than the excess.
func (w *stallWatch) tick(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.last) > stallTick+w.excess {
		w.stalls[w.next] = stall{from: w.last, to: now}
		w.next = (w.next + 1) % stallMemory
	}
	w.last = now
}

// overlaps reports whether the process was stopped at some time in [from,
// to], or looks stopped now (no tick for longer than a stall).
func (w *stallWatch) overlaps(from, to time.Time) bool {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.last) > stallTick+w.excess && w.last.Before(to) {
		return true
	}
	for _, s := range w.stalls {
		if !s.to.IsZero() && s.from.Before(to) && s.to.After(from) {
			return true
		}
	}
	return false
}
