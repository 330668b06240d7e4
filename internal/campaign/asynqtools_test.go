package campaign

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

func taskIDOfRow(r row) string {
	return tasks.Recall{SDKAppID: testApp, FromAccount: r.from, ToAccount: r.to, MsgKey: r.msgKey}.TaskID()
}

// oneRowCampaign imports campaign name with one row, and returns the row,
// the campaign's keys and the row's task ID, for the tests that write its
// records as the feeder and the Recorder would.
func (e *env) oneRowCampaign(name string) (row, keys, string) {
	e.t.Helper()
	e.importRows(name, msgRows(0, 1))
	return msgRow(0), keysFor(name), taskIDOfRow(msgRow(0))
}

// fedOneRow is oneRowCampaign with its row fed, as feed does: in the
// window, out of the backlog.
func (e *env) fedOneRow(name string) (row, keys, string) {
	e.t.Helper()
	r, k, id := e.oneRowCampaign(name)
	ctx := context.Background()
	if err := e.rdb.HSet(ctx, k.window, id, r.encode()).Err(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.rdb.Del(ctx, k.backlog).Err(); err != nil {
		e.t.Fatal(err)
	}
	return r, k, id
}

// A dead letter run again from asynqmon or the asynq CLI (both call the
// Inspector's RunTask) that then succeeds moves from dead-lettered to
// recalled; export stops listing it, the history keeps both rows.
func TestRerunDeadLetterThatSucceedsBecomesRecalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{feeder: FeederConfig{Task: tasks.Options{MaxRetry: 1}}})
	rows := msgRows(0, 3)
	e.sim.Force(rows[0].msgKey, 91000, 0)
	e.importRows("rerun", rows)
	st := e.waitState("rerun", StateDone, 20*time.Second)
	if st.Recalled != 2 || st.DeadLettered != 1 || st.DeadByCode["91000"] != 1 {
		t.Fatalf("before the re-run: %+v", st)
	}
	if recs := e.export("rerun"); len(recs) != 2 || recs[1][3] != "91000" {
		t.Fatalf("export before the re-run: %q", recs)
	}

	e.sim.Reset() // the cause is fixed
	if err := e.insp.RunTask(bulkQ, taskIDOfRow(rows[0])); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the re-run to be counted", 10*time.Second, func() bool { return e.status("rerun").Recalled == 3 })
	st = e.status("rerun")
	if st.DeadLettered != 0 || len(st.DeadByCode) != 0 || st.Ended() != st.Queued || st.Pending != 0 || st.Retrying != 0 {
		t.Fatalf("after the re-run: %+v; want 3 recalled, no dead letter", st)
	}
	if recs := e.export("rerun"); len(recs) != 1 {
		t.Fatalf("export after the re-run still lists %q", recs[1:])
	}
	if hist := e.history("rerun"); len(hist) != 3 || hist[1][3] != "91000" || hist[2][3] != "0" || hist[2][2] != rows[0].msgKey ||
		!strings.Contains(hist[2][5], "run again by hand after it was dead-lettered: recalled") {
		t.Fatalf("history %q; want the dead letter, then the re-run that recalled it", hist)
	}
}

// A re-run dead letter that fails again is retrying, then dead-lettered
// again: counted once, and export lists its latest dead-lettering only.
func TestRerunDeadLetterThatFailsAgainIsCountedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{feeder: FeederConfig{Task: tasks.Options{MaxRetry: 1}}})
	rows := msgRows(0, 2)
	e.sim.Force(rows[0].msgKey, 91000, 0)
	e.importRows("again", rows)
	e.waitState("again", StateDone, 20*time.Second)
	e.sim.Force(rows[0].msgKey, 20022, 0)
	if err := e.insp.RunTask(bulkQ, taskIDOfRow(rows[0])); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the new dead letter", 10*time.Second, func() bool { return e.status("again").DeadByCode["20022"] == 1 })
	st := e.status("again")
	if st.DeadLettered != 1 || st.DeadByCode["91000"] != 0 || st.Recalled != 1 || st.Ended() != st.Queued {
		t.Fatalf("status %+v; want 1 recalled and 1 dead letter (20022)", st)
	}
	if recs := e.export("again"); len(recs) != 2 || recs[1][3] != "20022" {
		t.Fatalf("export %q; want only the latest dead-lettering", recs)
	}
}

// keptRerun runs again by hand a dead letter of a done campaign whose
// re-run then meets a configuration error (90009): kept, to be tried again
// later, so it stays the campaign's for a while. It returns the campaign's
// status before the re-run and the task's ID, once asynq waits to try it
// again.
func keptRerun(t *testing.T, e *env, name string) (Status, string) {
	t.Helper()
	e.startPipeline(pipelineOptions{feeder: FeederConfig{Task: tasks.Options{MaxRetry: 1}, SyncInterval: 100 * time.Millisecond}})
	rows := msgRows(0, 3)
	e.sim.Force(rows[0].msgKey, 91000, 0)
	e.importRows(name, rows)
	before := e.waitState(name, StateDone, 20*time.Second)
	if before.Recalled != 2 || before.DeadLettered != 1 || before.Finished.IsZero() {
		t.Fatalf("before the re-run: %+v", before)
	}
	id := taskIDOfRow(rows[0])
	e.keepRerun(name, rows[0].msgKey, id)
	return before, id
}

// keepRerun runs again by hand the dead letter id (of the message msgKey)
// of campaign name, whose re-run then meets a configuration error (90009)
// and is kept; it returns once asynq waits to try it again.
func (e *env) keepRerun(name, msgKey, id string) {
	e.t.Helper()
	e.sim.Force(msgKey, 90009, 1)
	e.runTask(id)
	e.waitFor("the re-run to be kept", 10*time.Second, func() bool { return e.status(name).DeadLettered == 0 })
	e.waitFor("asynq to hold the kept task for later", 10*time.Second, func() bool {
		info, err := e.insp.GetTaskInfo(bulkQ, id)
		return err == nil && (info.State == asynq.TaskStateScheduled || info.State == asynq.TaskStateRetry)
	})
}

// waitInactive waits for the feeder to take campaign name out of the
// active set, as it does once nothing of it is left to watch.
func (e *env) waitInactive(name string) {
	e.t.Helper()
	e.waitFor("the feeder to let campaign "+name+" go", 10*time.Second, func() bool {
		in, err := e.rdb.SIsMember(context.Background(), activeKey, name).Result()
		return err == nil && !in
	})
}

// runTask runs the task id of the bulk queue now, as asynqmon's Run and
// `asynq task run` do.
func (e *env) runTask(id string) {
	e.t.Helper()
	if err := e.insp.RunTask(bulkQ, id); err != nil {
		e.t.Fatal(err)
	}
}

// A dead letter of a done campaign run again by hand that is kept for
// later is the campaign's again: the campaign is running (no finished
// time) while it waits, not done with a task retrying; once the re-run is
// recalled the campaign is done again, the task counted recalled and no
// longer dead-lettered.
func TestRerunDeadLetterKeptForLaterReopensTheCampaign(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before, id := keptRerun(t, e, "kept")
	st := e.status("kept")
	if st.State != StateRunning || !st.Finished.IsZero() || st.Remaining() != 1 || st.Recalled != 2 || st.DeadLettered != 0 ||
		st.Ended()+st.Remaining() != st.Queued {
		t.Fatalf("while the re-run waits to be tried again: %+v; want running, the task pending or retrying, nothing finished", st)
	}

	if err := e.insp.RunTask(bulkQ, id); err != nil { // "Run" again, now that the cause is fixed
		t.Fatal(err)
	}
	e.waitFor("the re-run recalled and the campaign done again", 10*time.Second, func() bool {
		st = e.status("kept")
		return st.Recalled == 3 && st.State == StateDone
	})
	if st.DeadLettered != 0 || len(st.DeadByCode) != 0 || st.Remaining() != 0 || st.Ended() != st.Queued || st.Finished.Before(before.Finished) {
		t.Fatalf("after the re-run: %+v; want done again, 3 recalled, no dead letter", st)
	}
	if recs := e.export("kept"); len(recs) != 1 {
		t.Fatalf("export after the re-run still lists %q", recs[1:])
	}
}

// A kept re-run then deleted by hand (asynqmon, `asynq task delete`) does
// not sit in the campaign for ever: the feeder's check of the campaign's
// tasks in asynq counts it deleted, and the campaign is done again.
func TestRerunDeadLetterKeptThenDeletedEndsTheCampaign(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, id := keptRerun(t, e, "dropped")
	e.deleteTask(id)
	e.waitFor("the deleted re-run counted and the campaign done again", 10*time.Second, func() bool {
		st := e.status("dropped")
		return st.State == StateDone && st.Deleted == 1
	})
	if st := e.status("dropped"); st.Remaining() != 0 || st.Ended() != st.Queued || st.Recalled != 2 || st.DeadLettered != 0 {
		t.Fatalf("status %+v; want done, 2 recalled, 1 deleted, nothing left", st)
	}
}

// doneWithDeadLetter makes campaign name done with one dead letter
// (20022) of its two rows, the other recalled. It returns the dead
// letter's message and task ID.
func (e *env) doneWithDeadLetter(name string) (msgKey, id string) {
	e.t.Helper()
	e.startPipeline(pipelineOptions{feeder: FeederConfig{Task: tasks.Options{MaxRetry: 1}, SyncInterval: 100 * time.Millisecond}})
	rows := msgRows(0, 2)
	e.sim.Force(rows[0].msgKey, 20022, 0)
	e.importRows(name, rows)
	if st := e.waitState(name, StateDone, 20*time.Second); st.DeadLettered != 1 || st.Recalled != 1 {
		e.t.Fatalf("before the re-run: %+v", st)
	}
	return rows[0].msgKey, taskIDOfRow(rows[0])
}

// A dead letter run again by hand leaves the dead letters as soon as the
// feeder sees its task back in the bulk queue, before a worker takes it
// (here none can: the queue is paused): the task is pending, a done
// campaign is running again without its finished time, a cancelled one
// stays cancelled, and export no longer lists it. Once the task is
// recalled the campaign is done again (or still cancelled), the history
// says how the re-run ended, and the feeder lets the campaign go.
func TestRerunDeadLetterLeavesTheDeadLettersOnceQueued(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		campaign      func(e *env, name string) (msgKey, id string)
		during, after State
	}{
		{"done", (*env).doneWithDeadLetter, StateRunning, StateDone},
		{"cancelled", (*env).cancelledWithDeadLetter, StateCancelled, StateCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, id := c.campaign(e, "queued")
			before := e.status("queued")
			if err := e.insp.PauseQueue(bulkQ); err != nil {
				t.Fatal(err)
			}
			e.sim.Reset()
			e.runTask(id)
			e.waitFor("the task run again to leave the dead letters", 10*time.Second, func() bool { return e.status("queued").DeadLettered == 0 })
			st := e.status("queued")
			if st.State != c.during || !st.Finished.IsZero() || st.InQueue != 1 || st.Retrying != 0 || len(st.DeadByCode) != 0 ||
				st.Ended()+st.Remaining() != st.Queued {
				t.Fatalf("while the task run again waits: %+v; want %s, the task in the bulk queue, no dead letter", st, c.during)
			}
			if recs := e.export("queued"); len(recs) != 1 {
				t.Fatalf("export still lists %q", recs[1:])
			}

			if err := e.insp.UnpauseQueue(bulkQ); err != nil {
				t.Fatal(err)
			}
			e.waitFor("the re-run recalled", 10*time.Second, func() bool {
				st = e.status("queued")
				return st.Recalled == before.Recalled+1 && st.State == c.after && st.Remaining() == 0
			})
			if st.DeadLettered != 0 || st.Ended() != st.Queued || (c.after == StateDone && st.Finished.Before(before.Finished)) {
				t.Fatalf("after the re-run: %+v", st)
			}
			if hist := e.history("queued"); len(hist) != 3 || hist[2][5] != rerunDetail(fieldRecalled) {
				t.Fatalf("history %q; want the dead letter, then its re-run recalled", hist)
			}
			e.waitInactive("queued")
		})
	}
}

// recordDeadLetter records, as a worker does, that the task id of the
// campaign k, whose row is r, was dead-lettered with 20022.
func (e *env) recordDeadLetter(r row, k keys, id string) {
	e.t.Helper()
	dead := endEvent{id: id, fate: fieldDeadLettered, code: 20022, audit: encodeAudit(time.Now(), r, 20022, "")}
	if _, _, err := recordEnds(context.Background(), e.rdb, k, []endEvent{dead}); err != nil {
		e.t.Fatal(err)
	}
}

// The feeder takes a queued re-run back only if the dead letter's entry
// is the one it read before asynq said the task was pending: a worker that
// took the task and recorded it meanwhile (here: dead-lettered it again)
// is not undone, and the campaign keeps the worker's counts.
func TestQueuedRerunTakeBackYieldsToTheWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	r, k, id := e.fedOneRow("race")
	e.recordDeadLetter(r, k, id)
	read, err := e.rdb.HGet(ctx, k.deadIDs, id).Result() // what the feeder read
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile a worker took the task run again, which failed for good.
	e.recordDeadLetter(r, k, id)
	if took, err := takeBackQueuedRerun(ctx, e.rdb, k, id, read); err != nil || took {
		t.Fatalf("take back with a stale entry: %v %v; want nothing moved", took, err)
	}
	if st := e.status("race"); st.DeadLettered != 1 || st.Remaining() != 0 || st.State != StateRunning {
		t.Fatalf("status %+v; want the worker's dead letter, nothing queued", st)
	}
	now, _ := e.rdb.HGet(ctx, k.deadIDs, id).Result()
	if took, err := takeBackQueuedRerun(ctx, e.rdb, k, id, now); err != nil || !took {
		t.Fatalf("take back with the current entry: %v %v", took, err)
	}
	if st := e.status("race"); st.DeadLettered != 0 || st.InQueue != 1 {
		t.Fatalf("status %+v; want the task queued, no dead letter", st)
	}
}

// cancelledWithDeadLetter makes campaign name cancelled with one dead
// letter (20022): of its three rows, one is dead-lettered at once, one is
// recalled, and one is kept (90009) until cancel removes it. It returns the
// dead letter's message and task ID.
func (e *env) cancelledWithDeadLetter(name string) (msgKey, id string) {
	e.t.Helper()
	e.startPipeline(pipelineOptions{feeder: FeederConfig{Task: tasks.Options{MaxRetry: 1}, SyncInterval: 100 * time.Millisecond}})
	rows := msgRows(0, 3)
	e.sim.Force(rows[0].msgKey, 20022, 0)
	e.sim.Force(rows[1].msgKey, 90009, 0)
	e.importRows(name, rows)
	e.waitFor("a dead letter, a recall and a kept task", 20*time.Second, func() bool {
		st := e.status(name)
		return st.DeadLettered == 1 && st.Recalled == 1 && st.Retrying == 1
	})
	if _, err := e.mgr.Cancel(context.Background(), name); err != nil {
		e.t.Fatal(err)
	}
	if st := e.status(name); st.State != StateCancelled || st.Remaining() != 0 || st.Cancelled != 1 || st.DeadLettered != 1 {
		e.t.Fatalf("after cancel: %+v", st)
	}
	return rows[0].msgKey, taskIDOfRow(rows[0])
}

// A dead letter of a cancelled campaign run again by hand is the
// campaign's while it runs: kept for later, it is retrying in a campaign
// that stays cancelled, and the feeder watches it, so that deleted by hand
// it is counted deleted rather than retrying for ever.
func TestRerunDeadLetterOfACancelledCampaignIsWatchedUntilItEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	msgKey, id := e.cancelledWithDeadLetter("stopped")
	e.keepRerun("stopped", msgKey, id)
	// The feeder takes the re-run back as soon as it is queued; the
	// worker's record of the kept attempt can land after asynq holds the
	// task (CI read Pending 1, Retrying 0 in between).
	e.waitFor("the kept re-run counted retrying", 10*time.Second, func() bool { return e.status("stopped").Retrying == 1 })
	if st := e.status("stopped"); st.State != StateCancelled || st.Retrying != 1 || st.DeadLettered != 0 {
		t.Fatalf("while the re-run waits: %+v; want cancelled, the task retrying", st)
	}
	e.deleteTask(id)
	e.waitFor("the deleted re-run counted", 10*time.Second, func() bool { return e.status("stopped").Deleted == 1 })
	st := e.status("stopped")
	if st.State != StateCancelled || st.Remaining() != 0 || st.Ended() != st.Queued || st.Recalled != 1 || st.Cancelled != 1 {
		t.Fatalf("status %+v; want cancelled, 1 recalled, 1 cancelled, 1 deleted, nothing left", st)
	}
	e.waitInactive("stopped")
}

// The feeder's cleanup does not take a cancelled campaign out of the
// active set when a dead letter run again by hand has just come back to its
// window (the Recorder added the campaign back just before): it would not
// be watched.
func TestLeaveActiveKeepsACancelledCampaignWithARerun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	r, k, id := e.oneRowCampaign("gone")
	if err := e.rdb.HSet(ctx, k.meta, metaState, string(StateCancelled)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := leaveActive(ctx, e.rdb, "gone"); err != nil {
		t.Fatal(err)
	}
	if in, _ := e.rdb.SIsMember(ctx, activeKey, "gone").Result(); in {
		t.Fatal("a cancelled campaign with nothing in its window stayed in the active set")
	}
	e.rdb.HSet(ctx, k.window, id, r.encode()) // the re-run, back in the window
	e.rdb.SAdd(ctx, activeKey, "gone")
	if err := leaveActive(ctx, e.rdb, "gone"); err != nil {
		t.Fatal(err)
	}
	if in, _ := e.rdb.SIsMember(ctx, activeKey, "gone").Result(); !in {
		t.Fatal("a cancelled campaign with a re-run in its window was taken out of the active set: the feeder never watches the re-run")
	}
}

// Every re-run of a dead letter that ends has its row in `export
// --history`, whichever attempt ended it: after the dead letter comes the
// row of the re-run's end, recalled (0 or 20023, the detail saying it was
// run again) or dead-lettered again, also when the re-run first failed and
// was retried, or was kept for later and run again.
func TestRerunHistoryHasARowForEveryEnd(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		rerun func(e *env, msgKey, id string) // runs the dead letter again, to its end
		code  string                          // the code of the re-run's row
		// detail is what the re-run's row says; empty for a dead letter
		// again (its error), which must not say it was recalled.
		detail string
	}{
		{"recalled at its first attempt", func(e *env, msgKey, id string) {
			e.sim.Reset()
			e.runTask(id)
		}, "0", detailRerunPrefix + "recalled"},
		{"recalled after a retry", func(e *env, msgKey, id string) {
			e.sim.Force(msgKey, 91000, 1) // transient: asynq tries it again
			e.runTask(id)
		}, "0", detailRerunPrefix + "recalled"},
		{"recalled after it was kept for later", func(e *env, msgKey, id string) {
			e.keepRerun("hist", msgKey, id)
			e.runTask(id) // "Run" again, now that the cause is fixed
		}, "0", detailRerunPrefix + "recalled"},
		{"already recalled after it was kept for later", func(e *env, msgKey, id string) {
			e.keepRerun("hist", msgKey, id)
			e.sim.Force(msgKey, 20023, 0)
			e.runTask(id)
		}, "20023", detailRerunPrefix + "already recalled"},
		{"dead-lettered again after a retry", func(e *env, msgKey, id string) {
			e.sim.Force(msgKey, 91000, 0) // transient, then out of retries
			e.runTask(id)
		}, "91000", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.startPipeline(pipelineOptions{feeder: FeederConfig{Task: tasks.Options{MaxRetry: 1}, SyncInterval: 100 * time.Millisecond}})
			rows := msgRows(0, 2)
			e.sim.Force(rows[0].msgKey, 20022, 0) // dead-lettered at once, its retries unspent
			e.importRows("hist", rows)
			e.waitState("hist", StateDone, 20*time.Second)

			c.rerun(e, rows[0].msgKey, taskIDOfRow(rows[0]))
			e.waitFor("the re-run to end", 20*time.Second, func() bool {
				st := e.status("hist")
				return st.State == StateDone && st.DeadByCode["20022"] == 0 && st.Ended() == st.Queued
			})
			hist := e.history("hist")
			if len(hist) != 3 || hist[1][3] != "20022" {
				t.Fatalf("history %q; want the dead letter (20022), then one row for how its re-run ended (%s)", hist, c.code)
			}
			last := hist[2]
			if last[2] != rows[0].msgKey || last[3] != c.code || (c.detail != "" && last[5] != c.detail) ||
				(c.detail == "" && strings.HasPrefix(last[5], detailRerunPrefix)) {
				t.Fatalf("the re-run's row %q; want code %s, detail %q", last, c.code, c.detail)
			}
		})
	}
}

// A re-run whose end the worker could not write is settled by the
// feeder's check of the window, from the completed task in asynq: it has
// its row in the history too, saying it was recorded late.
func TestRerunSettledFromAsynqHasItsHistoryRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	r, k, id := e.fedOneRow("late")
	// Dead-lettered, then run again by hand: its first attempt failed.
	if _, _, err := recordEnds(ctx, e.rdb, k, []endEvent{
		{id: id, fate: fieldDeadLettered, code: 20022, audit: encodeAudit(time.Now(), r, 20022, "")},
		{id: id, fate: recordRetrying},
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := settleRecalled(ctx, e.rdb, k, id, r.encode(), fieldRecalled, 0, time.Now()); err != nil || n != 1 {
		t.Fatalf("settle: %d %v", n, err)
	}
	hist := e.history("late")
	if len(hist) != 3 || hist[2][3] != "0" || hist[2][5] != rerunDetail(fieldRecalled)+"; "+detailRecordedLate {
		t.Fatalf("history %q; want the dead letter, then the re-run recalled and recorded late", hist)
	}
	if st := e.status("late"); st.Recalled != 1 || st.DeadLettered != 0 || st.Remaining() != 0 {
		t.Fatalf("status %+v; want 1 recalled", st)
	}
}

// A kept re-run whose campaign is then paused goes back to the backlog
// with its row intact, and is fed and recalled again on resume: not
// counted unaccounted as a row that cannot become a task. The history
// still says how the re-run ended.
func TestRerunDeadLetterKeptThenPausedIsFedAgainOnResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keptRerun(t, e, "held")
	ctx := context.Background()
	if res, err := e.mgr.Pause(ctx, "held"); err != nil || res.Returned != 1 {
		t.Fatalf("pause: %+v %v; want the kept re-run taken back", res, err)
	}
	e.sim.Reset()
	if _, err := e.mgr.Resume(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	st := e.waitState("held", StateDone, 10*time.Second)
	if st.Recalled != 3 || st.Unaccounted != 0 || st.DeadLettered != 0 || st.Ended() != st.Queued {
		t.Fatalf("status %+v; want done, 3 recalled", st)
	}
	if hist := e.history("held"); len(hist) != 3 || hist[2][2] != msgRow(0).msgKey || hist[2][5] != rerunDetail(fieldRecalled) {
		t.Fatalf("history %q; want the dead letter, then its re-run recalled", hist)
	}
}

// A dead letter that an older recallq ran again, kept, and dead-lettered
// again has its old audit index still before its row in dead_ids ("CODE
// INDEX OLDINDEX ROW"); run again, it is back in the window with its row
// alone, which the feeder's check and a pause can decode.
func TestRerunOfADeadLetterStoredWithAnOldIndexHasItsRowIntact(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	r, k, id := e.oneRowCampaign("old")
	if err := e.rdb.HSet(ctx, k.deadIDs, id, "20022 1 0 "+r.encode()).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := recordEnds(ctx, e.rdb, k, []endEvent{{id: id, fate: recordRetrying}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.rdb.HGet(ctx, k.window, id).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeRow(got); err != nil || got != r.encode() {
		t.Fatalf("window row %q (%v); want the row alone, %q", got, err, r.encode())
	}
}

// A running campaign missing from the active set (a Recorder that
// reopened it could not put it back: Recorder.reactivate) is put back by
// resume, which its warning tells the operator to run.
func TestResumePutsARunningCampaignBackInTheActiveSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.importRows("adrift", msgRows(0, 1))
	ctx := context.Background()
	if err := e.rdb.SRem(ctx, activeKey, "adrift").Err(); err != nil {
		t.Fatal(err)
	}
	if was, err := e.mgr.Resume(ctx, "adrift"); err != nil || was {
		t.Fatalf("resume of a running campaign: %v %v", was, err)
	}
	if in, _ := e.rdb.SIsMember(ctx, activeKey, "adrift").Result(); !in {
		t.Fatal("resume left the running campaign out of the active set: the feeder never marks it done")
	}
}

// A paused bulk queue (asynqmon's pause button, `asynq queue pause`) stops
// the feeder, and status says why nothing moves.
func TestPausedBulkQueuePausesFeeding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.importRows("held", msgRows(0, 40))
	if err := e.insp.PauseQueue(bulkQ); err != nil {
		t.Fatal(err)
	}
	e.startPipeline(pipelineOptions{feeder: FeederConfig{Window: 5}})
	e.waitFor("the feeder to take the lock", 15*time.Second, func() bool {
		n, _ := e.rdb.Exists(context.Background(), feedKeysFor(testApp).lock).Result()
		return n == 1
	})
	time.Sleep(500 * time.Millisecond) // many feeder passes
	st := e.status("held")
	if st.Backlog != 40 || st.InQueue != 0 || e.calls() != 0 {
		t.Fatalf("with the bulk queue paused the feeder moved rows: %+v, %d calls", st, e.calls())
	}
	if !st.QueuePaused || !strings.Contains(st.Waiting, bulkQ+" is paused") || !strings.Contains(st.Waiting, "asynq queue unpause") {
		t.Fatalf("status does not say why nothing moves: queue_paused=%v waiting=%q", st.QueuePaused, st.Waiting)
	}
	if err := e.insp.UnpauseQueue(bulkQ); err != nil {
		t.Fatal(err)
	}
	st = e.waitState("held", StateDone, 20*time.Second)
	if st.Recalled != 40 || st.Waiting != "" || st.QueuePaused {
		t.Fatalf("after unpausing: %+v", st)
	}
}

// Without a worker, status says that nothing is fed and what to start.
func TestStatusSaysWhenNoWorkerRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.importRows("idle", msgRows(0, 3))
	if st := e.status("idle"); !strings.Contains(st.Waiting, "no worker of app 1400000000 is running") {
		t.Fatalf("waiting = %q", st.Waiting)
	}
	_ = context.Background
}

// A task waiting for a retry that is run now by hand counts as queued, not
// retrying, and is counted once when it ends.
func TestRetryRunNowByHandCountsAsQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{feeder: FeederConfig{SyncInterval: 100 * time.Millisecond}})
	rows := msgRows(0, 2)
	e.sim.Force(rows[0].msgKey, 90009, 0) // a configuration error: kept, retried a minute later
	e.importRows("runnow", rows)
	e.waitFor("the kept task to be retrying", 10*time.Second, func() bool {
		st := e.status("runnow")
		return st.Retrying == 1 && st.Recalled == 1
	})
	if err := e.insp.PauseQueue(bulkQ); err != nil { // so that it stays queued where the test can see it
		t.Fatal(err)
	}
	if err := e.insp.RunTask(bulkQ, taskIDOfRow(rows[0])); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the task run now to count as queued", 15*time.Second, func() bool {
		st := e.status("runnow")
		return st.Retrying == 0 && st.InQueue == 1
	})
	e.sim.Reset()
	if err := e.insp.UnpauseQueue(bulkQ); err != nil {
		t.Fatal(err)
	}
	st := e.waitState("runnow", StateDone, 10*time.Second)
	if st.Recalled != 2 || st.Retrying != 0 || st.Ended() != st.Queued {
		t.Fatalf("status %+v; want both recalled", st)
	}
}

// A kept re-run on its last attempt (asynq archived it, and a worker moved
// it to asynq's scheduled set until due: worker.LastAttemptsKey) that an
// operator then archives by hand is a dead letter like any task archived
// by hand: it stays archived rather than being put back, and the campaign
// counts it dead-lettered, audits it and is done again.
func TestRerunDeadLetterKeptThenArchivedByHandStaysDead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, id := keptRerun(t, e, "shelved")
	e.waitFor("the kept re-run out of asynq's archive", 10*time.Second, func() bool {
		info, err := e.insp.GetTaskInfo(bulkQ, id)
		return err == nil && info.State == asynq.TaskStateScheduled
	})
	if err := e.insp.ArchiveTask(bulkQ, id); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the archived re-run counted dead-lettered and the campaign done again", 10*time.Second, func() bool {
		st := e.status("shelved")
		return st.State == StateDone && st.DeadLettered == 1
	})
	if st := e.status("shelved"); st.Remaining() != 0 || st.Ended() != st.Queued || st.Recalled != 2 {
		t.Fatalf("status %+v; want done, 2 recalled, 1 dead letter, nothing left", st)
	}
	if hist := e.history("shelved"); len(hist) != 3 || !strings.HasPrefix(hist[2][5], detailArchivedByHand) {
		t.Fatalf("history %q; want the dead letter, then the re-run archived by hand", hist)
	}
	// No worker puts it back: its note is gone, and it is still archived.
	if in, err := e.rdb.HExists(t.Context(), worker.LastAttemptsKey, bulkQ+"/"+id).Result(); err != nil || in {
		t.Fatalf("the archived task is still noted as kept (%v): a worker will put it back", err)
	}
	info, err := e.insp.GetTaskInfo(bulkQ, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateArchived {
		t.Fatalf("task %s; want it archived", info.State)
	}
}

// A dead letter run again by hand that then ends without a call of its
// own, deleted by hand in asynq or removed by cancel, has its row in `export
// --history` too: the history does not end at the dead letter while the
// counts say it was deleted or cancelled.
func TestRerunDeletedOrCancelledHasItsHistoryRow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		end    func(e *env, id string)
		field  string // the count it ends in
		detail string // what the re-run's row says
	}{
		{"deleted by hand", func(e *env, id string) {
			e.deleteTask(id)
		}, fieldDeleted, rerunDetail(fieldDeleted)},
		{"cancelled", func(e *env, id string) {
			if _, err := e.mgr.Cancel(context.Background(), "gone"); err != nil {
				e.t.Fatal(err)
			}
		}, fieldCancelled, rerunDetail(fieldCancelled)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			msgKey, id := e.doneWithDeadLetter("gone")
			e.keepRerun("gone", msgKey, id)
			c.end(e, id)
			e.waitFor("the re-run's end counted", 10*time.Second, func() bool {
				st := e.status("gone")
				return st.Remaining() == 0 && st.Deleted+st.Cancelled == 1
			})
			st := e.status("gone")
			if got := map[string]int64{fieldDeleted: st.Deleted, fieldCancelled: st.Cancelled}[c.field]; got != 1 || st.DeadLettered != 0 {
				t.Fatalf("status %+v; want the re-run counted %s, no dead letter", st, c.field)
			}
			hist := e.history("gone")
			if len(hist) != 3 || hist[1][3] != "20022" {
				t.Fatalf("history %q; want the dead letter (20022), then one row for how its re-run ended", hist)
			}
			if last := hist[2]; last[2] != msgKey || last[3] != strconv.Itoa(worker.NoAnswer) || last[5] != c.detail {
				t.Fatalf("the re-run's row %q; want code %d (no answer of its own), detail %q", last, worker.NoAnswer, c.detail)
			}
			// No call was made: the meaning must not say a call failed.
			if m := hist[2][4]; !strings.Contains(m, "no call") {
				t.Errorf("the re-run's row means %q; want it to allow for no call at all (the detail says which)", m)
			}
		})
	}
}
