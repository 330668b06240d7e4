package imsim

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestOutsideLoadSharesTheCap: a steady outside caller of the same app
// takes its share of the cap, evenly spread, and is counted apart from the
// server's own requests.
func TestOutsideLoadSharesTheCap(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, func(c *Config) { c.Cap = 10; c.OutsideRate = 5 })
	q := query(t, nil)
	clock.Advance(900 * time.Millisecond) // outside calls at 0, 0.2 ... 0.8 s: 5 in the window
	var got []int
	for i := range 6 {
		got = append(got, recall(t, s, q, "a", "b", fmt.Sprintf("%d_0_0", i)))
	}
	if want := []int{0, 0, 0, 0, 0, codeRateLimited}; !equalInts(got, want) {
		t.Errorf("own calls beside 5 outside ones, cap 10: codes %v, want %v", got, want)
	}
	st := s.Stats()
	if st.OutsideRate != 5 || st.OutsideCalls != 5 || st.OutsideRejected60007 != 0 {
		t.Errorf("outside: rate %v, %d calls, %d refused; want 5/s, 5 calls, none refused", st.OutsideRate, st.OutsideCalls, st.OutsideRejected60007)
	}
	if st.Counted != 6 || st.Rejected60007 != 1 || st.ByCode[codeRateLimited] != 1 || !equalInts(st.PerSecond, []int{6}) {
		t.Errorf("own: %d counted, %d refused, by code %v, per second %v; want 6, 1, one 60007, [6]", st.Counted, st.Rejected60007, st.ByCode, st.PerSecond)
	}
	if st.MaxInAnyWindow != 11 {
		t.Errorf("MaxInAnyWindow = %d, want 11: every arrival, the outside ones included", st.MaxInAnyWindow)
	}
}

// TestOutsideCallsRefusedDoNotCount: an outside call that meets the cap is
// refused and, like any refused call, takes nothing from the next second.
func TestOutsideCallsRefusedDoNotCount(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, func(c *Config) { c.Cap = 3; c.OutsideRate = 5 })
	q := query(t, nil)
	// At 0: the outside call, then 3 own calls: the third is refused.
	var got []int
	for i := range 3 {
		got = append(got, recall(t, s, q, "a", "b", fmt.Sprintf("%d_0_0", i)))
	}
	if want := []int{0, 0, codeRateLimited}; !equalInts(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
	// The outside calls at 0.2 ... 0.8 s meet a full window: refused.
	clock.Advance(900 * time.Millisecond)
	if st := s.Stats(); st.OutsideCalls != 5 || st.OutsideRejected60007 != 4 {
		t.Fatalf("outside: %d calls, %d refused; want 5 and 4", st.OutsideCalls, st.OutsideRejected60007)
	}
	// At 1 s the admitted calls of 0 s have left; the refused ones of
	// 0.2-0.8 s never counted: the outside call at 1 s and two own calls fit.
	clock.Advance(100 * time.Millisecond)
	got = nil
	for i := range 3 {
		got = append(got, recall(t, s, q, "a", "b", fmt.Sprintf("%d_1_0", i)))
	}
	if want := []int{0, 0, codeRateLimited}; !equalInts(got, want) {
		t.Errorf("at 1 s: codes %v, want %v (refused calls must not count toward the cap)", got, want)
	}
	if st := s.Stats(); st.OutsideCalls != 6 || st.OutsideRejected60007 != 4 {
		t.Errorf("outside: %d calls, %d refused; want 6 and 4", st.OutsideCalls, st.OutsideRejected60007)
	}
}

// TestOutsideRateIsEven: at 50/s the outside caller calls every 20 ms, from
// when the rate was set.
func TestOutsideRateIsEven(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	clock.Advance(5 * time.Second) // no outside load: nothing counted
	if err := s.SetOutsideRate(50); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		advance time.Duration
		want    int64
	}{
		{0, 1},                       // at once
		{19 * time.Millisecond, 1},   // not yet the second
		{time.Millisecond, 2},        // 20 ms
		{979 * time.Millisecond, 50}, // 0.999 s: 0, 20 ... 980 ms
	} {
		clock.Advance(step.advance)
		if st := s.Stats(); st.OutsideCalls != step.want {
			t.Fatalf("after %s more: %d outside calls, want %d", step.advance, st.OutsideCalls, step.want)
		}
	}
	if err := s.SetOutsideRate(0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if st := s.Stats(); st.OutsideCalls != 50 || st.OutsideRate != 0 {
		t.Errorf("stopped: %d outside calls at rate %v, want still 50 at 0", st.OutsideCalls, st.OutsideRate)
	}
}

func TestOutsideControl(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, func(c *Config) { c.OutsideRate = 10 })
	srv := newHTTPServer(t, s)
	var got map[string]float64
	rep := httpDo(t, http.MethodPost, srv.URL+"/sim/outside", `{"rate": 50}`)
	decodeJSON(t, rep, &got)
	if rep.status != http.StatusOK || got["rate"] != 50 || s.OutsideRate() != 50 {
		t.Errorf("POST {rate: 50}: HTTP %d %v, rate in force %v; want 200 and 50", rep.status, got, s.OutsideRate())
	}
	for _, body := range []string{`{"rate": -1}`, `{}`, `{"rate": 1e9}`, `nope`} {
		if rep := httpDo(t, http.MethodPost, srv.URL+"/sim/outside", body); rep.status != http.StatusBadRequest {
			t.Errorf("POST %s: HTTP %d, want 400", body, rep.status)
		}
	}
	if s.OutsideRate() != 50 {
		t.Errorf("after bad requests the rate is %v, want 50 unchanged", s.OutsideRate())
	}
	s.Reset()
	rep = httpDo(t, http.MethodGet, srv.URL+"/sim/outside", "")
	decodeJSON(t, rep, &got)
	if got["rate"] != 10 {
		t.Errorf("after Reset GET /sim/outside = %v, want the Config's 10", got)
	}
	if _, err := New(Config{SDKAppID: testAppID, SecretKey: testKey, OutsideRate: -5}); !errors.Is(err, ErrConfig) {
		t.Errorf("New with OutsideRate -5: %v, want ErrConfig", err)
	}
}
