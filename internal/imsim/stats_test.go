package imsim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestRateWindow drives the sliding window with an injected clock: each step
// advances the clock, then makes calls, and expects their codes.
func TestRateWindow(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration
		calls   int
		want    []int
	}
	ok, limited := codeOK, codeRateLimited
	tests := []struct {
		name          string
		cap           int
		steps         []step
		wantMax       int
		wantRejected  int64
		wantPerSecond []int
	}{
		{
			name:          "Cap+1 calls in one window: exactly one 60007",
			cap:           3,
			steps:         []step{{0, 4, []int{ok, ok, ok, limited}}},
			wantMax:       4,
			wantRejected:  1,
			wantPerSecond: []int{4},
		},
		{
			name: "refused arrivals do not count toward the cap",
			cap:  2,
			steps: []step{
				{0, 3, []int{ok, ok, limited}},
				{500 * time.Millisecond, 1, []int{limited}}, // 2 admitted in (-0.5s, 0.5s]
				{500 * time.Millisecond, 2, []int{ok, ok}},  // (0s, 1s] holds only the refused 0.5s call
			},
			wantMax:       4,
			wantRejected:  2,
			wantPerSecond: []int{4, 2},
		},
		{
			name: "the window is open at its old end",
			cap:  2,
			steps: []step{
				{0, 1, []int{ok}},
				{999 * time.Millisecond, 1, []int{ok}},
				{time.Millisecond, 2, []int{ok, limited}}, // the 0s call left at exactly 1s; 0.999s is still in
			},
			wantMax:       3,
			wantRejected:  1,
			wantPerSecond: []int{2, 2},
		},
		{
			name: "MaxInAnyWindow across a window boundary",
			cap:  100,
			steps: []step{
				{0, 2, []int{ok, ok}},
				{900 * time.Millisecond, 3, []int{ok, ok, ok}}, // 5 in (-0.1s, 0.9s]
				{100 * time.Millisecond, 1, []int{ok}},         // 4 in (0s, 1s]
				{500 * time.Millisecond, 2, []int{ok, ok}},     // 6 in (0.5s, 1.5s]
				{500 * time.Millisecond, 1, []int{ok}},         // 3 in (1s, 2s]
			},
			wantMax:       6,
			wantPerSecond: []int{5, 3, 1},
		},
		{
			name: "quiet seconds are zeros",
			cap:  100,
			steps: []step{
				{0, 1, []int{ok}},
				{3 * time.Second, 2, []int{ok, ok}},
			},
			wantMax:       2,
			wantPerSecond: []int{1, 0, 0, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestSim(t, func(c *Config) { c.Cap = tt.cap })
			start := clock.Now()
			q := query(t, nil)
			n := 0
			for i, st := range tt.steps {
				clock.Advance(st.advance)
				var got []int
				for range st.calls {
					n++
					got = append(got, recall(t, s, q, "a", "b", fmt.Sprintf("%d_0_0", n)))
				}
				if !equalInts(got, st.want) {
					t.Errorf("step %d: codes %v, want %v", i, got, st.want)
				}
			}
			st := s.Stats()
			if st.MaxInAnyWindow != tt.wantMax {
				t.Errorf("MaxInAnyWindow = %d, want %d", st.MaxInAnyWindow, tt.wantMax)
			}
			if st.Rejected60007 != tt.wantRejected || st.ByCode[codeRateLimited] != tt.wantRejected {
				t.Errorf("Rejected60007 = %d, ByCode[60007] = %d, want %d", st.Rejected60007, st.ByCode[codeRateLimited], tt.wantRejected)
			}
			if !equalInts(st.PerSecond, tt.wantPerSecond) {
				t.Errorf("PerSecond = %v, want %v", st.PerSecond, tt.wantPerSecond)
			}
			if st.Counted != int64(n) || st.Calls != int64(n) {
				t.Errorf("Counted = %d, Calls = %d, want %d", st.Counted, st.Calls, n)
			}
			if !st.First.Equal(start) || !st.Last.Equal(clock.Now()) || !st.Start.Equal(start) {
				t.Errorf("Start %v First %v Last %v, want %v, %v, %v", st.Start, st.First, st.Last, start, start, clock.Now())
			}
		})
	}
}

// TestMeterMatchesBruteForce compares the meter with the definition on
// random arrivals: the count of admitted arrivals in (t-Window, t] before
// each arrival decides it, and MaxInAnyWindow is the largest count of all
// arrivals including the arrival.
func TestMeterMatchesBruteForce(t *testing.T) {
	t.Parallel()
	const window = time.Second
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			start := time.Unix(1_700_000_000, 0)
			capacity := 5 + rng.IntN(30)
			m := newMeter(capacity, window, start)
			var arrivals, admitted, onTimes, reads []time.Duration
			at := time.Duration(0)
			wantMax := 0
			for range 2000 {
				// Steps averaging Window/cap, so the count hovers around the
				// cap, often repeating an instant. Even seeds step in whole
				// 10 ms, so arrivals often land exactly on another's window
				// edge; odd seeds step in nanoseconds.
				mean := int(window) / capacity
				switch {
				case rng.IntN(4) == 0:
				case seed%2 == 0:
					at += time.Duration(rng.IntN(2*mean/int(10*time.Millisecond)+1)) * 10 * time.Millisecond
				default:
					at += time.Duration(rng.IntN(2 * mean))
				}
				inWindow := func(as []time.Duration) int {
					n := 0
					for _, a := range as {
						if a > at-window && a <= at {
							n++
						}
					}
					return n
				}
				in, ok := inWindow(arrivals), inWindow(admitted)
				arrivals = append(arrivals, at)
				wantMax = max(wantMax, in+1)
				now := start.Add(at)
				want := ok < capacity
				if want {
					admitted = append(admitted, at)
				}
				// Its on-time instant: up to 3 mean steps earlier, so they
				// come out of order (a simulator that woke up late).
				// Even seeds in whole 10 ms again, to land on window edges.
				onTime := at - time.Duration(rng.IntN(3*mean+1))
				if seed%2 == 0 {
					onTime = at - time.Duration(rng.IntN(3*mean/int(10*time.Millisecond)+1))*10*time.Millisecond
				}
				onTimes = append(onTimes, onTime)
				// Read up to 2 mean steps before it.
				latency := time.Duration(rng.IntN(2*mean + 1))
				reads = append(reads, onTime-latency)
				if got := m.arrive(func() time.Time { return now }, stamp{read: start.Add(onTime - latency), latency: latency}); got != want {
					t.Fatalf("arrival %d at %v with %d admitted in the window, cap %d: allowed %v, want %v", len(arrivals), at, ok, capacity, got, want)
				}
			}
			var st Stats
			m.fill(&st, start)
			if st.MaxInAnyWindow != wantMax {
				t.Errorf("MaxInAnyWindow = %d, want %d", st.MaxInAnyWindow, wantMax)
			}
			most := func(offs []time.Duration, w time.Duration) int {
				best := 0
				for _, end := range offs {
					n := 0
					for _, o := range offs {
						if o > end-w && o <= end {
							n++
						}
					}
					best = max(best, n)
				}
				return best
			}
			if want := most(onTimes, window); st.MaxInAnyWindowOnTime != want {
				t.Errorf("MaxInAnyWindowOnTime = %d, want %d", st.MaxInAnyWindowOnTime, want)
			}
			if want := most(reads, window); st.MaxReadsInAnyWindow != want {
				t.Errorf("MaxReadsInAnyWindow = %d, want %d", st.MaxReadsInAnyWindow, want)
			}
			if want := most(reads, window/10); st.MaxReadsIn100ms != want {
				t.Errorf("MaxReadsIn100ms = %d, want %d", st.MaxReadsIn100ms, want)
			}
			sum := 0
			for _, n := range st.PerSecond {
				sum += n
			}
			if sum != len(arrivals) || st.Counted != int64(len(arrivals)) {
				t.Errorf("PerSecond sums to %d, Counted %d, want %d", sum, st.Counted, len(arrivals))
			}
		})
	}
}

func TestMeterClockBackwards(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_700_000_000, 0)
	m := newMeter(10, time.Second, start)
	for _, at := range []time.Duration{2 * time.Second, time.Second, -time.Hour} {
		now := start.Add(at)
		m.arrive(func() time.Time { return now }, stamp{})
	}
	var st Stats
	m.fill(&st, start)
	if st.MaxInAnyWindow != 3 || !equalInts(st.PerSecond, []int{0, 0, 3}) {
		t.Errorf("MaxInAnyWindow %d PerSecond %v, want 3 and [0 0 3]: a clock going back stands still", st.MaxInAnyWindow, st.PerSecond)
	}
}

// TestConcurrency runs many calls at one instant from many goroutines over
// real HTTP, with Stats, SetFaults and Fate read and written meanwhile.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	const (
		capacity   = 50
		goroutines = 16
		perG       = 20
	)
	s, _ := newTestSim(t, func(c *Config) { c.Cap = capacity })
	srv := newHTTPServer(t, s)
	q := query(t, nil)

	codes := make(chan int, goroutines*perG)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				codes <- postRecall(t, srv.URL, q, "a", "b", fmt.Sprintf("%d_%d_0", g, i))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_ = s.Stats()
			s.SetFaults(Faults{})
			_ = s.Fate("a", "b", "1_1_0")
		}
	})
	wg.Wait()
	close(codes)
	byCode := map[int]int{}
	for c := range codes {
		byCode[c]++
	}
	if byCode[codeOK] != capacity || byCode[codeRateLimited] != goroutines*perG-capacity {
		t.Errorf("codes %v, want %d OK and %d 60007", byCode, capacity, goroutines*perG-capacity)
	}
	st := s.Stats()
	if st.MaxInAnyWindow != goroutines*perG || !equalInts(st.PerSecond, []int{goroutines * perG}) {
		t.Errorf("MaxInAnyWindow %d PerSecond %v, want %d", st.MaxInAnyWindow, st.PerSecond, goroutines*perG)
	}

	t.Run("one message recalled concurrently is recalled once", func(t *testing.T) {
		s.Reset()
		var wg sync.WaitGroup
		for range capacity {
			wg.Go(func() { postRecall(t, srv.URL, q, "x", "y", "5_5_5") })
		}
		wg.Wait()
		fate := s.Fate("x", "y", "5_5_5")
		if len(fate) != capacity || fate[0] != codeOK {
			t.Fatalf("Fate = %v, want 0 then 20023s, %d in all", fate, capacity)
		}
		for _, c := range fate[1:] {
			if c != codeAlreadyRecalled {
				t.Fatalf("Fate = %v, want 0 then only 20023s", fate)
			}
		}
	})
}

// postRecall sends one recall over HTTP and returns its ErrorCode.
func postRecall(t testing.TB, base, q, from, to, msgKey string) int {
	t.Helper()
	u, _ := url.Parse(base + APIPath + "?" + q)
	rep := httpDo(t, http.MethodPost, u.String(), recallJSON(from, to, msgKey))
	var res result
	decodeJSON(t, rep, &res)
	return res.ErrorCode
}

func TestMaxWindowEnd(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, func(c *Config) { c.Cap = 10 })
	q := query(t, nil)
	if st := s.Stats(); !st.MaxWindowEnd.IsZero() {
		t.Fatalf("MaxWindowEnd %v before any call, want zero", st.MaxWindowEnd)
	}
	recall(t, s, q, "a", "b", "1_1_1")
	clock.Advance(2 * time.Second)
	busy := clock.Now()
	recall(t, s, q, "a", "b", "2_1_1")
	recall(t, s, q, "a", "b", "3_1_1")
	clock.Advance(2 * time.Second)
	recall(t, s, q, "a", "b", "4_1_1")
	recall(t, s, q, "a", "b", "5_1_1") // as busy, not busier: the first stays
	st := s.Stats()
	if st.MaxInAnyWindow != 2 || !st.MaxWindowEnd.Equal(busy) {
		t.Errorf("max %d ending at %v, want 2 ending at %v", st.MaxInAnyWindow, st.MaxWindowEnd, busy)
	}
}

// TestTheRootIsNoCall: a worker's preconnect (HEAD / before its first
// calls) is answered 404 at once and counted as no call: it must not eat
// into the cap the benchmark measures.
func TestTheRootIsNoCall(t *testing.T) {
	sim, _ := newTestSim(t, nil)
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, httptest.NewRequest(method, "/", nil))
		if w.Code != http.StatusNotFound {
			t.Errorf("%s / answered %d, want 404", method, w.Code)
		}
	}
	if st := sim.Stats(); st.Calls != 0 || st.HTTPErrors != 0 {
		t.Errorf("Stats after two requests for the root: %d calls, %d HTTP errors; want none", st.Calls, st.HTTPErrors)
	}
}
