package tim

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injected clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stubGenerator produces "sig-1", "sig-2"... and counts its calls. If gate
// is set, each call first signals entered and then waits for gate.
type stubGenerator struct {
	calls   atomic.Int64
	fail    atomic.Bool
	gate    chan struct{}
	entered chan struct{}
}

func (g *stubGenerator) generate() (string, error) {
	n := g.calls.Add(1)
	if g.gate != nil {
		select {
		case g.entered <- struct{}{}:
		default: // only the first entry is awaited
		}
		<-g.gate
	}
	if g.fail.Load() {
		return "", errors.New("generator failed")
	}
	return "sig-" + strconv.FormatInt(n, 10), nil
}

// recorder records the reasons passed to onGenerate.
type recorder struct {
	mu      sync.Mutex
	reasons []string
}

func (r *recorder) record(_ context.Context, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons = append(r.reasons, reason)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

func newTestCache(clock *fakeClock, gen *stubGenerator, rec *recorder) *sigCache {
	return &sigCache{
		generate:   gen.generate,
		now:        clock.Now,
		lifetime:   48 * time.Hour,
		refresh:    24 * time.Hour,
		onGenerate: rec.record,
	}
}

func mustGet(t *testing.T, s *sigCache) string {
	t.Helper()
	sig, err := s.get(context.Background())
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return sig.value
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSigCacheRefreshByAge(t *testing.T) {
	// lifetime 48h, refresh 24h: the UserSig is regenerated once less than
	// 24h of it remains, i.e. from 24h after it was issued.
	tests := []struct {
		name       string
		age        time.Duration
		wantSig    string
		wantReason []string
	}{
		{"new sig is reused", 0, "sig-1", []string{"initial"}},
		{"reused until the refresh window", 24*time.Hour - time.Nanosecond, "sig-1", []string{"initial"}},
		{"regenerated when refresh remains", 24 * time.Hour, "sig-2", []string{"initial", "age"}},
		{"regenerated late in the window", 47 * time.Hour, "sig-2", []string{"initial", "age"}},
		{"regenerated once expired", 48 * time.Hour, "sig-2", []string{"initial", "expired"}},
		{"regenerated long after expiry", 1000 * time.Hour, "sig-2", []string{"initial", "expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock, gen, rec := newFakeClock(), &stubGenerator{}, &recorder{}
			s := newTestCache(clock, gen, rec)
			if got := mustGet(t, s); got != "sig-1" {
				t.Fatalf("first get = %q, want sig-1", got)
			}
			clock.Advance(tt.age)
			if got := mustGet(t, s); got != tt.wantSig {
				t.Errorf("get after %v = %q, want %q", tt.age, got, tt.wantSig)
			}
			if got := mustGet(t, s); got != tt.wantSig {
				t.Errorf("get again = %q, want %q (no further generation)", got, tt.wantSig)
			}
			if got := rec.get(); !equalStrings(got, tt.wantReason) {
				t.Errorf("reasons = %v, want %v", got, tt.wantReason)
			}
		})
	}
}

func TestSigCacheInvalidate(t *testing.T) {
	clock, gen, rec := newFakeClock(), &stubGenerator{}, &recorder{}
	s := newTestCache(clock, gen, rec)

	s.invalidate(0, SigReasonInvalidated) // nothing to invalidate yet
	first, err := s.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.invalidate(first.seq, SigReason70001)
	if got := mustGet(t, s); got != "sig-2" {
		t.Fatalf("after invalidating sig-1: %q, want sig-2", got)
	}
	// Late reports about sig-1 do not throw away sig-2.
	s.invalidate(first.seq, SigReason70001)
	s.invalidate(first.seq, SigReason70001)
	if got := mustGet(t, s); got != "sig-2" {
		t.Fatalf("after stale invalidations: %q, want sig-2", got)
	}
	// InvalidateSig (seq 0) invalidates whatever is current; repeated calls
	// before the next get cost one generation.
	s.invalidate(0, SigReasonInvalidated)
	s.invalidate(0, SigReasonInvalidated)
	if got := mustGet(t, s); got != "sig-3" {
		t.Fatalf("after invalidate(0): %q, want sig-3", got)
	}
	want := []string{"initial", "70001", "invalidated"}
	if got := rec.get(); !equalStrings(got, want) {
		t.Errorf("reasons = %v, want %v", got, want)
	}
}

func TestSigCacheConcurrentFirstUseGeneratesOnce(t *testing.T) {
	clock, rec := newFakeClock(), &recorder{}
	gen := &stubGenerator{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	s := newTestCache(clock, gen, rec)

	const n = 200
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Go(func() {
			sig, err := s.get(context.Background())
			if err != nil {
				t.Errorf("get: %v", err)
			}
			got[i] = sig.value
		})
	}
	<-gen.entered // one goroutine generates; the others wait for it
	close(gen.gate)
	wg.Wait()
	if c := gen.calls.Load(); c != 1 {
		t.Errorf("generations = %d, want 1", c)
	}
	for i, v := range got {
		if v != "sig-1" {
			t.Fatalf("goroutine %d got %q, want sig-1", i, v)
		}
	}
}

func TestSigCacheRefreshServesOldSigMeanwhile(t *testing.T) {
	clock, rec := newFakeClock(), &recorder{}
	gen := &stubGenerator{}
	s := newTestCache(clock, gen, rec)
	mustGet(t, s)

	// Into the refresh window, with a generator that blocks.
	clock.Advance(30 * time.Hour)
	gen.gate, gen.entered = make(chan struct{}), make(chan struct{}, 1)
	refreshed := make(chan string)
	go func() {
		sig, _ := s.get(context.Background())
		refreshed <- sig.value
	}()
	<-gen.entered

	// Everyone else keeps using sig-1, still valid, without waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			sig, err := s.get(ctx)
			if err != nil || sig.value != "sig-1" {
				t.Errorf("get during refresh = %q, %v; want sig-1, nil", sig.value, err)
			}
		})
	}
	wg.Wait()

	close(gen.gate)
	if got := <-refreshed; got != "sig-2" {
		t.Errorf("refreshing goroutine got %q, want sig-2", got)
	}
	if got := mustGet(t, s); got != "sig-2" {
		t.Errorf("after refresh: %q, want sig-2", got)
	}
	if c := gen.calls.Load(); c != 2 {
		t.Errorf("generations = %d, want 2", c)
	}
}

func TestSigCacheWaitsWhenNoValidSig(t *testing.T) {
	clock, rec := newFakeClock(), &recorder{}
	gen := &stubGenerator{}
	s := newTestCache(clock, gen, rec)
	mustGet(t, s)
	s.invalidate(0, SigReasonInvalidated)

	gen.gate, gen.entered = make(chan struct{}), make(chan struct{}, 1)
	refreshed := make(chan string)
	go func() {
		sig, _ := s.get(context.Background())
		refreshed <- sig.value
	}()
	<-gen.entered

	// sig-1 is invalid: a caller must wait, so one whose context is already
	// done gets the context's error rather than sig-1.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if sig, err := s.get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("get with cancelled ctx during regeneration = %q, %v; want context.Canceled", sig.value, err)
	}

	waiter := make(chan string)
	go func() {
		sig, _ := s.get(context.Background())
		waiter <- sig.value
	}()
	close(gen.gate)
	if got := <-refreshed; got != "sig-2" {
		t.Errorf("refreshing goroutine got %q, want sig-2", got)
	}
	if got := <-waiter; got != "sig-2" {
		t.Errorf("waiting goroutine got %q, want sig-2", got)
	}
	if c := gen.calls.Load(); c != 2 {
		t.Errorf("generations = %d, want 2", c)
	}
}

func TestSigCacheGeneratorFailure(t *testing.T) {
	t.Run("no sig yet: the error is returned, the next call tries again", func(t *testing.T) {
		clock, gen, rec := newFakeClock(), &stubGenerator{}, &recorder{}
		s := newTestCache(clock, gen, rec)
		gen.fail.Store(true)
		if _, err := s.get(context.Background()); err == nil {
			t.Fatal("get with failing generator: nil error")
		}
		gen.fail.Store(false)
		if got := mustGet(t, s); got != "sig-2" {
			t.Errorf("get after recovery = %q, want sig-2", got)
		}
		if got := rec.get(); !equalStrings(got, []string{"initial"}) {
			t.Errorf("reasons = %v, want [initial]", got)
		}
	})
	t.Run("refresh fails: the still valid sig is used", func(t *testing.T) {
		clock, gen, rec := newFakeClock(), &stubGenerator{}, &recorder{}
		s := newTestCache(clock, gen, rec)
		mustGet(t, s)
		clock.Advance(30 * time.Hour)
		gen.fail.Store(true)
		if got := mustGet(t, s); got != "sig-1" {
			t.Errorf("get = %q, want sig-1", got)
		}
		gen.fail.Store(false)
		if got := mustGet(t, s); got != "sig-3" {
			t.Errorf("get after recovery = %q, want sig-3", got)
		}
	})
	t.Run("waiters get the error", func(t *testing.T) {
		clock, rec := newFakeClock(), &recorder{}
		gen := &stubGenerator{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		s := newTestCache(clock, gen, rec)
		gen.fail.Store(true)
		errs := make(chan error, 2)
		go func() { _, err := s.get(context.Background()); errs <- err }()
		<-gen.entered
		go func() { _, err := s.get(context.Background()); errs <- err }()
		close(gen.gate)
		for range 2 {
			if err := <-errs; err == nil {
				t.Error("get: nil error, want the generator's")
			}
		}
	})
}
