package campaign

import (
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

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
	checked := map[string]bool{}
	look := func(since map[string]bool, listed ...string) []string {
		got := rerunLooks(listed, since, checked)
		for _, key := range got {
			checked[key] = true // looked up
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
