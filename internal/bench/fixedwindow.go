package bench

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/sleep"
)

// fixedWindowKey is the Redis key of the fixed-window counter of app id:
// the only key the benchmark's own limiters write (under the product's
// prefix, in a namespace of its own).
func fixedWindowKey(id uint64) string {
	return fmt.Sprintf("recallq:bench:{fw:%d}:count", id)
}

// fixedWindowScript is the fixed-window counter BullMQ's limiter keeps
// (its rate-limit TTL check, and the INCR as a job becomes active), in one
// round trip: when the window's counter has
// reached max, answer the window's PTTL (the caller waits that long and asks
// again); otherwise INCR it, PEXPIRE it by the window's length when this
// call opened it, and answer 0: go.
//
//	KEYS[1] counter, ARGV[1] max, ARGV[2] window ms
var fixedWindowScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl > 0 then
    return pttl
  end
  redis.call('DEL', KEYS[1])
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// fixedWindow is BullMQ's rate limiter, {max, duration}: one counter in
// Redis shared by every process. The window starts at the first call after
// the key expired, and every caller over the limit sleeps until the window
// ends and then asks again, all of them at once. It is the peers' approach
// the benchmark compares with, never the product's.
type fixedWindow struct {
	rdb    redis.UniversalClient
	key    string
	max    int
	window time.Duration
	trips  atomic.Int64 // Redis round trips of Wait
}

func newFixedWindow(rdb redis.UniversalClient, id uint64, max int, window time.Duration) *fixedWindow {
	return &fixedWindow{rdb: rdb, key: fixedWindowKey(id), max: max, window: window}
}

// Wait asks the counter until it lets the call go: one round trip, and one
// more after each sleep to the end of a full window.
func (f *fixedWindow) Wait(ctx context.Context, _ limiter.Lane) (limiter.Permit, error) {
	start := time.Now()
	for {
		f.trips.Add(1)
		v, err := fixedWindowScript.EvalSha(ctx, f.rdb, []string{f.key}, f.max, f.window.Milliseconds()).Int64()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			f.trips.Add(1)
			v, err = fixedWindowScript.Eval(ctx, f.rdb, []string{f.key}, f.max, f.window.Milliseconds()).Int64()
		}
		if err != nil {
			return limiter.Permit{}, fmt.Errorf("fixed window: %w", err)
		}
		if v == 0 {
			now := time.Now()
			return limiter.Permit{Slot: now, Waited: now.Sub(start)}, nil
		}
		if err := sleep.For(ctx, time.Duration(v)*time.Millisecond); err != nil {
			return limiter.Permit{}, err
		}
	}
}

// Observe does nothing: the window does not look at latency.
func (f *fixedWindow) Observe(limiter.Permit, time.Time) {}

// SlowDown is BullMQ's Worker.rateLimit(ms): it fills the window and makes
// it last d, so every process waits d.
func (f *fixedWindow) SlowDown(ctx context.Context, d time.Duration) error {
	if err := f.rdb.Set(ctx, f.key, math.MaxInt32, d).Err(); err != nil {
		return fmt.Errorf("fixed window: slow down: %w", err)
	}
	return nil
}

// waitRoundTrips returns the Redis round trips of Wait so far.
func (f *fixedWindow) waitRoundTrips() int64 { return f.trips.Load() }
