package limiter

// Adapting to a quota shared with callers outside recallq.
//
// Tencent's 200 calls/s are per app: another service of the same app
// calling admin_msgwithdraw takes its share from the same second, and the
// fleet, paced just under the cap, then draws 60007s. An isolated one costs
// a re-call; rate-limit answers that keep coming (two within a second in
// the fleet: a strike that pauses, see SlowDown) also lower the bucket's
// rate scale multiplicatively, scale = max(aimdMinScale, scale*aimdDecrease),
// and the scale recovers additively, aimdRecover per second, back to 1:
// the rate goes back toward RECALL_RATE by 2% of it a second, and down by a
// fifth whenever 60007s keep coming. Both live in the schedule's hash in
// Redis (scale, scaled), so every process paces with the same scale, read
// by the grant script in the same round trip: nothing is added to a call.
// Stats.Rate (recallq_limiter_rate) is the rate in force.
const (
	aimdDecrease = 0.8
	aimdRecover  = 0.02
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
