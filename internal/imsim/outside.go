package imsim

import (
	"fmt"
	"math"
	"time"
)

// A steady outside load: another service of the same app calling
// admin_msgwithdraw, so that recallq shares Tencent's 200 calls a second
// with it (Config.OutsideRate, Sim.SetOutsideRate, POST /sim/outside).
//
// The outside caller makes one call every 1/rate seconds, evenly spaced
// from when the rate was set (or the statistics were reset): at 50/s one
// every 20 ms. Its calls are counted by the same sliding window as the
// server's own requests, at their own times; one the window refuses is
// answered 60007 to the outside caller and, like every refused call, does
// not count toward the cap. They need no goroutine: the calls due are
// counted, in order, before each arrival and each reading of the Stats.
// The outside caller does not slow down when refused (a service that does
// is kinder than this one). At a rate whose period divides the window (50/s:
// 20 ms), each outside call finds free the place its predecessor of a
// window before left, so refusals fall on the server's own callers: the
// hard case for recallq.

// MaxOutsideRate bounds Config.OutsideRate and SetOutsideRate.
const MaxOutsideRate = 100_000

// outside is the outside caller's schedule and counts, guarded by the
// meter's mutex.
type outside struct {
	every    time.Duration // between two calls; 0: no outside load
	next     time.Duration // offset from the meter's start of the next call
	calls    int64
	rejected int64
}

// restart starts the schedule at offset at and clears the counts; the rate
// stays.
func (o *outside) restart(at time.Duration) {
	o.next = at
	o.calls, o.rejected = 0, 0
}

// catchUp counts in m every outside call due at or before off.
func (o *outside) catchUp(m *meter, off time.Duration) {
	for o.every > 0 && o.next <= off {
		o.calls++
		if !m.count(o.next) {
			o.rejected++
		}
		o.next += o.every
	}
}

func (o *outside) fill(st *Stats) {
	if o.every > 0 {
		st.OutsideRate = float64(time.Second) / float64(o.every)
	}
	st.OutsideCalls = o.calls
	st.OutsideRejected60007 = o.rejected
}

// validateOutsideRate says what is wrong with an outside rate, if anything.
func validateOutsideRate(rate float64) error {
	if !(rate >= 0) || math.IsInf(rate, 0) || rate > MaxOutsideRate {
		return fmt.Errorf("outside rate %v: give calls per second, 0 (none) to %d", rate, MaxOutsideRate)
	}
	return nil
}

// setOutside makes the outside load rate calls per second from now on:
// the first call is due at now. 0 stops it. The counts so far stay.
func (m *meter) setOutside(rate float64, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	off := max(now.Sub(m.start), m.last, 0)
	m.outside.catchUp(m, off) // the calls due at the old rate
	m.outside.every = 0
	if rate > 0 {
		m.outside.every = max(time.Duration(float64(time.Second)/rate), 1)
	}
	m.outside.next = off
}

// SetOutsideRate sets the steady outside load, in calls per second, from
// now on (0 stops it); Reset goes back to Config.OutsideRate. It returns an
// error, changing nothing, for a rate that is negative, not a number or
// above MaxOutsideRate.
func (s *Sim) SetOutsideRate(rate float64) error {
	if err := validateOutsideRate(rate); err != nil {
		return err
	}
	s.meter.setOutside(rate, s.cfg.Now())
	return nil
}

// OutsideRate returns the outside load in force, calls per second.
func (s *Sim) OutsideRate() float64 {
	var st Stats
	s.meter.mu.Lock()
	s.meter.outside.fill(&st)
	s.meter.mu.Unlock()
	return st.OutsideRate
}
