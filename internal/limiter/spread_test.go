package limiter

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSpreadWindow(t *testing.T) {
	now := time.Now()
	uniform := func(n int, from, width time.Duration) []sample {
		s := make([]sample, n)
		for i := range s {
			d := from + time.Duration(i)*width/time.Duration(n-1)
			s[i] = sample{at: now, lo: d, hi: d}
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		samples []sample
		want    time.Duration
		ok      bool
		tol     time.Duration
	}{
		{name: "no samples", ok: false},
		{name: "uniform over 30ms", samples: uniform(1000, 10*time.Millisecond, 30*time.Millisecond),
			want: 30 * time.Millisecond, ok: true, tol: time.Millisecond},
		{name: "a few outliers are cut", samples: append(uniform(1000, 10*time.Millisecond, 30*time.Millisecond),
			sample{at: now, lo: 2 * time.Second, hi: 2 * time.Second},
			sample{at: now, lo: -time.Second, hi: -time.Second}),
			want: 30 * time.Millisecond, ok: true, tol: time.Millisecond},
		{name: "few samples use the extremes", samples: []sample{
			{at: now, lo: 10 * time.Millisecond, hi: 10 * time.Millisecond},
			{at: now, lo: 90 * time.Millisecond, hi: 90 * time.Millisecond}},
			want: 80 * time.Millisecond, ok: true},
		{name: "round-trip uncertainty widens the spread", samples: []sample{
			{at: now, lo: 10 * time.Millisecond, hi: 12 * time.Millisecond},
			{at: now, lo: 20 * time.Millisecond, hi: 22 * time.Millisecond}},
			want: 12 * time.Millisecond, ok: true},
		{name: "bounded to 500ms", samples: uniform(100, 0, 3*time.Second), want: maxSpread, ok: true},
		{name: "stale samples are ignored", samples: append(uniform(100, 0, 5*time.Millisecond),
			sample{at: now.Add(-2 * spreadMaxAge), lo: 0, hi: time.Second}),
			want: 5 * time.Millisecond, ok: true, tol: 100 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSpreadWindow()
			for _, s := range tc.samples {
				w.add(s)
			}
			got, ok := w.spread(now)
			if ok != tc.ok || got < tc.want-tc.tol || got > tc.want+tc.tol {
				t.Errorf("spread = %s, %v; want %s±%s, %v", got, ok, tc.want, tc.tol, tc.ok)
			}
		})
	}
}

func TestSpreadWindowKeepsTheLatestSamples(t *testing.T) {
	now := time.Now()
	w := newSpreadWindow()
	for range spreadSamples {
		w.add(sample{at: now, lo: 0, hi: time.Second}) // old regime: wide
	}
	for range spreadSamples {
		w.add(sample{at: now, lo: 0, hi: 5 * time.Millisecond}) // new regime
	}
	if got, _ := w.spread(now); got != 5*time.Millisecond {
		t.Errorf("spread = %s after a full window of new samples, want 5ms", got)
	}
}

func TestSpreadWindowTails(t *testing.T) {
	now := time.Now()
	w := newSpreadWindow()
	if got := w.tails(now, nil).String(); got != "" {
		t.Errorf("tails of an empty window %q, want \"\"", got)
	}
	for i := range 30 {
		d := time.Duration(i) * time.Millisecond
		w.add(sample{at: now, lo: d, hi: d + 1500*time.Nanosecond}) // hi rounds up to whole µs
	}
	w.add(sample{at: now.Add(-2 * spreadMaxAge), lo: -time.Second, hi: time.Hour}) // stale
	// Then the sketch of the late bounds (pacing.go): with fewer samples
	// than sketchPoints, every one of them.
	want := "30|0,1000,2000,3000,4000,5000,6000,7000,8000,9000|29002,28002,27002,26002,25002,24002,23002,22002,21002,20002" +
		"|2,1002,2002,3002,4002,5002,6002,7002,8002,9002,10002,11002,12002,13002,14002,15002,16002,17002,18002,19002,20002,21002,22002,23002,24002,25002,26002,27002,28002,29002"
	if got := w.tails(now, nil).String(); got != want {
		t.Errorf("tails = %q, want %q", got, want)
	}
	// With more, sketchPoints quantiles from the smallest to the largest.
	for i := range spreadSamples {
		w.add(sample{at: now, lo: 0, hi: time.Duration(i) * time.Microsecond})
	}
	sk := w.tails(now, nil).sketch
	if sk.n != spreadSamples || len(sk.q) != sketchPoints || sk.q[0] != 0 || sk.q[sketchPoints-1] != 1999 || sk.q[128] != 1000 {
		t.Errorf("sketch of %d samples 0..1999 µs: n %d, %d points %v; want %d points from 0 to 1999, median 1000", spreadSamples, sk.n, len(sk.q), sk.q, sketchPoints)
	}
}

// TestMeanDifferenceOfSketches: the mixture's G is what the distributions
// give: a uniform band of width w has G = w/3; point masses d apart with
// weights p and 1-p, G = 2p(1-p)d; a band and a point mass weighted by
// their counts.
func TestMeanDifferenceOfSketches(t *testing.T) {
	band := sketch{n: 100, q: []int64{20000, 21000, 22000}}
	for _, tt := range []struct {
		name string
		sks  []sketch
		want time.Duration
	}{
		{"uniform 20-22 ms", []sketch{band}, 2 * time.Millisecond / 3},
		{"two processes, the same band", []sketch{band, {n: 300, q: []int64{20000, 22000}}}, 2 * time.Millisecond / 3},
		{"two point masses 10 ms apart", []sketch{{n: 1, q: []int64{10000}}, {n: 3, q: []int64{20000, 20000, 20000}}}, 3 * 10 * time.Millisecond / 8},
		// A third at 10 ms, a third uniform over 10-20 ms, a third at 20 ms:
		// G = 2/9*10 + 4/9*5 + 1/9*10/3 ms = 130/27 ms.
		{"quantiles that repeat hold point masses", []sketch{{n: 300, q: []int64{10000, 10000, 20000, 20000}}}, 130 * time.Millisecond / 27},
		// Mass 1/2 uniform on 0-2 ms, 1/2 at 10 ms: pairs within the
		// band (1/4 of them) differ by 2/3 ms on average, pairs across
		// (1/2) by 9 ms: G = 1/4*2/3 + 1/2*9 ms.
		{"a band and a point mass", []sketch{{n: 50, q: []int64{0, 2000}}, {n: 50, q: slices.Repeat([]int64{10000}, 50)}}, 4666667 * time.Nanosecond},
	} {
		got, ok := meanDifference(tt.sks)
		if !ok || math.Abs(float64(got-tt.want)) > float64(time.Microsecond) {
			t.Errorf("%s: meanDifference = %s (%v), want %s", tt.name, got, ok, tt.want)
		}
	}
	if _, ok := meanDifference(nil); ok {
		t.Error("meanDifference of no sketch is known, want unknown")
	}
	for _, bad := range []string{"", "1,x", "3,2", "-1", "7", "1,2,3,4,5,6", strings.Repeat("1,", sketchPoints) + "1"} {
		if _, ok := parseSketch(5, bad); ok {
			t.Errorf("parseSketch(%q) accepted, want refused", bad)
		}
	}
}
