package campaign

import (
	"context"
	"fmt"
	"time"

	"github.com/recallq/recallq/worker"
)

// CancelResult says what cancel removed.
type CancelResult struct {
	// Backlog: rows removed before they were handed to asynq.
	Backlog int64
	// Queued: tasks removed from asynq's queue before they were called.
	Queued int
	// Retrying: tasks removed while waiting for a retry (called once or
	// more, failed, not to be called again).
	Retrying int
	// Ended: tasks that were being called and ended while cancel waited.
	Ended int
	// StillRunning: tasks still being called when cancel stopped waiting;
	// they end normally and are counted.
	StillRunning int
	// AlreadyCancelled: the campaign was cancelled before.
	AlreadyCancelled bool
}

// Removed is every row that will not be called (again) because of cancel.
func (r CancelResult) Removed() int64 { return r.Backlog + int64(r.Queued) + int64(r.Retrying) }

// Cancel removes every row of the campaign that has not been called:
// its backlog and its tasks queued in asynq, and the retries of tasks that
// failed. Tasks being called end normally (cancel waits up to CancelWait
// for them, then removes their retries too); those still being called when
// it stops waiting are watched by the feeder until they end, as a running
// campaign's are. It can be run again; a second run removes what the first
// could not. Errors: ErrNotFound, ErrState (the campaign is done), ErrBusy,
// the Redis error; wrapped.
func (m *Manager) Cancel(ctx context.Context, name string) (CancelResult, error) {
	moved, prev, err := m.setState(ctx, name, StateCancelled, StateRunning, StatePaused, StateCancelled)
	if err != nil {
		return CancelResult{}, err
	}
	if !moved {
		return CancelResult{}, fmt.Errorf("campaign %s: %w: it is %s, nothing is left to cancel", name, ErrState, prev)
	}
	res := CancelResult{AlreadyCancelled: prev == StateCancelled}
	k := keysFor(name)
	token := newToken()
	if err := waitLock(ctx, m.rdb, k.op, token, opTTL, m.cfg.OpWait); err != nil {
		return res, fmt.Errorf("campaign %s: cancelled (no more rows are fed), but its queued tasks could not be removed yet: %w", name, err)
	}
	defer unlock(m.rdb, k.op, token)
	if err := recoverParked(ctx, m.rdb, m.insp, name); err != nil {
		return res, err
	}
	n, err := dropBacklog(ctx, m.rdb, k)
	if err != nil {
		return res, fmt.Errorf("campaign %s: drop the backlog: %w", name, err)
	}
	res.Backlog = n
	win, err := m.rdb.HGetAll(ctx, k.window).Result()
	if err != nil {
		return res, fmt.Errorf("campaign %s: read the window: %w", name, err)
	}
	ids := make([]string, 0, len(win))
	for id := range win {
		ids = append(ids, id)
	}
	running, err := m.removeTasks(ctx, name, win, ids, &res)
	if err != nil {
		return res, err
	}
	deadline := time.Now().Add(m.cfg.CancelWait)
	for len(running) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var still []string
		for _, id := range running {
			in, err := m.rdb.HExists(ctx, k.window, id).Result()
			if err != nil {
				return res, fmt.Errorf("campaign %s: %w", name, err)
			}
			if !in {
				res.Ended++ // its end was recorded
				continue
			}
			still = append(still, id)
		}
		if running, err = m.removeTasks(ctx, name, win, still, &res); err != nil {
			return res, err
		}
	}
	res.StillRunning = len(running)
	// Out of the active set, unless tasks are left in the window (still
	// being called, or a dead letter run again by hand): the feeder watches
	// those until they end, so that one deleted or archived by hand in
	// asynq, or whose end the worker could not write, is counted.
	if err := leaveActive(ctx, m.rdb, name); err != nil {
		return res, fmt.Errorf("campaign %s: %w", name, err)
	}
	return res, nil
}

// removeTasks deletes the tasks ids of the window win (task ID -> row)
// from asynq's bulk queue and counts them as cancelled; it returns those
// that are being called.
func (m *Manager) removeTasks(ctx context.Context, name string, win map[string]string, ids []string, res *CancelResult) (running []string, err error) {
	k := keysFor(name)
	app, err := appOf(ctx, m.rdb, name)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := deleteTask(m.insp, app, id); err != nil {
			running = append(running, id) // active
			continue
		}
		v, err := countCancelled(ctx, m.rdb, k, id, rerunEnd(win[id], time.Now(), worker.NoAnswer, rerunDetail(fieldCancelled)))
		if err != nil {
			return nil, fmt.Errorf("campaign %s: count a cancelled task: %w", name, err)
		}
		switch v {
		case cancelWasQueued:
			res.Queued++
		case cancelWasRetrying:
			res.Retrying++
		}
	}
	return running, nil
}
