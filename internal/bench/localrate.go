package bench

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/sleep"
)

// localLimiter is the per-process limit that asynq's documentation
// recommends for rate limiting: each process runs its own
// golang.org/x/time/rate limiter at the cap divided by the number of
// processes, and nothing is shared. It is the peers' approach the benchmark
// compares with, never the product's.
//
// That recommendation's example gives the bucket a burst several times its
// rate; a burst lets a process send more than its share within one second, so the
// benchmark uses burst 1, the strictest spacing this design can have: what
// it still gets wrong (processes' phases drift into one another, and the
// share of a process that is not running is lost) is the design's, not the
// burst's. It waits for its token (rate.Limiter.Wait) instead of failing
// the task with a retry delay as the recipe does, which would only add the
// retry set's churn to the same schedule.
type localLimiter struct {
	lim   *rate.Limiter
	pause atomic.Int64 // unix ns: no call before it (SlowDown, this process only)
	now   func() time.Time
}

func newLocalLimiter(perSecond float64) *localLimiter {
	return &localLimiter{lim: rate.NewLimiter(rate.Limit(perSecond), 1), now: time.Now}
}

// Wait blocks until this process's own limiter gives a token.
func (l *localLimiter) Wait(ctx context.Context, _ limiter.Lane) (limiter.Permit, error) {
	start := l.now()
	if d := time.Unix(0, l.pause.Load()).Sub(start); d > 0 {
		if err := sleep.For(ctx, d); err != nil {
			return limiter.Permit{}, err
		}
	}
	if err := l.lim.Wait(ctx); err != nil {
		return limiter.Permit{}, err
	}
	now := l.now()
	return limiter.Permit{Slot: now, Waited: now.Sub(start)}, nil
}

// Observe does nothing: the per-process recipe does not look at latency.
func (l *localLimiter) Observe(limiter.Permit, time.Time) {}

// SlowDown pauses this process only: the recipe has nothing to share a
// pause through.
func (l *localLimiter) SlowDown(_ context.Context, d time.Duration) error {
	until := l.now().Add(d).UnixNano()
	for {
		cur := l.pause.Load()
		if cur >= until || l.pause.CompareAndSwap(cur, until) {
			return nil
		}
	}
}
