package limiter

import (
	"math"
	"slices"
	"sync"
	"time"
)

// The spread J of one process is measured over its recent Observe samples.
//
// Window: the last spreadSamples samples, and none older than spreadMaxAge.
// At the full 200/s a lone process fills 2000 samples in 10 s; with more
// processes each sees fewer calls and the age bound rules. Ten seconds is long
// enough for the high quantile to mean something and short enough that a
// change of network path shows within seconds.
//
// Quantiles: J = p99.5(late bound) - p0.5(early bound), not max - min. The
// samples are round trips (slot to answer), a proxy for the spread of arrival
// times at Tencent; their extreme tail is dominated by answers that were slow
// to come back (a stalled response, a GC pause in the worker, a TCP
// retransmit), not by requests that arrived late, and max - min would let one
// such outlier widen the spacing of the whole fleet for ten seconds, up to
// the 0.5 s bound (a third of the throughput gone). Cutting 0.5% on each side
// ignores the 10 most extreme of 2000 samples. A call that really did arrive
// in the cut tail can add at most one call to one sliding second; if that
// ever reaches the cap, the API's "too many requests" answer drives SlowDown.
// With 200 samples or fewer the quantiles are the extremes: min and max.
const (
	spreadSamples = 2000
	spreadMaxAge  = 10 * time.Second
	spreadLowQ    = 0.005
	spreadHighQ   = 0.995
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
