package limiter

import "time"

// Adapting to a quota shared with callers outside recallq.
//
// Tencent's 200 calls/s are per app: another service of the same app
// calling admin_msgwithdraw takes its share from the same second, and the
// fleet, paced just under the cap, then draws 60007s. An isolated one costs
// a re-call. Rate-limit answers that keep coming (two within a second in
// the fleet: a strike, see SlowDown) lower the bucket's rate scale, the
// factor on the paced rate, and remember where it hurt, as TCP CUBIC
// remembers w_max:
//
//   - A strike sets the ceiling c to the rate that got through, as BBR
//     estimates its delivery rate, and the scale to c*(1-aimdMargin): one
//     step to just under the free share. Tencent refuses a call when its
//     sliding second already holds the cap, so at that moment the fleet's
//     calls it took in that second are exactly the share left to recallq.
//     The bucket counts, fleet-wide and in the scripts the calls already
//     make (flowLua: no round trip is added), the slots granted per 20 ms of
//     slot time and the 60007s per 20 ms of report time; at a strike D =
//     slots granted in the second before the refused call's slot (the slot
//     Observe saw last; without one now - answerLag) minus the 60007s
//     reported in the second before now, and c = D times the full-rate
//     interval, at most the scale in force and at least aimdDeepest of it
//     (one strike at most halves the rate, whatever the counts say). With
//     fewer than aimdLeastGrants slots counted (no flow yet) c is the scale
//     in force and the scale c*aimdDecrease, as TCP's multiplicative
//     decrease. A slot dropped as late is taken off the count by its
//     process's next grant (noteDrop); the estimate still errs high by the
//     slots of canceled waits and by the 60007s on their way, and either
//     way by the jitter of the calls at the window's edge: the margin is
//     for those. Before this, the first cut went from the full
//     rate (190/s) to 0.8 of it, still above a free share of 150/s, which
//     drew a second strike and a cut to about 121/s, then 4 s of regain. At
//     the full rate (nothing known yet, maybe a storm) a strike also pauses
//     the bucket, after the slots already granted: for the caller's d
//     without an estimate; with one only until the old rate's calls can no
//     longer crowd a sliding second with the new rate's, (c_old/c_new - 1)
//     of a second (0.31 s from 190/s to 145/s), at most d. Below the full
//     rate the lower rate is the whole answer.
//   - Hold: strikes before the cut took effect, that is before the pause
//     ended and a second past the slots already granted, answer calls sent
//     at the old rate: they neither cut again nor pause again. Without it a
//     fleet whose lookahead holds 0.7 s of slots (16 processes) cut the rate
//     once per 60007 of that lookahead, to a tenth.
//   - After a blind cut (no estimate) the scale climbs back concavely to the
//     knee, c*(1-aimdMargin), in aimdRegain: fast at first, flat near the
//     knee; a cut to what got through lands on the knee at once. It starts
//     at once below the full rate; after a cut from the full rate, whose
//     ceiling of 1 says nothing of where the quota's edge lies, it starts a
//     second after the pause, so that a rate still too high draws its strike
//     at the lower rate and not on the way back up. Then it probes above the
//     knee convexly, aimdProbe*t³: about 30 s to get back to c, where the
//     60007s came, and under a minute from the knee of a shared quota to the
//     full rate, should the other caller stop.
//
// With a steady outside caller the fleet thus sits just under the free
// share for most of each half-minute and draws a strike's few 60007s at
// its end. All of it lives in Redis, the schedule's hash (scale, scaled,
// ceil, hold) and the flow hash, so every process paces with the same
// scale, read and counted by the grant script in the same round trip:
// nothing is added to a call.
// Stats.Rate (recallq_limiter_rate) is the rate in force.
const (
	aimdDecrease    = 0.8
	aimdMargin      = 0.03
	aimdRegain      = 4 * time.Second
	aimdProbe       = 1.5e-6 // scale per s³ above the knee
	aimdMinScale    = 0.1
	aimdDeepest     = 0.5
	aimdLeastGrants = 5
)

// answerLag is how long after its slot a call's answer typically comes,
// the middle of the fleet's envelope: its p0.5 of send-to-answer times
// plus half the spread J, or InitialSpread before any is known. A 60007
// reported now answers a call whose slot lay about that long ago, so the
// grants that shared its sliding second at Tencent are those of the second
// before now - answerLag.
func (l *Limiter) answerLag() time.Duration {
	if bound := time.Duration(l.lateBound.Load()); bound > 0 {
		return max(0, bound-time.Duration(l.spreadNS.Load())/2)
	}
	return l.cfg.InitialSpread
}

// rate is the rate in force: 1/Interval times the rate scale the last grant
// read (1 before any grant).
func (l *Limiter) rate() float64 {
	scale := 1.0
	if s := l.scale.Load(); s > 0 {
		scale = float64(s) / 1e6
	}
	return scale / l.Interval().Seconds()
}
