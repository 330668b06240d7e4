package limiter

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// # The pacing model
//
// Slots leave evenly spaced at rate r; call i reaches Tencent at its slot
// plus its latency X_i. The count of arrivals in a sliding second has mean r
// and, for independent latencies, a variance of about r*G, where G =
// E|X - X'| is the mean difference of two independent latencies (Gini's
// mean difference): calls near each edge of the window come in or stay out
// by chance, and G measures how far their order is shuffled. So r is paced
// below the cap by a margin of paceZ standard deviations:
//
//	r + paceZ*sqrt(r*G) = Rate,  r = ((sqrt(paceZ²G + 4 Rate) - paceZ*sqrt(G)) / 2)²
//
// With paceZ = 5 the Gaussian tail beyond the cap is about 3e-7 per
// window. At 20-50 ms uniform latency (G = 10 ms) that is 193/s, at a
// lognormal latency of median 80 ms and p99 600 ms (G ≈ 107 ms) 178/s,
// where the worst-case spacing (1+J)/Rate ran at 131/s. Correlated delays
// (a stalled process, a late grant) are not in the model: the lateness
// cutoff drops the calls later than Config.LateCutoff, and the pacing
// leaves room for those up to it, late together, by dividing r by
// (1 + cutoff): 0.5% at the default 5 ms. (The narrow band's worst case,
// Limiter.setSpread, becomes (1+J+cutoff)/Rate the same way.)
//
// G is measured fleet-wide: each process shares a histogram of its recent
// samples' late bounds (histBuckets log-spaced buckets), spreadScript sums
// them, and G is computed from the merged histogram with the distribution
// function taken as linear inside each bucket.
const (
	// paceZ is the margin in standard deviations of the count of arrivals
	// in a sliding second.
	paceZ = 5.0
	// minPace bounds the paced rate from below, as a fraction of Rate: a
	// dispersion that would pace slower than this is a fault, not jitter.
	minPace = 0.5
	// histFirst is the upper bound of the first bucket; each next bound is
	// histRatio times the one before, up to histBuckets buckets (the last
	// is open: about 20 s).
	histFirst   = 500 * time.Microsecond
	histRatio   = 1.25
	histBuckets = 48
)

// histBounds are the upper bounds of the buckets but the last.
var histBounds = func() []time.Duration {
	b := make([]time.Duration, histBuckets-1)
	v := float64(histFirst)
	for i := range b {
		b[i] = time.Duration(v)
		v *= histRatio
	}
	return b
}()

// histBucket is the bucket of d.
func histBucket(d time.Duration) int {
	for i, b := range histBounds {
		if d < b {
			return i
		}
	}
	return histBuckets - 1
}

// hist counts samples per bucket.
type hist [histBuckets]int64

// String is "c0,c1,...", trailing zero buckets left out.
func (h *hist) String() string {
	last := -1
	for i, c := range h {
		if c != 0 {
			last = i
		}
	}
	var b strings.Builder
	for i := 0; i <= last; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(h[i], 10))
	}
	return b.String()
}

// meanDifference returns G = E|X - X'| of the histogram's distribution,
// with F linear inside each bucket (the open last bucket counted at its
// lower bound); ok is false when it is empty.
//
// G = 2 ∫ F(x) (1 - F(x)) dx, and over a bucket where F goes linearly from
// a to b the integral is Δx * ((a+b)/2 - (a² + ab + b²)/3).
func (h *hist) meanDifference() (time.Duration, bool) {
	var n int64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0, false
	}
	var g, lo float64
	var seen int64
	for i := 0; i < histBuckets-1; i++ {
		hi := float64(histBounds[i])
		a := float64(seen) / float64(n)
		seen += h[i]
		b := float64(seen) / float64(n)
		g += (hi - lo) * ((a+b)/2 - (a*a+a*b+b*b)/3)
		lo = hi
	}
	return time.Duration(2 * g), true
}

// pacedRate is the rate r with r + paceZ*sqrt(r*G) = rate, at least
// minPace*rate.
func pacedRate(rate float64, g time.Duration) float64 {
	gs := max(g.Seconds(), 0)
	x := (math.Sqrt(paceZ*paceZ*gs+4*rate) - paceZ*math.Sqrt(gs)) / 2
	return max(x*x, minPace*rate)
}
