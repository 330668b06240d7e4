package campaign

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/tasks"
)

// rerunLooks: a look at the bulk queues' heads looks up each task queued
// without pending_since once, and again after it was seen queued the
// usual way (or gone) in between: a task a look saw queued, which a worker
// then took and dead-lettered and an operator ran again before the next
// look, is listed again under the same ID. Kept by ID alone, that look
// skipped it for good, and the re-run stayed dead-lettered while its
// queue was paused (CI, TestRerunDeadLetterLeavesTheDeadLettersOnceQueued).
func TestRerunLooksLookAgainAtATaskBackUnderItsID(t *testing.T) {
	checked := map[string]string{}
	look := func(since map[string]bool, listed ...string) []string {
		var got []string
		for _, l := range rerunLooks(listed, since, checked) {
			got = append(got, l.key)
			checked[l.key] = "" // looked up: none of a campaign's
		}
		slices.Sort(got)
		return got
	}
	// Look 1: the task queued by the feeder, and one run by hand.
	if got := look(map[string]bool{"q/a": true}, "q/a", "q/b"); !slices.Equal(got, []string{"q/b"}) {
		t.Fatalf("look 1 looks up %q, want only the task without pending_since", got)
	}
	// Look 2: b is still there, looked up already.
	if got := look(map[string]bool{"q/a": true}, "q/a", "q/b"); len(got) != 0 {
		t.Fatalf("look 2 looks up %q, want nothing new", got)
	}
	// Before look 3, a was taken, dead-lettered and run again by hand:
	// queued under its ID, without pending_since now.
	if got := look(map[string]bool{}, "q/a", "q/b"); !slices.Equal(got, []string{"q/a"}) {
		t.Fatalf("look 3 looks up %q, want the task run again", got)
	}
	// b left and came back run again: looked up again.
	look(map[string]bool{}, "q/a")
	if got := look(map[string]bool{}, "q/a", "q/b"); !slices.Equal(got, []string{"q/b"}) {
		t.Fatalf("look 5 looks up %q, want the task back", got)
	}
}

// A task of the window that asynq holds for later (scheduled: kept after a
// configuration error, a rate limit or an outage) is waiting to be tried
// again: the window's sync counts it retrying, as the worker's record of
// the kept attempt does. Before, only asynq's retry state was: a sync that
// read the task pending just before the worker recorded it kept took it
// out of the retrying set after the record, and no later sync put it back
// (CI: a kept re-run counted in the queue for 10 s).
func TestSyncCountsAScheduledTaskRetrying(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	_, _, id := e.fedOneRow("kept")
	client := asynq.NewClient(e.opt)
	defer client.Close()
	if _, err := client.Enqueue(asynq.NewTask(tasks.TypeRecall, []byte(`{}`)), asynq.TaskID(id), asynq.Queue(bulkQ), asynq.ProcessIn(time.Minute)); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(e.opt)
	defer insp.Close()
	if _, err := syncWindow(ctx, e.rdb, insp, "kept", testApp); err != nil {
		t.Fatal(err)
	}
	if st := e.status("kept"); st.Retrying != 1 || st.InQueue != 0 {
		t.Fatalf("status %+v; want the task held for later counted retrying", st)
	}
}

// The sync reads the window and asynq's states, then settles what it read
// archived. A worker that recorded the dead letter meanwhile has moved it
// from the window to the dead letters, where the sync's late settle read
// it as a dead letter run again by hand and counted it a second time: the
// history had the dead letter twice, once "recorded late" (seen in CI, in
// TestRerunDeadLetterLeavesTheDeadLettersOnceQueued/cancelled).
func TestSyncDoesNotCountAWorkersDeadLetterAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	r, k, id := e.fedOneRow("race")
	e.recordDeadLetter(r, k, id)
	n, err := settleDeadLetter(ctx, e.rdb, k, id, 20022, encodeAudit(time.Now(), r, 20022, detailRecordedLate))
	if err != nil {
		t.Fatal(err)
	}
	st := e.status("race")
	if hist := e.history("race"); n != 0 || st.DeadLettered != 1 || len(hist) != 2 {
		t.Fatalf("the sync's late settle counted %d; status %+v, history %q; want the worker's one dead letter", n, st, hist)
	}
}

// A look reads the pending tasks' heads, then pending_since of each, in
// two round trips. A worker that takes a task between the two removes its
// pending_since (asynq's dequeue does), so the look looked it up: found
// active, it was marked looked up. Should the worker dead-letter it and an
// operator run it again before the next look, it is listed again under the
// same ID without pending_since, and that look skipped it as looked up:
// the re-run stayed a dead letter of its campaign (CI,
// TestRerunDeadLetterLeavesTheDeadLettersOnceQueued/done).
func TestFindQueuedRerunsLooksAgainAtATaskTakenDuringALook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	r, k, id := e.queuedOneRow("taken")

	// Look 1, with a worker taking the task between its two round trips.
	hooked := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	defer hooked.Close()
	hooked.AddHook(takeAfterListing{rdb: e.rdb, t: t})
	lookedUp := map[string]string{}
	if n, err := findQueuedReruns(ctx, hooked, e.insp, testApp, DefaultWindow, lookedUp); err != nil || n != 0 {
		t.Fatalf("look 1 took back %d: %v; want nothing (the task is taken)", n, err)
	}
	// The worker dead-letters it, then an operator runs it again.
	e.recordDeadLetter(r, k, id)
	pipe := e.rdb.TxPipeline()
	pipe.LRem(ctx, asynqActiveKey(bulkQ), 0, id)
	pipe.ZAdd(ctx, "asynq:{"+bulkQ+"}:archived", redis.Z{Score: float64(time.Now().Unix()), Member: id})
	pipe.HSet(ctx, asynqTaskKey(bulkQ, id), asynqStateField, "archived")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	e.runTask(id)

	// Look 2 takes the re-run back into its campaign.
	if n, err := findQueuedReruns(ctx, e.rdb, e.insp, testApp, DefaultWindow, lookedUp); err != nil || n != 1 {
		t.Fatalf("look 2 took back %d: %v; want the task run again", n, err)
	}
	if st := e.status("taken"); st.DeadLettered != 0 || st.Remaining() != 1 {
		t.Fatalf("status %+v; want the re-run queued, no dead letter", st)
	}
}

// takeAfterListing is a go-redis hook that, after the pipeline listing
// the pending tasks' heads, takes the bulk queue's oldest pending task as
// asynq's dequeue script does: to active, state active, pending_since
// removed.
type takeAfterListing struct {
	rdb redis.UniversalClient
	t   *testing.T
}

func (h takeAfterListing) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h takeAfterListing) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h takeAfterListing) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil && len(cmds) > 0 && cmds[0].Name() == "lrange" {
			id, err := h.rdb.RPopLPush(ctx, asynqPendingKey(bulkQ), asynqActiveKey(bulkQ)).Result()
			if err != nil {
				h.t.Errorf("take the task: %v", err)
				return nil
			}
			h.rdb.HSet(ctx, asynqTaskKey(bulkQ, id), asynqStateField, "active")
			h.rdb.HDel(ctx, asynqTaskKey(bulkQ, id), asynqPendingSinceField)
		}
		return err
	}
}

// A queued task archived by hand keeps the pending_since asynq gave it
// when it was queued (its archive script leaves the field), and RunTask
// queues it again with it: the look for re-runs, which looks up only the
// pending tasks without the field, never saw it, and the re-run stayed a
// dead letter of its campaign until a worker took it (for good while its
// queue was paused). The sync that counts the hand archive removes the
// field.
func TestFindQueuedRerunsFindsAQueuedTaskArchivedByHandThenRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	_, _, id := e.queuedOneRow("handled")
	if err := e.insp.ArchiveTask(bulkQ, id); err != nil {
		t.Fatal(err)
	}
	if n, err := syncWindow(ctx, e.rdb, e.insp, "handled", testApp); err != nil || n != 1 {
		t.Fatalf("sync settled %d: %v; want the task archived by hand", n, err)
	}
	if st := e.status("handled"); st.DeadLettered != 1 {
		t.Fatalf("after the sync: %+v; want the hand archive counted dead-lettered", st)
	}
	e.runTask(id)
	if n, err := findQueuedReruns(ctx, e.rdb, e.insp, testApp, DefaultWindow, map[string]string{}); err != nil || n != 1 {
		t.Fatalf("the look took back %d: %v; want the task run again", n, err)
	}
	if st := e.status("handled"); st.DeadLettered != 0 || st.Remaining() != 1 {
		t.Fatalf("status %+v; want the re-run queued, no dead letter", st)
	}
}

// queuedOneRow is fedOneRow with the row's task queued in asynq, as the
// feeder queues it, and no worker to take it.
func (e *env) queuedOneRow(name string) (row, keys, string) {
	e.t.Helper()
	r, k, id := e.fedOneRow(name)
	task, _, err := r.task(tasks.Recall{SDKAppID: testApp, Campaign: name}, tasks.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	client := asynq.NewClient(e.opt)
	defer client.Close()
	if _, err := client.Enqueue(task, asynq.TaskID(id), asynq.Queue(bulkQ)); err != nil {
		e.t.Fatal(err)
	}
	return r, k, id
}

// asynqActiveKey is asynq v0.26's list of queue's active tasks.
func asynqActiveKey(queue string) string { return "asynq:{" + queue + "}:active" }
