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
//   - A strike sets the ceiling c to the scale in force and the scale to
//     max(aimdMinScale, c*aimdDecrease). At the full rate (c = 1: nothing
//     known yet, maybe a storm) it also pauses the bucket, after the slots
//     already granted, for the caller's d; below it the lower rate is the
//     whole answer.
//   - Hold: strikes before the cut took effect, that is before the pause
//     ended or, without a pause, before a second past the slots already
//     granted, answer calls sent at the old rate: they neither cut again
//     nor pause again. Without it a fleet whose lookahead holds 0.7 s of
//     slots (16 processes) cut the rate once per 60007 of that lookahead,
//     to a tenth.
//   - The scale climbs back concavely to the knee, c*(1-aimdMargin), in
//     aimdRegain: fast at first, flat near the knee. It starts at once
//     below the full rate; after a cut from the full rate, whose ceiling
//     of 1 says nothing of where the quota's edge lies, it starts a
//     second after the pause, so that a rate still too high draws its
//     strike at the lower rate and not on the way back up.
//     Then it probes above the knee convexly, aimdProbe*t³: about 30 s to
//     get back to c, where the 60007s came, and under a minute from the
//     knee of a shared quota to the full rate, should the other caller stop.
//
// With a steady outside caller the fleet thus sits just under the free
// share for most of each half-minute and draws a strike's few 60007s at
// its end. All of it lives in the schedule's hash in Redis (scale, scaled,
// ceil, hold), so every process paces with the same scale, read by the
// grant script in the same round trip: nothing is added to a call.
// Stats.Rate (recallq_limiter_rate) is the rate in force.
const (
	aimdDecrease = 0.8
	aimdMargin   = 0.03
	aimdRegain   = 4 * time.Second
	aimdProbe    = 1.5e-6 // scale per s³ above the knee
	aimdMinScale = 0.1
)

// rate is the rate in force: 1/Interval times the rate scale the last grant
// read (1 before any grant).
func (l *Limiter) rate() float64 {
	scale := 1.0
	if s := l.scale.Load(); s > 0 {
		scale = float64(s) / 1e6
	}
	return scale / l.Interval().Seconds()
}
