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
//   - run an archived (dead-lettered) task: the feeder, seeing it queued
//     (findQueuedReruns), or else the Recorder, at its first attempt,
//     finds it among the campaign's dead letters and moves it back to the
//     window, marked as a re-run until it ends: a done campaign is running
//     again until it ends, a cancelled one stays cancelled, and syncWindow
//     watches it (queuedRerunScript, recordScript). When it ends it counts
//     as what it became, not dead-lettered; the audit keeps the dead letter
//     and gains a row saying how the re-run ended, at whichever attempt
//     (recorder.go);
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
// hand that ended as fate, a counts field (recalled, already_recalled,
// deleted, cancelled, unaccounted).
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
	// and one in asynq's retry set, or held for later (scheduled: kept
	// after a configuration error, a rate limit or an outage), is. The
	// states are read before the worker may record: a task read pending
	// and then recorded kept is taken out here, and the next sync, which
	// reads it scheduled, puts it back.
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
			n, err := settle(ctx, rdb, k, id, fieldDeleted, rerunEnd(win[id], time.Now(), worker.NoAnswer, rerunDetail(fieldDeleted)))
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
		case state == "retry" || state == "scheduled":
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
	settleAs := func(field string) (int, error) {
		return settle(ctx, rdb, k, id, field, rerunEnd(s, time.Now(), worker.NoAnswer, rerunDetail(field)))
	}
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
	n, err := settleDeadLetter(ctx, rdb, k, id, code, encodeAudit(at, r, code, detail))
	if err != nil {
		return n, err
	}
	// A task archived by hand while queued keeps the pending_since asynq
	// gave it when it was queued, and run again by hand it would be queued
	// with it: findQueuedReruns, which looks up only the pending tasks
	// without it, would not see the re-run. Only asynq's queue stats read
	// the field, of pending tasks only, and RunTask queues tasks without it.
	if err := rdb.HDel(ctx, asynqTaskKey(info.Queue, id), asynqPendingSinceField).Err(); err != nil {
		return n, fmt.Errorf("campaign %s: clear pending_since of task %s archived by hand: %w", name, id, err)
	}
	return n, nil
}

// settleDeadLetter counts the archived task id of the window as
// dead-lettered with code, audit its row, if it is still in the window: a
// worker that recorded it since the sync read the window has moved it to
// the dead letters, where recordScript would read it as run again by hand
// and count it twice.
func settleDeadLetter(ctx context.Context, rdb redis.UniversalClient, k keys, id string, code int, audit string) (int, error) {
	counted, _, err := recordEnds(ctx, rdb, k, []endEvent{{id: id, fate: fieldDeadLettered, code: code, audit: audit, windowOnly: true}})
	if err != nil {
		return 0, err
	}
	return int(counted[0]), nil
}

// settleRecalled settles the completed task id of the window, whose row
// is s, as recalled or already recalled (field) with code, at at; a dead
// letter run again by hand gains its row in the audit, as when the worker
// records it.
func settleRecalled(ctx context.Context, rdb redis.UniversalClient, k keys, id, s, field string, code int, at time.Time) (int, error) {
	if at.IsZero() {
		at = time.Now()
	}
	return settle(ctx, rdb, k, id, field, rerunEnd(s, at, code, rerunDetail(field)+"; "+detailRecordedLate))
}

// rerunEnd is the audit row saying how a dead letter run again by hand,
// whose stored row is s, ended at at, for settle and countCancelled to
// append if the task is one (in reruns): every end of a re-run has its row
// in the history, also one without an answer of its own (deleted by hand,
// cancelled, unaccounted: code worker.NoAnswer, as a task archived by hand
// before any call), or the history would end at the dead letter while the
// counts had moved it. It is empty when s does not decode.
func rerunEnd(s string, at time.Time, code int, detail string) string {
	r, err := decodeRow(s)
	if err != nil {
		return ""
	}
	return encodeAudit(at, r, code, detail)
}

// findQueuedReruns finds the dead letters run again by hand (asynqmon's
// Run, `asynq task run`) that wait in the app's bulk queues, not taken by
// a worker yet, and takes each back into its campaign at once: it leaves
// the dead letters for the window, and a done campaign is running again
// (takeBackRerun). Without it the task would count as a dead letter, and
// its done campaign as done, until a worker first records it, which a
// paused queue or a long one puts off.
//
// It costs nothing per done campaign or dead letter: RunTask pushes the
// task at the head of the queue's pending list without the
// asynqPendingSinceField every other way in sets, so it reads the head of
// each list (at most limit tasks: the feeder keeps about a window of
// them queued), asks that field of each (one pipelined round trip), and
// looks up those without it (tasks run by hand, and the few that workers
// put back: a kept task on its last attempt, which they run the same way,
// or one taken when they stopped) that it has not looked up already
// (lookedUp, which rerunLooks keeps), to learn their campaign from their
// payload. A task looked up already is looked up again when it is a dead
// letter of its campaign now (one more pipelined round trip, only when
// there are such tasks): a worker may take a task between the two round
// trips (asynq's dequeue removes pending_since), dead-letter it, and an
// operator run it again before the next look, which lists it under the
// same ID as before. A task run and taken by a worker between two looks is
// never seen pending: the worker's record takes it back then, as before.
// It returns how many it took back.
func findQueuedReruns(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, app uint64, limit int,
	lookedUp map[string]string) (int, error) {
	queues := bulkQueues(app)
	var heads [len(queues)]*redis.StringSliceCmd
	pipe := rdb.Pipeline()
	for i, q := range queues {
		heads[i] = pipe.LRange(ctx, asynqPendingKey(q), 0, int64(limit)-1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("read the bulk queues' pending tasks: %w", err)
	}
	var listed []string
	var hasSince []*redis.BoolCmd // of each listed task
	pipe = rdb.Pipeline()
	for i, q := range queues {
		for _, id := range heads[i].Val() {
			listed = append(listed, q+"/"+id)
			hasSince = append(hasSince, pipe.HExists(ctx, asynqTaskKey(q, id), asynqPendingSinceField))
		}
	}
	if len(listed) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("read the pending tasks' fields: %w", err)
		}
	}
	since := make(map[string]bool, len(listed))
	for i, key := range listed {
		since[key] = hasSince[i].Val()
	}
	look, err := deadAgain(ctx, rdb, rerunLooks(listed, since, lookedUp))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range look {
		q, id, _ := strings.Cut(key, "/")
		name, took, err := takeBackRerun(ctx, rdb, insp, app, q, id)
		if err != nil {
			return n, err // not marked: the next look tries it again
		}
		if took {
			n++
		}
		lookedUp[key] = name
	}
	return n, nil
}

// deadAgain returns the keys of looks to look up now: those looked up for
// the first time, and those looked up already (of a campaign) that are
// dead letters of that campaign now.
func deadAgain(ctx context.Context, rdb redis.UniversalClient, looks []rerunLook) ([]string, error) {
	var look, seen []string
	var dead []*redis.BoolCmd // of each seen task
	pipe := rdb.Pipeline()
	for _, l := range looks {
		if l.campaign == "" {
			look = append(look, l.key)
			continue
		}
		_, id, _ := strings.Cut(l.key, "/")
		seen = append(seen, l.key)
		dead = append(dead, pipe.HExists(ctx, keysFor(l.campaign).deadIDs, id))
	}
	if len(seen) == 0 {
		return look, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read whether the pending tasks looked up are dead letters again: %w", err)
	}
	for i, key := range seen {
		if dead[i].Val() {
			look = append(look, key)
		}
	}
	return look, nil
}

// rerunLook is a pending task ("QUEUE/ID") a look may look up: campaign is
// the campaign a look found it in before ("" for a first look).
type rerunLook struct {
	key, campaign string
}

// rerunLooks returns which of the listed pending tasks ("QUEUE/ID") a look
// may look up: those without pending_since (since[key] false) not looked
// up in that state already (checked, which the caller fills after each
// lookup with the task's campaign, "" for none), and those looked up
// already that are a campaign's (deadAgain checks whether they are its
// dead letters again). It drops from checked every task listed with
// pending_since or not listed: a task a look saw queued the usual way,
// then taken, archived and run again by hand before the next look is
// listed again, and must be looked up (keyed by ID alone, a look once
// skipped it for good: CI saw a re-run stay dead-lettered while its queue
// was paused).
func rerunLooks(listed []string, since map[string]bool, checked map[string]string) []rerunLook {
	keep := map[string]bool{}
	var look []rerunLook
	for _, key := range listed {
		if since[key] {
			continue
		}
		keep[key] = true
		switch name, ok := checked[key]; {
		case !ok:
			look = append(look, rerunLook{key: key})
		case name != "":
			look = append(look, rerunLook{key: key, campaign: name})
		}
	}
	for key := range checked {
		if !keep[key] {
			delete(checked, key)
		}
	}
	return look
}

// takeBackRerun takes the task id, pending in queue without a
// pending_since (findQueuedReruns), back into its campaign if it is a dead
// letter of one of app's campaigns, and reports whether it did and the
// campaign the task is of ("" when it is none of app's, or gone).
//
// The order makes it safe against the task's worker: the dead letter's
// entry is read before asynq is asked whether the task still waits, and
// the script moves it only if the entry is unchanged, so a worker that took
// the task and recorded it meanwhile (recordScript changed or removed the
// entry) is not undone. The campaign is put in the active set first: should
// nothing move, the feeder takes it out again (leaveActive); should that
// fail, nothing moved and the next look tries again.
func takeBackRerun(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, app uint64, queue, id string) (string, bool, error) {
	info, err := insp.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up task %s: %w", id, err)
	}
	var of struct { // what both task types' payloads say of their app and campaign
		SDKAppID uint64 `json:"SDKAppID"`
		Campaign string `json:"campaign"`
	}
	if json.Unmarshal(info.Payload, &of) != nil || of.SDKAppID != app || ValidateName(of.Campaign) != nil {
		return "", false, nil
	}
	name, k := of.Campaign, keysFor(of.Campaign)
	entry, err := rdb.HGet(ctx, k.deadIDs, id).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return name, false, nil // not a dead letter (a task a worker put back), or its re-run was recorded
	case err != nil:
		return "", false, fmt.Errorf("campaign %s: read dead letter %s: %w", name, id, err)
	}
	state, err := rdb.HGet(ctx, asynqTaskKey(queue, id), asynqStateField).Result()
	switch {
	case errors.Is(err, redis.Nil) || (err == nil && state != "pending"):
		return name, false, nil
	case err != nil:
		return "", false, fmt.Errorf("campaign %s: read the state of task %s: %w", name, id, err)
	}
	if err := activate(ctx, rdb, name); err != nil {
		return "", false, err
	}
	took, err := takeBackQueuedRerun(ctx, rdb, k, id, entry)
	if err != nil {
		return "", false, fmt.Errorf("campaign %s: take back dead letter %s run again: %w", name, id, err)
	}
	return name, took, nil
}

func clip(s string) string {
	if len(s) > maxDetail {
		return s[:maxDetail]
	}
	return s
}
