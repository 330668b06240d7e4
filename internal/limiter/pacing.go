package limiter

import (
	"cmp"
	"math"
	"slices"
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
// G is measured fleet-wide: each process shares a sketch of its recent
// samples' late bounds (all of them, or sketchPoints quantiles evenly
// spaced from min to max when it has more), spreadScript hands every live
// process's sketch back, and G is computed from their mixture, each
// process weighted by its sample count. (A histogram of log-spaced buckets a quarter of the
// latency wide, the form before, made a narrow band look as wide as its
// bucket: 20-22 ms read as G = 1.5 ms for 0.67, a steady 150-153 ms path
// as 11 ms for 1.)
const (
	// paceZ is the margin in standard deviations of the count of arrivals
	// in a sliding second.
	paceZ = 5.0
	// minPace bounds the paced rate from below, as a fraction of Rate: a
	// dispersion that would pace slower than this is a fault, not jitter.
	minPace = 0.5
	// sketchPoints is how many points of its samples a process shares:
	// every sample when it has no more, else the quantiles at k/256 for
	// k = 0..256 (at most 600 samples live fleet-wide at 200/s, so the
	// top stretch holds two or three).
	sketchPoints = 257
)

// sketch is one process's share of the dispersion: its live sample count
// n and points of their late bounds, in µs, from the smallest to the
// largest: every sample when len(q) == n (each a point mass), else
// sketchPoints quantiles evenly spaced from min to max (the distribution
// linear between them).
type sketch struct {
	n int64
	q []int64
}

// sketchOf returns the sketch of the sorted durations.
func sketchOf(sorted []time.Duration) sketch {
	n := len(sorted)
	sk := sketch{n: int64(n)}
	if n == 0 {
		return sk
	}
	if n <= sketchPoints {
		sk.q = make([]int64, n)
		for i, d := range sorted {
			sk.q[i] = max(0, ceilMicros(d))
		}
		return sk
	}
	m := sketchPoints
	sk.q = make([]int64, m)
	for k := range m {
		pos := float64(k) * float64(n-1) / float64(m-1)
		i := int(pos)
		v := float64(sorted[i])
		if i+1 < n {
			v += (pos - float64(i)) * float64(sorted[i+1]-sorted[i])
		}
		sk.q[k] = max(0, ceilMicros(time.Duration(math.Round(v))))
	}
	return sk
}

// String is "q0,q1,...", the form spreadScript stores.
func (sk sketch) String() string {
	var b strings.Builder
	for k, v := range sk.q {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(v, 10))
	}
	return b.String()
}

// parseSketch reads a sketch of n samples from its String form; ok is
// false when it is not one.
func parseSketch(n int64, s string) (sketch, bool) {
	if n <= 0 || s == "" {
		return sketch{}, false
	}
	parts := strings.Split(s, ",")
	if len(parts) > sketchPoints || int64(len(parts)) > n || (int64(len(parts)) < n && len(parts) < 2) {
		return sketch{}, false
	}
	sk := sketch{n: n, q: make([]int64, len(parts))}
	for k, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 || (k > 0 && v < sk.q[k-1]) {
			return sketch{}, false
		}
		sk.q[k] = v
	}
	return sk, true
}

// meanDifference returns G = E|X - X'| of the mixture of the sketches'
// distributions, each weighted by its sample count: point masses where a
// sketch holds every sample, linear between its quantiles where it holds
// quantiles; ok is false when there is no sample.
//
// G = 2 ∫ F(x) (1 - F(x)) dx. F is piecewise linear between the sketches'
// points, with jumps where a sketch has a point mass, so a sweep over the
// points adds up, per stretch where F goes linearly from a to b,
// Δx * ((a+b)/2 - (a² + ab + b²)/3).
func meanDifference(sks []sketch) (time.Duration, bool) {
	usable := func(sk sketch) bool { return int64(len(sk.q)) == sk.n || len(sk.q) >= 2 }
	var total int64
	for _, sk := range sks {
		if sk.n > 0 && usable(sk) {
			total += sk.n
		}
	}
	if total == 0 {
		return 0, false
	}
	// An event at x changes the slope of F, or makes it jump.
	type event struct {
		x           float64
		slope, jump float64
	}
	var evs []event
	for _, sk := range sks {
		if sk.n <= 0 || !usable(sk) {
			continue
		}
		w := float64(sk.n) / float64(total)
		if int64(len(sk.q)) == sk.n {
			for _, v := range sk.q {
				evs = append(evs, event{x: float64(v), jump: w / float64(len(sk.q))})
			}
			continue
		}
		mass := w / float64(len(sk.q)-1)
		for k := 0; k+1 < len(sk.q); k++ {
			a, b := float64(sk.q[k]), float64(sk.q[k+1])
			if b == a {
				evs = append(evs, event{x: a, jump: mass})
				continue
			}
			evs = append(evs, event{x: a, slope: mass / (b - a)}, event{x: b, slope: -mass / (b - a)})
		}
	}
	slices.SortFunc(evs, func(a, b event) int { return cmp.Compare(a.x, b.x) })
	var g, f, slope float64
	x := evs[0].x
	for _, e := range evs {
		if dx := e.x - x; dx > 0 {
			a, b := f, min(f+slope*dx, 1)
			g += dx * ((a+b)/2 - (a*a+a*b+b*b)/3)
			f, x = b, e.x
		}
		slope += e.slope
		f = min(f+e.jump, 1)
	}
	return time.Duration(2 * g * float64(time.Microsecond)), true
}

// pacedRate is the rate r with r + paceZ*sqrt(r*G) = rate, at least
// minPace*rate.
func pacedRate(rate float64, g time.Duration) float64 {
	gs := max(g.Seconds(), 0)
	x := (math.Sqrt(paceZ*paceZ*gs+4*rate) - paceZ*math.Sqrt(gs)) / 2
	return max(x*x, minPace*rate)
}
