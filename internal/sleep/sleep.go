// Package sleep waits a duration unless the caller's context, or a
// component's shutdown, ends the wait first: the one timer-and-select that
// recallq's poll loops, pacing and simulated latencies share.
package sleep

import (
	"context"
	"time"
)

// For waits d, or until ctx ends. It returns nil after d, or ctx.Err()
// when ctx ended first; d <= 0 returns ctx.Err() at once.
func For(ctx context.Context, d time.Duration) error {
	return ForOr(ctx, d, nil, nil)
}

// ForOr is For that also ends when closed is closed (a component's
// shutdown), returning errClosed then. A nil closed never ends the wait.
func ForOr(ctx context.Context, d time.Duration, closed <-chan struct{}, errClosed error) error {
	if d <= 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-closed:
			return errClosed
		default:
			return nil
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-closed:
		return errClosed
	}
}
