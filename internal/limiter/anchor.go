package limiter

import (
	"sync"
	"time"
)

// Placing a slot on the local clock.
//
// Redis grants a slot in its own clock and answers with its now beside it.
// The instant Redis read its clock lies somewhere in the grant's round trip,
// [sent, recv] of the local clock, so each grant bounds the offset θ =
// local - Redis to [sent - now, recv - now]. Placing a slot from its own
// grant alone (recv + slot - now) puts it late by up to that grant's round
// trip: a reply that sat in a socket or waited for a CPU sent its call
// that much after its slot, and the spread the fleet is paced for had to
// hold it. The anchor intersects the bounds of the grants of the last
// anchorMemory instead: the offset is known to within the fastest round
// trip lately, whatever this grant's was.
//
// The two clocks move apart. Redis reads its wall clock; the local one is
// monotonic. Both are disciplined, but a wall clock that NTP pulls back
// into line is slewed: ntpd at up to 500 ppm, chrony faster, a restored
// VM's clock by several ms a second. So:
//
//   - a bound widens by anchorDrift per second of its age, and the anchor
//     forgets bounds older than anchorMemory, so a slew faster than
//     anchorDrift costs at most its rate times anchorMemory;
//   - a bound the new grant's does not meet has been slewed past: it is
//     dropped, the new grant kept;
//   - the new grant shows a step forward only when its upper bound lies
//     below an older lower bound by more than anchorSlew per second of the
//     time between the two. A slew up to anchorSlew is never a step; a step
//     is seen against the grants just before it.
//
// Before this memory, the anchor intersected every grant since its last
// restart at 500 ppm: a restored VM's clock slewing at about 2000 ppm
// showed as a jump of 8-9 ms on grants seconds apart, and each restarted
// the schedule one horizon ahead.
const (
	anchorDrift  = 500e-6
	anchorSlew   = 0.02
	anchorMemory = time.Second
	// anchorMax bounds the grants kept (anchorMemory of them at 200/s).
	anchorMax = 256
)

// offsetBound is one grant's bounds on the offset local - Redis, measured
// over [s, r] of the local clock (ns after the anchor's base).
type offsetBound struct{ s, r, lo, hi int64 }

// widened returns b's bounds at local time t, widened for the drift since.
func (b offsetBound) widened(t int64) (lo, hi int64) {
	d := int64(anchorDrift * float64(t-b.s))
	return b.lo - d, b.hi + d
}

// clockAnchor holds the offset bounds of recent grants.
type clockAnchor struct {
	mu     sync.Mutex
	base   time.Time
	bounds []offsetBound // oldest first, each meeting the others
}

func newClockAnchor(base time.Time) *clockAnchor { return &clockAnchor{base: base} }

// place folds in one grant (sent and recv on the local clock, redisNow on
// Redis's) and returns the local time of the Redis instant slot, on the
// late side of what is known, and how much earlier it may truly lie. When
// the grant shows that Redis's clock jumped forward (the offset local -
// Redis fell faster than a slew), forward is at least how far; otherwise 0.
func (a *clockAnchor) place(sent, recv, redisNow, slot time.Time) (at time.Time, uncertain, forward time.Duration) {
	s, r := int64(sent.Sub(a.base)), int64(recv.Sub(a.base))
	n := redisNow.UnixNano()
	g := offsetBound{s: s, r: r, lo: s - n, hi: r - n}
	a.mu.Lock()
	defer a.mu.Unlock()
	kept := a.bounds[:0]
	for _, b := range a.bounds {
		if r-b.r > int64(anchorMemory) {
			continue // forgotten
		}
		if gap := b.lo - int64(anchorSlew*float64(r-b.s)) - g.hi; gap > int64(forward) {
			forward = time.Duration(gap)
		}
		if lo, hi := b.widened(r); lo <= g.hi && g.lo <= hi {
			kept = append(kept, b)
		} // else slewed past, or stepped: this grant's bounds hold
	}
	if forward > 0 {
		kept = kept[:0] // a step: start again from this grant
	}
	if len(kept) == anchorMax {
		kept = append(kept[:0], kept[1:]...)
	}
	a.bounds = append(kept, g)
	low, up := g.lo, g.hi
	for _, b := range a.bounds {
		lo, hi := b.widened(r)
		low, up = max(low, lo), min(up, hi)
	}
	return a.base.Add(time.Duration(slot.UnixNano() + up)), time.Duration(max(up-low, 0)), forward
}

// shift moves every bound by d, as a step of Redis's clock by -d shows
// (tests).
func (a *clockAnchor) shift(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.bounds {
		a.bounds[i].lo += int64(d)
		a.bounds[i].hi += int64(d)
	}
}
