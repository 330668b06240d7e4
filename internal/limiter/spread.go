package limiter

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The spread J of one process is measured over its recent Observe samples.
//
// Window: the last spreadSamples samples, and none older than spreadMaxAge.
// At the full 200/s the fleet makes 600 calls in 3 s, so the fleet-wide
// p0.5/p99.5 (below) still cut the 3 most extreme on each side. Three
// seconds (not ten) because a wide patch of samples should not outlive its
// cause by long: when 16 processes start at once on 2 cores their first
// calls are late, and with a 10 s window that start-up alone held the fleet
// about 2% under the cap for 10 s (recallq bench, P=16). A change of network
// path shows within seconds either way.
//
// Quantiles: J = p99.5(late bound) - p0.5(early bound), not max - min. The
// samples are round trips (from the send Admit let go, or from the slot for
// a permit never admitted, to the answer), a proxy for the spread of
// arrival times at Tencent. The lateness between slot and send is not in
// them: the cutoff bounds it and the pacing leaves room for it apart.
// Their extreme tail is dominated by answers that were slow to come back (a stalled response, a GC pause in the worker, a TCP
// retransmit), not by requests that arrived late, and max - min would let one
// such outlier widen the spacing of the whole fleet for seconds, up to
// the 0.5 s bound (a third of the throughput gone). Cutting 0.5% on each side
// ignores the 3 most extreme of the 600 samples a fleet makes in spreadMaxAge
// at 200/s (10 of 2000, the most one process keeps). A call that really did arrive
// in the cut tail could add one call to a sliding second; Observe pushes the
// schedule back by its excess so that it cannot (see the package
// documentation).
//
// Fleet-wide: the quantiles that set the interval are taken over the samples
// of all live processes together, not per process. With P processes each sees
// about 600/P samples in spreadMaxAge at 200/s, and below 200 samples its own
// quantiles are its extremes (with 200 or fewer, p0.5 and p99.5 are min and
// max); the largest of P such maxima would overstate J badly. So each
// process shares only its sample count and its spreadTail most extreme
// samples on each side (tails), and spreadScript merges them: with N samples
// in all, the rank r = ceil(0.005*N), bounded to [1, spreadTail], gives
// J = (r-th largest hi) - (r-th smallest lo). The r-th most extreme sample of
// the union lies among every process's r most extreme, so the merge is exact.
// spread, the per-process quantile, is kept for Stats.LocalSpread and as the
// fallback while Redis cannot be reached.
const (
	spreadSamples = 2000
	spreadMaxAge  = 3 * time.Second
	spreadLowQ    = 0.005
	spreadHighQ   = 0.995
	// spreadTail is how many of its most extreme samples on each side a
	// process shares: the fleet's p0.5 and p99.5 are the r-th most extreme,
	// r = ceil(0.005*N): 3 for the 600 samples of 200/s over spreadMaxAge,
	// and at most 10 up to 2000 samples in all, so they lie among them.
	spreadTail = 10
	// maxSpread bounds J: a spread beyond it is not jitter to pace around but
	// a fault, and at (1+0.5)/Rate the bucket still runs at two thirds of the
	// cap.
	maxSpread = 500 * time.Millisecond
)

// sample is one observed call: at is when it was observed (local clock); the
// time from the call's true slot to its answer lies in [lo, hi].
type sample struct {
	at     time.Time
	lo, hi time.Duration
}

// spreadWindow is a ring of the most recent samples.
type spreadWindow struct {
	mu   sync.Mutex
	ring []sample
	next int
}

func newSpreadWindow() *spreadWindow {
	return &spreadWindow{ring: make([]sample, 0, spreadSamples)}
}

func (w *spreadWindow) add(s sample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ring) < cap(w.ring) {
		w.ring = append(w.ring, s)
		return
	}
	w.ring[w.next] = s
	w.next = (w.next + 1) % len(w.ring)
}

// spread returns the spread of the samples no older than spreadMaxAge at
// now, bounded to [0, maxSpread]; ok is false when there is none.
func (w *spreadWindow) spread(now time.Time) (j time.Duration, ok bool) {
	w.mu.Lock()
	lo := make([]time.Duration, 0, len(w.ring))
	hi := make([]time.Duration, 0, len(w.ring))
	for _, s := range w.ring {
		if now.Sub(s.at) <= spreadMaxAge {
			lo = append(lo, s.lo)
			hi = append(hi, s.hi)
		}
	}
	w.mu.Unlock()
	if len(lo) == 0 {
		return 0, false
	}
	slices.Sort(lo)
	slices.Sort(hi)
	n := float64(len(lo) - 1)
	j = hi[int(math.Ceil(spreadHighQ*n))] - lo[int(math.Floor(spreadLowQ*n))]
	return clampSpread(j), true
}

func clampSpread(j time.Duration) time.Duration {
	return min(max(j, 0), maxSpread)
}

// tails is what one process shares of its window: its live sample count and
// its spreadTail smallest lo and largest hi, in µs (lo rounded down, hi up),
// most extreme first.
type tails struct {
	n           int
	lows, highs []int64
	sketch      sketch // of every live sample's late bound (see pacing.go)
}

// String is the form spreadScript stores, "n|lo,lo,...|hi,hi,...|q,q,...",
// or "" when there is no sample.
func (t tails) String() string {
	if t.n == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(t.n))
	for _, vs := range [2][]int64{t.lows, t.highs} {
		b.WriteByte('|')
		for k, v := range vs {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(v, 10))
		}
	}
	b.WriteByte('|')
	b.WriteString(t.sketch.String())
	return b.String()
}

// tails returns the count and the tails of the samples no older than
// spreadMaxAge at now, with, as samples of their own, the ages of the calls
// still in flight (inflight) that are older than every such sample's late
// bound.
//
// Those are the censored tail: on a cold start, or when the path to
// Tencent slows, the answers back so far are the fast ones, and a
// dispersion read from them alone paces the fleet faster than the network
// allows until the slow answers come (at lognormal latency, median 80 ms
// and p99 600 ms, whose pace is 177/s, the first second's answers read as
// a far narrower network). A call still unanswered at age a has a latency
// of at least a, so counting it at a moves G towards the truth, never past
// it. In steady state no call in flight is older than the slowest answer of
// the last seconds, and nothing changes.
func (w *spreadWindow) tails(now time.Time, inflight []time.Duration) tails {
	w.mu.Lock()
	lo := make([]time.Duration, 0, len(w.ring)+len(inflight))
	hi := make([]time.Duration, 0, len(w.ring)+len(inflight))
	var slowest time.Duration
	for _, s := range w.ring {
		if now.Sub(s.at) <= spreadMaxAge {
			lo = append(lo, s.lo)
			hi = append(hi, s.hi)
			slowest = max(slowest, s.hi)
		}
	}
	w.mu.Unlock()
	for _, a := range inflight {
		if a > slowest {
			lo = append(lo, a)
			hi = append(hi, a)
		}
	}
	slices.Sort(lo)
	slices.Sort(hi)
	t := tails{n: len(lo), sketch: sketchOf(hi)}
	for i := range min(spreadTail, len(lo)) {
		t.lows = append(t.lows, lo[i].Microseconds())
		t.highs = append(t.highs, ceilMicros(hi[len(hi)-1-i]))
	}
	return t
}

// inflightMaxAge bounds the age of a call counted as in flight: one not
// observed by then was abandoned without Observe or Unused (a bug
// elsewhere), and must not widen the dispersion for ever.
const inflightMaxAge = 30 * time.Second

// inflight holds the send times of admitted calls not yet observed, by
// their slot in Redis's clock (unique in a bucket).
type inflight struct {
	mu   sync.Mutex
	sent map[int64]time.Time
}

func (f *inflight) add(slot time.Time, sent time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent == nil {
		f.sent = make(map[int64]time.Time)
	}
	f.sent[slot.UnixMicro()] = sent
}

func (f *inflight) remove(slot time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sent, slot.UnixMicro())
}

// ages returns how long each call in flight has been waiting at now, and
// forgets those older than inflightMaxAge.
func (f *inflight) ages(now time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ages []time.Duration
	for k, sent := range f.sent {
		switch a := now.Sub(sent); {
		case a > inflightMaxAge:
			delete(f.sent, k)
		case a > 0:
			ages = append(ages, a)
		}
	}
	return ages
}
