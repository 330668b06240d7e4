package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the configuration-error circuit breaker.
const (
	// DefaultBreakerThreshold: this many configuration errors in a row
	// open the circuit.
	DefaultBreakerThreshold = 3
	// DefaultBreakerOpenMin and DefaultBreakerOpenMax bound how long the
	// app's calls stop while the circuit is open; each failed probe doubles
	// the pause.
	DefaultBreakerOpenMin = 5 * time.Second
	DefaultBreakerOpenMax = time.Minute
)

// breaker stops every call of the app, on every worker, after a run of
// configuration errors (a wrong key, a missing admin, a lapsed plan): every
// further call would fail the same way and only burn rate. It opens by
// pausing the shared limiter, so all workers stop together; the first call
// after the pause is the probe. A probe that meets the same error doubles the
// pause; any other answer closes the circuit. Tasks meanwhile wait for a slot
// or sit in the retry set: none is dead-lettered, none loses a retry.
type breaker struct {
	lim      Limiter
	now      func() time.Time
	onChange func(open bool, o Outcome)

	mu        sync.Mutex
	streak    int
	open      bool
	pause     time.Duration
	openUntil time.Time // calls answered before this were granted before the pause
	lastOut   Outcome
}

func newBreaker(lim Limiter, now func() time.Time, onChange func(bool, Outcome)) *breaker {
	return &breaker{lim: lim, now: now, onChange: onChange}
}

// failure notes a configuration error from the API.
func (b *breaker) failure(ctx context.Context, log *slog.Logger, o Outcome) {
	now := b.now()
	b.mu.Lock()
	var opened bool
	switch {
	case b.open && now.Before(b.openUntil):
		// A call granted before the circuit opened: not a probe.
		b.mu.Unlock()
		return
	case b.open:
		// The probe failed: stay open, twice as long.
		b.pause = min(2*b.pause, DefaultBreakerOpenMax)
	default:
		b.streak++
		if b.streak < DefaultBreakerThreshold {
			b.mu.Unlock()
			return
		}
		opened, b.open, b.pause = true, true, DefaultBreakerOpenMin
	}
	b.openUntil, b.lastOut = now.Add(b.pause), o
	pause := b.pause
	b.mu.Unlock()

	if err := b.lim.SlowDown(ctx, pause); err != nil {
		log.ErrorContext(ctx, "circuit breaker could not pause the shared limiter", "err", err)
	}
	log.ErrorContext(ctx, "circuit open: configuration error, every worker of the app stops calling",
		"code", o.Code, "meaning", o.Meaning, "fix", o.Fix, "probe_in", pause.String())
	if opened && b.onChange != nil {
		b.onChange(true, o)
	}
}

// success notes an answer that is not a configuration error.
func (b *breaker) success(ctx context.Context, log *slog.Logger) {
	b.mu.Lock()
	wasOpen := b.open
	b.streak, b.open, b.pause = 0, false, 0
	o := b.lastOut
	b.mu.Unlock()
	if wasOpen {
		log.InfoContext(ctx, "circuit closed: the API accepts our calls again", "after_code", o.Code)
		if b.onChange != nil {
			b.onChange(false, o)
		}
	}
}
