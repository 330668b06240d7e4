package bench

import (
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

func TestBusySeconds(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	// samples every 100 ms from t=0 to t=5.0 s, pending while t < end.
	samples := func(end int) []sample {
		var s []sample
		for ms := 0; ms <= 5000; ms += 100 {
			p := 0
			if ms < end {
				p = 10
			}
			s = append(s, sample{at: at(ms), pending: p})
		}
		return s
	}
	tests := []struct {
		name    string
		from    int // ms
		end     int // ms: pending until then
		seconds int
		want    []int
	}{
		{"busy throughout", 0, 6000, 5, []int{0, 1, 2, 3, 4}},
		{"starts at the first whole second after from", 300, 6000, 5, []int{1, 2, 3, 4}},
		{"a second whose end the queue did not reach busy is left out", 0, 3500, 5, []int{0, 1, 2}},
		{"a second ending exactly when the queue empties is out: the sample at its end saw none", 0, 3000, 5, []int{0, 1}},
		{"no sample after the last second: it is left out", 0, 6000, 6, []int{0, 1, 2, 3, 4}},
		{"never busy", 0, 0, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := busySeconds(start, tt.seconds, at(tt.from), samples(tt.end))
			if !slices.Equal(got, tt.want) {
				t.Errorf("busySeconds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecoveryAfter(t *testing.T) {
	start := time.Unix(1000, 0)
	kill := start.Add(6*time.Second + 100*time.Millisecond) // in second 6
	tests := []struct {
		name      string
		perSecond []int
		ok        bool
		want      recovery
	}{
		{"back the second after the kill", []int{150, 199, 200, 198, 200, 199, 185, 199, 200, 40},
			true, recovery{level: 199, back: 7, after: 900 * time.Millisecond}},
		{"one call below the level is at level", []int{150, 199, 200, 198, 200, 199, 185, 198, 200, 40},
			true, recovery{level: 199, back: 7, after: 900 * time.Millisecond}},
		{"no dip", []int{150, 199, 200, 198, 200, 199, 199, 200, 40},
			true, recovery{level: 199, back: 6, after: 0}},
		{"back after two seconds", []int{150, 199, 200, 198, 200, 199, 150, 190, 199, 200, 40},
			true, recovery{level: 199, back: 8, after: 1900 * time.Millisecond}},
		{"a pause before the kill does not set the level", []int{150, 199, 200, 50, 200, 199, 150, 199, 200, 40},
			true, recovery{level: 199, back: 7, after: 900 * time.Millisecond}},
		{"the partial last second does not count", []int{150, 199, 200, 198, 200, 199, 150, 199},
			false, recovery{}},
		{"too early to have a level", []int{100, 100, 100}, false, recovery{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := recoveryAfter(tt.perSecond, start, kill)
			if ok != tt.ok || got != tt.want {
				t.Errorf("recoveryAfter = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHistogramQuantileWithinItsPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b := &Histogram{}, &Histogram{}
	var all []time.Duration
	for i := range 20000 {
		d := time.Duration(r.ExpFloat64() * float64(30*time.Millisecond))
		all = append(all, d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	merged := &Histogram{}
	merged.Merge(a)
	merged.Merge(b)
	if got := merged.Count(); got != int64(len(all)) {
		t.Fatalf("Count = %d, want %d", got, len(all))
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all)))-1]
		got, ok := merged.Quantile(q)
		if !ok {
			t.Fatal("empty")
		}
		// The bucket's upper bound: at or above the exact value, within 1/64.
		if got < exact.Truncate(time.Microsecond) || float64(got) > float64(exact)*(1+1.0/64)+float64(time.Microsecond) {
			t.Errorf("q%v = %v, exact %v", q, got, exact)
		}
	}
	if _, ok := (&Histogram{}).Quantile(0.99); ok {
		t.Error("an empty histogram has a quantile")
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	prev := bucketOf(0)
	for v := uint64(1); v < 1<<22; v++ {
		i := bucketOf(v)
		if i != prev && i != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d", v, i, prev)
		}
		if v > bucketMax(i) || (i > 0 && v <= bucketMax(i-1)) {
			t.Fatalf("%d is not in bucket %d (max %d, previous max %d)", v, i, bucketMax(i), bucketMax(i-1))
		}
		prev = i
	}
}

func TestWorkerArgsRoundTrip(t *testing.T) {
	want := WorkerConfig{Limiter: LimiterFixedWindow, Procs: 4, Concurrency: 16, RedisURL: "redis://127.0.0.1:6390/0",
		Endpoint: "http://127.0.0.1:8089", Rate: 200, RetryBase: 200 * time.Millisecond, Report: "/tmp/w.json", Admin: "not_an_admin"}
	env := map[string]string{"TIM_SDKAPPID": "1400000000", "TIM_SECRET_KEY": "k"}
	args := want.args()
	if args[0] != WorkerCommand {
		t.Fatalf("args start %q", args[0])
	}
	got, err := ParseWorkerArgs(args[1:], func(k string) string { return env[k] }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	want.SDKAppID, want.SecretKey = 1400000000, "k"
	got.Logger = nil
	if got != want {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
	for _, a := range args {
		if a == "k" {
			t.Error("the secret key is on the command line")
		}
	}
}

// TestDispersionIsTheBusySecondsMean: the detail line's G is the mean of
// the samples taken while tasks were waiting and G was known, not the G a
// worker ended with (after the drain its samples expire: a bad-pod row
// printed 0.0 ms, a lognormal one the G of the drain's last few calls).
func TestDispersionIsTheBusySecondsMean(t *testing.T) {
	from := time.Unix(1000, 0)
	at := func(s float64) int64 { return from.Add(time.Duration(s * float64(time.Second))).UnixMilli() }
	rep := Report{SlotToAnswer: &Histogram{}, Samples: []statsSample{
		{At: at(0.1), Interval: 5 * time.Millisecond, Dispersion: -1},                    // not known yet
		{At: at(0.5), Interval: 5 * time.Millisecond, Dispersion: 10 * time.Millisecond}, // busy
		{At: at(1.5), Interval: 5 * time.Millisecond, Dispersion: 20 * time.Millisecond}, // busy
		{At: at(9), Interval: 5 * time.Millisecond, Dispersion: 0},                       // after the drain
	}}
	var r row
	r.spacing(from, from.Add(2*time.Second), []Report{rep})
	if !r.haveG || r.gMean != 15*time.Millisecond || r.gMax != 20*time.Millisecond {
		t.Errorf("G mean %s max %s (known %v), want 15ms and 20ms from the two busy samples that knew it", r.gMean, r.gMax, r.haveG)
	}
}
