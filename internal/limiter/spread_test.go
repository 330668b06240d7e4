package limiter

import (
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
	if got := w.tails(now).String(); got != "" {
		t.Errorf("tails of an empty window %q, want \"\"", got)
	}
	for i := range 30 {
		d := time.Duration(i) * time.Millisecond
		w.add(sample{at: now, lo: d, hi: d + 1500*time.Nanosecond}) // hi rounds up to whole µs
	}
	w.add(sample{at: now.Add(-2 * spreadMaxAge), lo: -time.Second, hi: time.Hour}) // stale
	// Then the late bounds per histogram bucket (pacing.go): 0.5 ms, then
	// each bound 1.25 times the one before.
	want := "30|0,1000,2000,3000,4000,5000,6000,7000,8000,9000|29002,28002,27002,26002,25002,24002,23002,22002,21002,20002" +
		"|1,0,0,0,1,0,0,1,0,1,1,1,2,2,2,3,3,5,5,2"
	if got := w.tails(now).String(); got != want {
		t.Errorf("tails = %q, want %q", got, want)
	}
}
