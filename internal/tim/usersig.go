package tim

import (
	"context"
	"sync"
	"time"
)

// Reasons given to Config.OnSigRefresh for generating a UserSig.
const (
	// SigReasonInitial: the first UserSig of the client.
	SigReasonInitial = "initial"
	// SigReasonAge: less than Config.SigRefresh of the UserSig's lifetime remained.
	SigReasonAge = "age"
	// SigReasonExpired: the UserSig had outlived Config.SigLifetime (the client
	// was idle through the whole refresh window).
	SigReasonExpired = "expired"
	// SigReasonInvalidated: InvalidateSig was called.
	SigReasonInvalidated = "invalidated"
	// SigReason70001: Tencent answered 70001 (UserSig expired) to a request
	// made with the UserSig.
	SigReason70001 = "70001"
	// SigReasonRefused: Tencent answered 60004 or 60005 (account or
	// signature check failed) to a request made with the UserSig.
	SigReasonRefused = "refused"
)

// sigCache holds the admin's UserSig, shared by every request of a Client.
//
// One goroutine at a time generates a UserSig. While it does, the others use
// the current UserSig if it is still valid (it is only due for refresh) and
// otherwise wait for the new one, so a burst of requests never causes a burst
// of generations. All decisions use the injected clock.
type sigCache struct {
	generate func() (string, error)
	now      func() time.Time
	lifetime time.Duration
	refresh  time.Duration
	// onGenerate is called after each successful generation, by the
	// generating goroutine, never concurrently with itself.
	onGenerate func(ctx context.Context, reason string)

	mu      sync.Mutex
	cur     cachedSig // seq == 0 until the first generation
	prev    string    // the value cur replaced, kept for redaction
	invalid string    // non-empty: cur must not be used; the reason to report
	flight  *sigFlight
	seq     uint64
}

// cachedSig is one generated UserSig.
type cachedSig struct {
	value  string
	issued time.Time // by the injected clock, taken just before generation
	seq    uint64    // 1 for the first UserSig, then 2, ...
}

// sigFlight is a generation in progress.
type sigFlight struct {
	done chan struct{} // closed when the generation ends
	err  error         // its error, readable once done is closed
}

// get returns a UserSig that is valid now, generating one if needed.
// It returns ctx's error if ctx ends while it waits for another goroutine's
// generation, and the generator's error if the generation it needed failed.
func (s *sigCache) get(ctx context.Context) (cachedSig, error) {
	for {
		s.mu.Lock()
		now := s.now()
		cur := s.cur
		fresh, usable := s.stateLocked(now)
		if fresh {
			s.mu.Unlock()
			return cur, nil
		}
		if f := s.flight; f != nil {
			s.mu.Unlock()
			if usable {
				return cur, nil // still valid; the refresh is under way
			}
			select {
			case <-f.done:
				if f.err != nil {
					return cachedSig{}, f.err
				}
				continue
			case <-ctx.Done():
				return cachedSig{}, ctx.Err()
			}
		}
		reason := s.reasonLocked(now)
		f := &sigFlight{done: make(chan struct{})}
		s.flight = f
		s.mu.Unlock()

		sig, err := s.runFlight(f, now)
		if err != nil {
			if usable {
				return cur, nil // keep using it; the next call tries again
			}
			return cachedSig{}, err
		}
		if s.onGenerate != nil {
			s.onGenerate(ctx, reason)
		}
		return sig, nil
	}
}

// runFlight generates a UserSig for flight f, stores it and ends f, even if
// the generator panics.
func (s *sigCache) runFlight(f *sigFlight, now time.Time) (sig cachedSig, err error) {
	defer func() {
		s.mu.Lock()
		s.flight = nil
		f.err = err
		if err == nil {
			s.seq++
			if s.cur.value != "" {
				s.prev = s.cur.value
			}
			s.cur = cachedSig{value: sig.value, issued: now, seq: s.seq}
			s.invalid = ""
			sig = s.cur
		}
		s.mu.Unlock()
		close(f.done)
	}()
	err = errGeneratorPanicked // what waiters see if generate panics
	sig.value, err = s.generate()
	return sig, err
}

// stateLocked says whether cur may be used without refreshing (fresh) and
// whether it may be used at all (usable).
func (s *sigCache) stateLocked(now time.Time) (fresh, usable bool) {
	if s.cur.seq == 0 || s.invalid != "" {
		return false, false
	}
	fresh = now.Before(s.cur.issued.Add(s.lifetime - s.refresh))
	usable = now.Before(s.cur.issued.Add(s.lifetime))
	return fresh, usable
}

func (s *sigCache) reasonLocked(now time.Time) string {
	switch {
	case s.cur.seq == 0:
		return SigReasonInitial
	case s.invalid != "":
		return s.invalid
	case !now.Before(s.cur.issued.Add(s.lifetime)):
		return SigReasonExpired
	default:
		return SigReasonAge
	}
}

// invalidate marks the UserSig number seq unusable, so that the next get
// generates a new one. It does nothing if that UserSig has already been
// replaced, so many requests reporting the same bad UserSig cause a single
// generation. seq 0 means whichever UserSig is current.
// invalidate marks the current UserSig for regeneration if it is the one
// numbered seq (0: whichever is current). It reports whether it did.
func (s *sigCache) invalidate(seq uint64, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.seq != 0 && (seq == 0 || seq == s.cur.seq) && s.invalid == "" {
		s.invalid = reason
		return true
	}
	return false
}

// secrets returns the UserSigs that may appear in text: the current one and
// the one before it.
func (s *sigCache) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []string{s.cur.value, s.prev}
}
