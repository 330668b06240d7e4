package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// What operators do with asynq's own tools (asynqmon, the asynq CLI) to a
// campaign's tasks, and how the campaign's records follow:
//
//   - run an archived (dead-lettered) task: the Recorder sees its end and,
//     finding it among the campaign's dead letters, moves it from
//     dead-lettered to how it ended now; the audit keeps the dead letter
//     and gains a row saying how the re-run ended (recorder.go). A re-run
//     that will run again (retrying, kept) is back in the window, marked
//     as a re-run until it ends, so that its end gains that row at
//     whichever attempt: a done campaign is running again until it ends,
//     a cancelled one stays cancelled, and syncWindow watches it
//     (recordScript);
//   - archive a queued or retrying task: syncWindow counts it dead-lettered
//     ("archived by hand") and audits it;
//   - delete a queued or retrying task: syncWindow counts it as deleted;
//   - run a retrying task now: it counts as queued, not retrying, until it
//     ends or fails again;
//   - delete a dead letter or a completed task: nothing to change (its end
//     was recorded already; the audit keeps the dead letter);
//   - pause the bulk queue: the feeder stops feeding and status says why.
//
// The feeder runs syncWindow every SyncInterval for every campaign with
// tasks in asynq, holding the campaign's op lock so that it never sees a
// task that a feeder batch, a pause or a cancel is moving.

// bulkPaused reports whether asynq's bulk queue of the app is paused.
func bulkPaused(ctx context.Context, rdb redis.UniversalClient, app uint64) (bool, error) {
	n, err := rdb.Exists(ctx, asynqPausedKey(tasks.AppQueue(tasks.QueueBulk, app))).Result()
	return n == 1, err
}

// Details of audit rows written when asynq's tools acted.
const (
	detailArchivedByHand = "archived by hand (dashboard or asynq CLI) before it ended"
	detailRecordedLate   = "recorded late (the worker's write failed)"
	detailRerunPrefix    = "run again by hand after it was dead-lettered: "
)

// rerunDetail is the detail of the audit row of a dead letter run again by
// hand that ended as fate, a counts field (recalled, already_recalled).
func rerunDetail(fate string) string { return detailRerunPrefix + strings.ReplaceAll(fate, "_", " ") }

// syncWindow checks each task of the campaign's window against asynq and
// settles those that left it without a recorded end: archived by hand
// (dead-lettered, audited), deleted by hand (deleted), completed or
// dead-lettered by a worker whose write failed (counted from the task's
// result or error). Tasks still alive, and tasks asynq archived on their
// last attempt for a reason not their own (the worker puts them back), are
// left alone. app is the campaign's (its record's sdkappid). It returns how
// many it settled. Call it holding the op lock.
func syncWindow(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, name string, app uint64) (int, error) {
	k := keysFor(name)
	win, err := rdb.HGetAll(ctx, k.window).Result()
	if err != nil || len(win) == 0 {
		return 0, err
	}
	// A task is in its app's bulk queue or, fed before the upgrade that
	// gave queues their app, in the legacy one: it is gone only when it
	// is in neither.
	queues := bulkQueues(app)
	ids := make([]string, 0, len(win))
	pipe := rdb.Pipeline()
	var states [len(queues)][]*redis.StringCmd
	for id := range win {
		ids = append(ids, id)
		for q, queue := range queues {
			states[q] = append(states[q], pipe.HGet(ctx, asynqTaskKey(queue, id), asynqStateField))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("campaign %s: read task states: %w", name, err)
	}
	settled := 0
	// The retrying set follows asynq: a task back in the queue (a retry
	// come due, or run now by hand) is not waiting for a retry any more,
	// and one in asynq's retry set is.
	var queued, retrying []any
	defer func() {
		if len(queued) > 0 {
			_ = rdb.SRem(ctx, k.retrying, queued...).Err()
		}
		if len(retrying) > 0 {
			_ = markRetrying(ctx, rdb, k, retrying)
		}
	}()
	for i, id := range ids {
		state, err := states[0][i].Result()
		if errors.Is(err, redis.Nil) {
			state, err = states[1][i].Result()
		}
		switch {
		case errors.Is(err, redis.Nil): // gone: deleted by hand
			n, err := settle(ctx, rdb, k, id, fieldDeleted, "")
			if err != nil {
				return settled, fmt.Errorf("campaign %s: settle task %s: %w", name, id, err)
			}
			settled += n
			continue
		case err != nil:
			return settled, err
		case state == "pending" || state == "active":
			queued = append(queued, id)
			continue
		case state == "retry":
			retrying = append(retrying, id)
			continue
		case state != "archived" && state != "completed":
			continue // alive
		}
		n, err := settleEnded(ctx, rdb, insp, name, app, id, win[id])
		if err != nil {
			return settled, err
		}
		settled += n
	}
	return settled, nil
}

// settleEnded settles one archived or completed task of the window.
func settleEnded(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, name string, app uint64, id, s string) (int, error) {
	k := keysFor(name)
	info, err := taskInfo(insp, app, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		return 0, nil // gone meanwhile: the next sync counts it
	case err != nil:
		return 0, fmt.Errorf("campaign %s: look up task %s: %w", name, id, err)
	}
	settleAs := func(field string) (int, error) { return settle(ctx, rdb, k, id, field, "") }
	if info.State == asynq.TaskStateCompleted {
		var res worker.Result
		switch err := json.Unmarshal(info.Result, &res); {
		case err == nil && res.Code == 0:
			return settleRecalled(ctx, rdb, k, id, s, fieldRecalled, res.Code, info.CompletedAt)
		case err == nil && outcome(res.Code).Class == worker.Done: // 20023, 10030
			return settleRecalled(ctx, rdb, k, id, s, fieldAlreadyRecalled, res.Code, info.CompletedAt)
		}
		return settleAs(fieldUnaccounted)
	}
	// Archived. On its last attempt for a reason not its own, the worker
	// puts it back: not a dead letter.
	if kept, err := rdb.HExists(ctx, worker.LastAttemptsKey, info.Queue+"/"+id).Result(); err != nil || kept {
		return 0, err
	}
	r, err := decodeRow(s)
	if err != nil {
		return settleAs(fieldUnaccounted)
	}
	late := strings.HasSuffix(info.LastErr, asynq.SkipRetry.Error())
	code, detail, at := worker.StoredCode(info.LastErr), detailArchivedByHand, time.Now()
	if late {
		detail = detailRecordedLate
		if !info.LastFailedAt.IsZero() {
			at = info.LastFailedAt
		}
	}
	if info.LastErr != "" {
		detail += "; last error: " + info.LastErr
	}
	return recordEnd(ctx, rdb, k, id, fieldDeadLettered, code, encodeAudit(at, r, code, detail), "")
}

// settleRecalled settles the completed task id of the window, whose row
// is s, as recalled or already recalled (field) with code, at at; a dead
// letter run again by hand gains its row in the audit, as when the worker
// records it.
func settleRecalled(ctx context.Context, rdb redis.UniversalClient, k keys, id, s, field string, code int, at time.Time) (int, error) {
	rerun := ""
	if r, err := decodeRow(s); err == nil {
		if at.IsZero() {
			at = time.Now()
		}
		rerun = encodeAudit(at, r, code, rerunDetail(field)+"; "+detailRecordedLate)
	}
	return settle(ctx, rdb, k, id, field, rerun)
}

func clip(s string) string {
	if len(s) > maxDetail {
		return s[:maxDetail]
	}
	return s
}
