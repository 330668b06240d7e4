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
// hold it. The anchor intersects the bounds of recent grants instead: the
// offset is known to within the fastest round trip lately, whatever this
// grant's was.
//
// The two clocks may drift apart (Redis reads the wall clock, which NTP
// slews by up to 500 ppm; the local one is monotonic), so a bound widens
// by anchorDrift per second of its age. A grant whose bounds do not meet
// the anchor's (Redis's clock was stepped, a failover to a server with
// another clock) restarts the anchor from that grant alone.
const anchorDrift = 500e-6

// clockAnchor holds the intersection of the offset bounds of recent grants.
// Offsets and times are ns; local times are ns after base.
type clockAnchor struct {
	mu   sync.Mutex
	base time.Time
	set  bool
	// hiC and loC: the upper bound at local time t is hiC + drift(t), the
	// lower bound loC - drift(t), so each grant's bounds, widening from
	// its send, fold into one constant each (min for hi, max for lo).
	hiC, loC int64
}

func newClockAnchor(base time.Time) *clockAnchor { return &clockAnchor{base: base} }

// drift is how far the clocks may drift apart in t ns.
func drift(t int64) int64 { return int64(anchorDrift * float64(t)) }

// place folds in one grant (sent and recv on the local clock, redisNow on
// Redis's) and returns the local time of the Redis instant slot, on the
// late side of what is known, and how much earlier it may truly lie. When
// the grant's bounds do not meet the anchor's because Redis's clock jumped
// forward (the offset local - Redis fell), forward is at least how far;
// otherwise 0.
func (a *clockAnchor) place(sent, recv, redisNow, slot time.Time) (at time.Time, uncertain, forward time.Duration) {
	s, r := int64(sent.Sub(a.base)), int64(recv.Sub(a.base))
	n := redisNow.UnixNano()
	hiC, loC := r-n-drift(s), s-n+drift(s) // this grant's bounds on the offset
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.set || hiC < a.loC-2*drift(r) || loC > a.hiC+2*drift(r) {
		// The first grant, or bounds that do not meet the anchor's:
		// Redis's clock moved. Start again from this grant.
		if a.set && hiC < a.loC-2*drift(r) {
			forward = time.Duration(a.loC - 2*drift(r) - hiC)
		}
		a.hiC, a.loC, a.set = hiC, loC, true
	} else {
		a.hiC, a.loC = min(a.hiC, hiC), max(a.loC, loC)
	}
	up, low := a.hiC+drift(r), a.loC-drift(r)
	return a.base.Add(time.Duration(slot.UnixNano() + up)), time.Duration(max(up-low, 0)), forward
}
