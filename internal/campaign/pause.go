package campaign

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// PauseResult says what pause did.
type PauseResult struct {
	// Returned: tasks taken out of asynq (queued or waiting for a retry)
	// and put back at the head of the backlog.
	Returned int
	// Running: tasks being called when the pause came; they end normally.
	Running int
	// AlreadyPaused: the campaign was paused before.
	AlreadyPaused bool
}

// Pause stops feeding the campaign and takes every task of it that no
// worker has taken yet out of asynq, back to the head of its backlog. The
// Running ones (taken by a worker: being called, or waiting in the worker
// for a slot of the limiter; at most the workers' concurrency plus what they
// take during the sweep) are called and end normally; after them nothing
// of the campaign is called until Resume. Errors: ErrNotFound, ErrState
// (cancelled or done), ErrBusy, the Redis error; wrapped.
func (m *Manager) Pause(ctx context.Context, name string) (PauseResult, error) {
	moved, prev, err := m.setState(ctx, name, StatePaused, StateRunning, StatePaused)
	if err != nil {
		return PauseResult{}, err
	}
	if !moved {
		return PauseResult{}, fmt.Errorf("campaign %s: %w: it is %s", name, ErrState, prev)
	}
	res := PauseResult{AlreadyPaused: prev == StatePaused}
	k := keysFor(name)
	token := newToken()
	if err := waitLock(ctx, m.rdb, k.op, token, opTTL, m.cfg.OpWait); err != nil {
		return res, fmt.Errorf("campaign %s: paused, but its tasks in asynq could not be pulled back yet: %w", name, err)
	}
	defer unlock(m.rdb, k.op, token)
	if err := recoverParked(ctx, m.rdb, m.insp, name); err != nil {
		return res, err
	}
	// A batch cut short by a crashed feeder is still at the head of the
	// backlog: its tasks are only deleted, the rows are there already.
	md, err := readMeta(ctx, m.rdb, name)
	if err != nil {
		return res, err
	}
	inBacklog := map[string]bool{}
	if md.feeding > 0 {
		rows, err := m.rdb.LRange(ctx, k.backlog, 0, md.feeding-1).Result()
		if err != nil {
			return res, fmt.Errorf("campaign %s: read the backlog: %w", name, err)
		}
		for _, s := range rows {
			if id, ok := taskIDOf(md, s); ok {
				inBacklog[id] = true
			}
		}
	}
	win, err := m.rdb.HGetAll(ctx, k.window).Result()
	if err != nil {
		return res, fmt.Errorf("campaign %s: read the window: %w", name, err)
	}
	park := map[string]any{}
	for id, row := range win {
		if !inBacklog[id] {
			park[id] = row
		}
	}
	if len(park) > 0 {
		// Parked first: a pause that dies after deleting a task but before
		// putting its row back leaves the row here, and the next pause,
		// cancel or feeder pass puts it back.
		if err := m.rdb.HSet(ctx, k.parked, park).Err(); err != nil {
			return res, fmt.Errorf("campaign %s: park the window: %w", name, err)
		}
	}
	var deleted, kept []any
	for id := range win {
		switch err := deleteTask(m.insp, md.sdkAppID, id); {
		case err == nil:
			if inBacklog[id] {
				if err := m.rdb.HDel(ctx, k.window, id).Err(); err != nil {
					return res, fmt.Errorf("campaign %s: %w", name, err)
				}
				continue
			}
			deleted = append(deleted, id)
		default: // active: it ends on its own
			res.Running++
			if !inBacklog[id] {
				kept = append(kept, id)
			}
		}
	}
	n, err := unpark(ctx, m.rdb, name, deleted, kept)
	res.Returned = n
	return res, err
}

// recoverParked finishes a pause that died midway: a parked task that is
// gone from asynq has its row put back; one still there stays.
func recoverParked(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, name string) error {
	ids, err := rdb.HKeys(ctx, keysFor(name).parked).Result()
	if err != nil || len(ids) == 0 {
		return err
	}
	app, err := appOf(ctx, rdb, name)
	if err != nil {
		return err
	}
	var gone, there []any
	for _, id := range ids {
		_, err := taskInfo(insp, app, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound):
			gone = append(gone, id)
		case err != nil:
			return fmt.Errorf("campaign %s: look up parked task %s: %w", name, id, err)
		default:
			there = append(there, id)
		}
	}
	_, err = unpark(ctx, rdb, name, gone, there)
	return err
}

// taskIDOf is the task ID a stored row becomes.
func taskIDOf(md meta, s string) (string, bool) {
	r, err := decodeRow(s)
	if err != nil {
		return "", false
	}
	id, err := r.taskID(md.sdkAppID)
	return id, err == nil
}

// Resume feeds a paused campaign again. Errors: ErrNotFound, ErrState
// (cancelled or done); wrapped. Resuming a running campaign changes
// nothing but puts it in the active set if it is missing there (a
// Recorder that reopened it could not: Recorder.reactivate).
func (m *Manager) Resume(ctx context.Context, name string) (wasPaused bool, err error) {
	moved, prev, err := m.setState(ctx, name, StateRunning, StatePaused, StateRunning)
	if err != nil {
		return false, err
	}
	if !moved {
		return false, fmt.Errorf("campaign %s: %w: it is %s", name, ErrState, prev)
	}
	if err := activate(ctx, m.rdb, name); err != nil {
		return false, err
	}
	return prev == StatePaused, nil
}
