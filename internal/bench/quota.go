package bench

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/recallq/recallq/internal/imsim"
)

// The shared-quota profile (Options.OutsideRate): the simulator counts a
// steady outside load toward its cap, as another service of the same app
// calling admin_msgwithdraw would, and the limiters, configured with the
// full rate, must find the share left to them from the 60007s alone.
//
// Each row then gets three more figures, over recallq's own calls:
//
//   - converge_s: from recallq's first call to the start of the first
//     second of the simulator's clock from which every second, until the
//     queue ran dry (the last busy second), held between steadyLow and 1 of
//     the free share F = Cap - outside rate of recallq's calls, refused ones
//     included. Resolution one second; "-" when the last busy second was
//     outside the band. steady_s says how many seconds that steady run lasted.
//   - own_useful/s: recallq's calls not answered 60007 per busy second.
//   - own_60007: the share of recallq's calls answered 60007 over the run.

// steadyLow is the lower edge of the steady band, as a fraction of the
// free share.
const steadyLow = 0.9

// quotaRow is one configuration's shared-quota figures.
type quotaRow struct {
	limiter       string
	procs         int
	free          float64 // F
	converge      float64 // s; NaN: never
	steady        int     // seconds in the final steady run
	useful        float64 // own calls not refused, per busy second; NaN without one
	refusedShare  float64 // own 60007s / own calls; NaN without calls
	outside       int64
	outsideRefuse int64
}

// newQuotaRow computes the figures from the simulator's stats and the busy
// seconds (busySeconds' indexes).
func newQuotaRow(c config, st imsim.Stats, busy []int, outsideRate float64) quotaRow {
	q := quotaRow{limiter: c.label(), procs: c.procs, free: Cap - outsideRate,
		converge: math.NaN(), useful: math.NaN(), refusedShare: math.NaN(),
		outside: st.OutsideCalls, outsideRefuse: st.OutsideRejected60007}
	if st.Counted > 0 {
		q.refusedShare = float64(st.Rejected60007) / float64(st.Counted)
	}
	if len(busy) > 0 {
		sum := 0
		for _, s := range busy {
			sum += st.PerSecond[s]
			if s < len(st.RejectedPerSecond) {
				sum -= st.RejectedPerSecond[s]
			}
		}
		q.useful = float64(sum) / float64(len(busy))
		if !st.First.IsZero() {
			first := st.First.Sub(st.Start)
			if k, ok := convergedFrom(st.PerSecond, int(first/time.Second), busy[len(busy)-1], steadyLow*q.free, q.free); ok {
				q.converge = max(0, (time.Duration(k)*time.Second - first).Seconds())
				q.steady = busy[len(busy)-1] - k + 1
			}
		}
	}
	return q
}

// convergedFrom returns the first second k in [first, last] such that every
// count in perSecond[k..last] lies in [lo, hi]; ok is false when
// perSecond[last] does not.
func convergedFrom(perSecond []int, first, last int, lo, hi float64) (k int, ok bool) {
	if last >= len(perSecond) || first > last {
		return 0, false
	}
	in := func(n int) bool { return float64(n) >= lo && float64(n) <= hi }
	if !in(perSecond[last]) {
		return 0, false
	}
	k = last
	for k > first && in(perSecond[k-1]) {
		k--
	}
	return k, true
}

// quotaHeader is the header of the shared-quota table.
func quotaHeader(outsideRate float64) string {
	free := Cap - outsideRate
	return fmt.Sprintf("# shared quota: outside load %v/s, free share F = %v/s, steady band %.0f-%.0f of recallq's calls a second\n%-13s  %5s  %10s  %8s  %12s  %9s  %13s",
		outsideRate, free, steadyLow*free, free,
		"limiter", "procs", "converge_s", "steady_s", "own_useful/s", "own_60007", "outside_60007")
}

// line formats the row under quotaHeader.
func (q quotaRow) line() string {
	conv := "-"
	if !math.IsNaN(q.converge) {
		conv = fmt.Sprintf("%.1f", q.converge)
	}
	share := "-"
	if !math.IsNaN(q.refusedShare) {
		share = fmt.Sprintf("%.2f%%", 100*q.refusedShare)
	}
	outside := fmt.Sprintf("%d/%d", q.outsideRefuse, q.outside)
	return strings.TrimRight(fmt.Sprintf("%-13s  %5d  %10s  %8d  %12s  %9s  %13s",
		q.limiter, q.procs, conv, q.steady, orDash(q.useful, "%.1f"), share, outside), " ")
}

// quotaNote shows how the run went: recallq's calls and their 60007s in
// each second of the simulator's clock, and the rate in force (the first
// worker's samples, one a second) and the strikes the shared limiter saw.
func quotaNote(c config, st imsim.Stats, reps []Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "quota %s P=%d: recallq's calls/60007s per second:", c.label(), c.procs)
	for i, n := range st.PerSecond {
		rej := 0
		if i < len(st.RejectedPerSecond) {
			rej = st.RejectedPerSecond[i]
		}
		fmt.Fprintf(&b, " %d/%d", n, rej)
	}
	if len(reps) > 0 && len(reps[0].Samples) > 0 {
		b.WriteString("; rate in force (worker-0, each second):")
		for i, s := range reps[0].Samples {
			if i%int(time.Second/statsEvery) == 0 {
				fmt.Fprintf(&b, " %.0f", s.Rate)
			}
		}
	}
	var slow, held, isolated int64
	for _, r := range reps {
		if s := r.Shared; s != nil {
			slow += s.SlowDowns
			held += s.HeldStrikes
			isolated += s.IsolatedStrikes
		}
	}
	fmt.Fprintf(&b, "; rate-limit answers: %d cut the rate, %d held, %d isolated", slow, held, isolated)
	return b.String()
}
