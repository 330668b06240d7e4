package campaign

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// export reads a campaign's export as records, header first.
func (e *env) export(name string) [][]string {
	e.t.Helper()
	return e.exportWith(e.mgr.Export, name)
}

// history reads a campaign's whole audit (export --history) as records,
// header first.
func (e *env) history(name string) [][]string {
	e.t.Helper()
	return e.exportWith(e.mgr.ExportHistory, name)
}

func (e *env) exportWith(export func(context.Context, string, io.Writer) (int, error), name string) [][]string {
	e.t.Helper()
	var b bytes.Buffer
	n, err := export(context.Background(), name, &b)
	if err != nil {
		e.t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		e.t.Fatal(err)
	}
	if len(recs) != n+1 {
		e.t.Fatalf("export wrote %d records and said %d", len(recs)-1, n)
	}
	return recs
}

func TestCampaignDrainsEndToEndWithCountsAndAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{noFeeder: true})
	rows := msgRows(0, 25) // plain: recalled
	already := msgRows(100, 105)
	for _, r := range already { // recalled before the campaign: 20023
		if resp, err := e.api.Withdraw(context.Background(), r.from, r.to, r.msgKey); err != nil || resp.ErrorCode != 0 {
			t.Fatalf("pre-recall: %+v %v", resp, err)
		}
	}
	rows = append(rows, already...)
	missing := msgRows(200, 204)
	for _, r := range missing {
		e.sim.ForgetMessage(r.from, r.to, r.msgKey) // 20022
	}
	rows = append(rows, missing...)
	badKey := []row{c2c("u300", "v300", "not-a-key"), c2c("u301", "v301", "x_1"), c2c("u302", "v302", "3_3")} // 90054
	rows = append(rows, badKey...)
	e.sim.DropAccount("ghost")
	gone := []row{c2c("ghost", "v400", "400_1_1"), c2c("ghost", "v401", "401_1_1")} // 90008
	rows = append(rows, gone...)
	flaky := msgRow(500)
	e.sim.Force(flaky.msgKey, 91000, 1)          // fails once, then recalled
	rows = append(rows, flaky, msgRow(0))        // and msgRow(0) twice: a duplicate
	rows = append(rows, c2c("u600", "v600", "")) // rejected at import

	res := e.importRows("drain", rows)
	if res.New != int64(len(rows)-1) || res.Rejected != 1 {
		t.Fatalf("import %+v", res)
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); wg.Wait() })
	e.startFeeder(ctx, &wg, FeederConfig{Window: 10, Batch: 4}) // small, so the window turns over many times
	st := e.waitState("drain", StateDone, 30*time.Second)

	want := Status{Recalled: 26, AlreadyRecalled: 5, DeadLettered: 9, Duplicates: 1, Queued: int64(len(rows) - 1), Rejected: 1}
	if st.Recalled != want.Recalled || st.AlreadyRecalled != want.AlreadyRecalled || st.DeadLettered != want.DeadLettered ||
		st.Duplicates != want.Duplicates || st.Queued != want.Queued || st.Rejected != want.Rejected ||
		st.Pending != 0 || st.Retrying != 0 || st.Ended() != st.Queued {
		t.Fatalf("status %+v\nwant recalled 26, already 5, dead 9, duplicates 1, queued %d, rejected 1, nothing pending", st, want.Queued)
	}
	if wantCodes := map[string]int64{"20022": 4, "90054": 3, "90008": 2}; !equalMaps(st.DeadByCode, wantCodes) {
		t.Errorf("dead letters by code %v, want %v", st.DeadByCode, wantCodes)
	}
	if got := e.sim.Fate(flaky.from, flaky.to, flaky.msgKey); !slices.Equal(got, []int{91000, 0}) {
		t.Errorf("the flaky message saw %v, want [91000 0]", got)
	}
	if got := e.sim.Fate("u0", "v0", msgRow(0).msgKey); !slices.Equal(got, []int{0}) {
		t.Errorf("the duplicated message saw %v, want one call", got)
	}

	wantDead := map[string]string{}
	for _, r := range missing {
		wantDead[r.msgKey] = "20022"
	}
	for _, r := range badKey {
		wantDead[r.msgKey] = "90054"
	}
	for _, r := range gone {
		wantDead[r.msgKey] = "90008"
	}
	check := func(when string) {
		t.Helper()
		recs := e.export("drain")
		if !slices.Equal(recs[0], ExportHeader) {
			t.Fatalf("%s: header %q", when, recs[0])
		}
		got := map[string]string{}
		for _, r := range recs[1:] {
			got[r[2]] = r[3]
			if r[4] == "" || r[6] == "" {
				t.Errorf("%s: export row %q lacks the meaning or the time", when, r)
			}
		}
		if !equalMaps(got, wantDead) || len(recs)-1 != len(wantDead) {
			t.Fatalf("%s: export lists %v, want %v", when, got, wantDead)
		}
	}
	check("after the drain")
	// The audit is recallq's own: it does not depend on asynq's archive,
	// which trims (10,000 tasks, 90 days).
	if n, err := e.insp.DeleteAllArchivedTasks(bulkQ); err != nil || n != 9 {
		t.Fatalf("deleted %d archived tasks (%v), want 9", n, err)
	}
	check("after asynq's archive was emptied")
}

func equalMaps[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// deadEvent is a dead letter as the handler reports it.
func deadEvent(r row, code int) worker.Event {
	rc := tasks.Recall{SDKAppID: testApp, FromAccount: r.from, ToAccount: r.to, MsgKey: r.msgKey, Campaign: "big"}
	return worker.Event{TaskID: rc.TaskID(), Queue: tasks.QueueBulk, Recall: rc, Code: code, Fate: worker.FateDeadLettered}
}

func TestAuditKeepsEveryDeadLetterBeyondAsynqsArchiveLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 10_050 // asynq's archive keeps at most 10,000
	rows := msgRows(0, n)
	e.importRows("big", rows)
	// Hand every row to "asynq" (the window) as the feeder would.
	k := keysFor("big")
	pipe := e.rdb.Pipeline()
	for _, r := range rows {
		ev := deadEvent(r, 20022)
		pipe.HSet(context.Background(), k.window, ev.TaskID, r.encode())
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(RecorderConfig{Redis: e.rdb, Logger: e.log})
	for _, r := range rows {
		rec.Record(deadEvent(r, 20022))
	}
	recs := e.export("big")
	if len(recs)-1 != n {
		t.Fatalf("export lists %d dead letters, want %d", len(recs)-1, n)
	}
	seen := map[string]bool{}
	for _, r := range recs[1:] {
		seen[r[2]] = true
	}
	if len(seen) != n {
		t.Fatalf("export lists %d distinct messages, want %d", len(seen), n)
	}
	if st := e.status("big"); st.DeadLettered != n || st.DeadByCode["20022"] != n {
		t.Fatalf("status %+v", st)
	}
}

func TestRecorderCountsEachTaskOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rows := msgRows(0, 2)
	e.importRows("once", rows)
	k := keysFor("once")
	rec := NewRecorder(RecorderConfig{Redis: e.rdb, Logger: e.log})
	ev := func(r row, f worker.Fate) worker.Event {
		x := deadEvent(r, 0)
		x.Recall.Campaign, x.Fate = "once", f
		x.TaskID = x.Recall.TaskID()
		return x
	}
	for _, r := range rows {
		e.rdb.HSet(context.Background(), k.window, ev(r, worker.FateRecalled).TaskID, r.encode())
	}
	rec.Record(ev(rows[0], worker.FateRetrying))
	if st := e.status("once"); st.Retrying != 1 || st.InQueue != 1 {
		t.Fatalf("after a retry: %+v", st)
	}
	rec.Record(ev(rows[0], worker.FateRecalled))
	rec.Record(ev(rows[0], worker.FateAlreadyRecalled))              // the same task ran again (its worker died before asynq heard)
	rec.Record(ev(rows[1], worker.FateCalledAgain))                  // not an end
	rec.Record(worker.Event{TaskID: "x", Fate: worker.FateRecalled}) // not a campaign's
	st := e.status("once")
	if st.Recalled != 1 || st.AlreadyRecalled != 0 || st.Retrying != 0 || st.InQueue != 1 {
		t.Fatalf("status %+v; want 1 recalled, nothing retrying, 1 still queued", st)
	}
}

// TestPauseStopsCallsAndResumeFinishes pauses a campaign midway: once the
// calls in flight have ended no call is made until resume, and after
// resume every message is recalled exactly once.
func TestPauseStopsCallsAndResumeFinishes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{rate: 50})
	const n = 150
	e.importRows("pausing", msgRows(0, n))
	e.waitFor("some calls", 20*time.Second, func() bool { return e.calls() >= 20 })
	res, err := e.mgr.Pause(context.Background(), "pausing")
	if err != nil {
		t.Fatal(err)
	}
	atPause := e.calls()
	if res.Returned == 0 {
		t.Errorf("pause returned no task to the backlog: %+v", res)
	}
	// The few taken by the worker end; then nothing more happens.
	e.waitFor("the calls in flight to end", 10*time.Second, func() bool { return e.status("pausing").InQueue == 0 })
	before := e.calls()
	if before-atPause > int64(res.Running) {
		t.Fatalf("%d calls after pause returned, but only %d tasks were running", before-atPause, res.Running)
	}
	time.Sleep(700 * time.Millisecond) // 35 calls' worth at the rate
	if after := e.calls(); after != before {
		t.Fatalf("%d calls while paused", after-before)
	}
	st := e.status("pausing")
	if st.State != StatePaused || st.Ended()+st.Pending != n || st.Ended() != before {
		t.Fatalf("paused status %+v after %d calls", st, before)
	}
	if _, err := e.mgr.Resume(context.Background(), "pausing"); err != nil {
		t.Fatal(err)
	}
	st = e.waitState("pausing", StateDone, 30*time.Second)
	if st.Recalled != n {
		t.Fatalf("status %+v, want %d recalled", st, n)
	}
	for _, r := range msgRows(0, n) {
		if got := e.sim.Fate(r.from, r.to, r.msgKey); !slices.Equal(got, []int{0}) {
			t.Fatalf("%s was answered %v, want exactly one recall", r.msgKey, got)
		}
	}
}

func TestCancelRemovesWhatWasNotCalledAndSaysHowMany(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{rate: 50, feeder: FeederConfig{Window: 50}})
	const n = 200
	rows := msgRows(0, n)
	e.importRows("cancelling", rows)
	e.waitFor("some calls", 20*time.Second, func() bool { return e.calls() >= 20 })
	res, err := e.mgr.Cancel(context.Background(), "cancelling")
	if err != nil {
		t.Fatal(err)
	}
	if res.Backlog == 0 || res.Queued == 0 || res.StillRunning != 0 {
		t.Errorf("cancel %+v: want rows removed from both the backlog and the queue, none left running", res)
	}
	time.Sleep(300 * time.Millisecond)
	called := 0
	for _, r := range rows {
		switch got := e.sim.Fate(r.from, r.to, r.msgKey); len(got) {
		case 0:
		case 1:
			called++
		default:
			t.Fatalf("%s called %d times", r.msgKey, len(got))
		}
	}
	if int64(called)+res.Removed() != n {
		t.Fatalf("%d called + %d removed != %d rows: a removed recall was called, or a row was lost", called, res.Removed(), n)
	}
	st := e.status("cancelling")
	if st.State != StateCancelled || st.Cancelled != res.Removed() || st.Recalled != int64(called) || st.Pending != 0 {
		t.Fatalf("status %+v after cancel %+v and %d calls", st, res, called)
	}
	time.Sleep(300 * time.Millisecond)
	if int(e.calls()) != called {
		t.Fatalf("calls went on after cancel: %d, then %d", called, e.calls())
	}
	if _, err := e.mgr.Resume(context.Background(), "cancelling"); err == nil {
		t.Fatal("a cancelled campaign resumed")
	}
}

// A task being called when cancel stops waiting for it ends on its own,
// and the feeder watches it until it does, as it watches a cancelled
// campaign's re-run: kept for later and then deleted by hand, it is
// counted deleted rather than retrying for ever, and the feeder lets the
// campaign go once nothing of it is left.
func TestCancelWatchesTheTasksStillBeingCalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{latency: 2 * time.Second, feeder: FeederConfig{SyncInterval: 100 * time.Millisecond}})
	r := msgRow(0)
	e.sim.Force(r.msgKey, 90009, 0) // a configuration error: kept, tried again a minute later
	e.importRows("midcall", []row{r})
	id := taskIDOfRow(r)
	e.waitFor("the task to be called", 20*time.Second, func() bool {
		info, err := e.insp.GetTaskInfo(bulkQ, id)
		return err == nil && info.State == asynq.TaskStateActive
	})
	mgr, err := NewManager(ManagerConfig{Redis: e.rdb, Queue: e.opt, Logger: e.log, CancelWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	res, err := mgr.Cancel(context.Background(), "midcall")
	if err != nil || res.StillRunning != 1 {
		t.Fatalf("cancel %+v %v; want the task still being called", res, err)
	}
	e.waitFor("the task kept for later", 10*time.Second, func() bool {
		info, err := e.insp.GetTaskInfo(bulkQ, id)
		return err == nil && (info.State == asynq.TaskStateRetry || info.State == asynq.TaskStateScheduled) && e.status("midcall").Retrying == 1
	})
	e.deleteTask(id)
	e.waitFor("the deleted task counted", 10*time.Second, func() bool { return e.status("midcall").Deleted == 1 })
	if st := e.status("midcall"); st.State != StateCancelled || st.Remaining() != 0 || st.Ended() != st.Queued {
		t.Fatalf("status %+v; want cancelled, 1 deleted, nothing left", st)
	}
	e.waitInactive("midcall")
}

func TestFeederKeepsOnlyTheWindowInAsynq(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.importRows("window", msgRows(0, 3000))
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	e.startFeeder(ctx, &wg, FeederConfig{Window: 300, Batch: 100})
	e.waitFor("the window to fill", 10*time.Second, func() bool { return e.status("window").InQueue == 300 && e.pending() == 300 })
	time.Sleep(200 * time.Millisecond) // several more passes
	cancel()
	wg.Wait()
	st := e.status("window")
	info, err := e.insp.GetQueueInfo(bulkQ)
	if err != nil {
		t.Fatal(err)
	}
	if st.InQueue != 300 || st.Backlog != 2700 || info.Pending != 300 {
		t.Fatalf("in queue %d, backlog %d, asynq pending %d; want 300, 2700, 300", st.InQueue, st.Backlog, info.Pending)
	}
}

// TestFeederReplaysABatchCutShortByACrash: a feeder died after queuing
// half of a batch; the next one queues the rest, each task once, and the
// tasks already queued are not counted as duplicates.
func TestFeederReplaysABatchCutShortByACrash(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rows := msgRows(0, 40)
	e.importRows("replay", rows)
	k := keysFor("replay")
	ctx := context.Background()
	claimed, replay, running, err := claimBatch(ctx, e.rdb, k, 20)
	if err != nil || !running || replay || len(claimed) != 20 {
		t.Fatalf("claim: %q replay %v running %v: %v", claimed, replay, running, err)
	}
	c := asynq.NewClient(e.opt)
	defer c.Close()
	for _, s := range claimed[:10] { // the crash comes after 10 of 20
		r, _ := decodeRow(s)
		rc := tasks.Recall{SDKAppID: testApp, FromAccount: r.from, ToAccount: r.to, MsgKey: r.msgKey, Campaign: "replay"}
		task, _ := tasks.NewTask(rc, tasks.Options{Queue: tasks.QueueBulk})
		e.rdb.HSet(ctx, k.window, rc.TaskID(), s)
		if _, err := c.Enqueue(task); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	fctx, cancel := context.WithCancel(ctx)
	e.startFeeder(fctx, &wg, FeederConfig{})
	e.waitFor("the backlog to empty", 10*time.Second, func() bool { return e.status("replay").Backlog == 0 })
	cancel()
	wg.Wait()
	st := e.status("replay")
	info, _ := e.insp.GetQueueInfo(bulkQ)
	if st.InQueue != 40 || st.Duplicates != 0 || info.Pending != 40 {
		t.Fatalf("in queue %d, duplicates %d, asynq pending %d; want 40, 0, 40", st.InQueue, st.Duplicates, info.Pending)
	}
	if md, _ := readMeta(ctx, e.rdb, "replay"); md.fed != 40 || md.feeding != 0 {
		t.Fatalf("fed %d, feeding %d", md.fed, md.feeding)
	}
}

func TestDuplicatesAreQueuedOnceAndCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.importRows("earlier", msgRows(5, 8))
	rows := append(msgRows(0, 10), msgRow(3)) // row 3 twice; rows 5-7 in an earlier campaign too
	e.importRows("dups", rows)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	e.startFeeder(ctx, &wg, FeederConfig{})
	e.waitFor("the backlogs to empty", 10*time.Second, func() bool {
		return e.status("dups").Backlog == 0 && e.status("earlier").Backlog == 0
	})
	cancel()
	wg.Wait()
	st, earlier := e.status("dups"), e.status("earlier")
	info, _ := e.insp.GetQueueInfo(bulkQ)
	// Which campaign queues rows 5-7 first depends on the feeder's order;
	// either way each message is queued once.
	if st.Queued != 11 || st.Duplicates+earlier.Duplicates != 4 || st.InQueue+earlier.InQueue != 10 || info.Pending != 10 {
		t.Fatalf("dups %+v\nearlier %+v\nasynq pending %d; want 4 duplicates in all and 10 tasks", st, earlier, info.Pending)
	}
}

func TestFeederLockHandsOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fk := feedKeysFor(testApp)
	cfg := FeederConfig{LockTTL: 600 * time.Millisecond, Interval: 20 * time.Millisecond}
	var wgA, wgB sync.WaitGroup
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	a := e.startFeeder(ctxA, &wgA, cfg)
	e.waitFor("a to lead", 15*time.Second, a.Leader)
	b := e.startFeeder(ctxB, &wgB, cfg)
	time.Sleep(300 * time.Millisecond)
	if b.Leader() {
		t.Fatal("two feeders lead at once")
	}
	// A stops (SIGTERM): it releases the lock, B takes over and feeds.
	stopA()
	wgA.Wait()
	e.waitFor("b to lead", 15*time.Second, b.Leader)
	e.importRows("handover", msgRows(0, 50))
	e.waitFor("b to feed", 15*time.Second, func() bool { return e.status("handover").InQueue == 50 })

	// B is killed: its lock stays until it expires, then C takes over.
	stopB()
	wgB.Wait()
	if err := e.rdb.Set(context.Background(), fk.lock, "killed-worker", cfg.LockTTL).Err(); err != nil {
		t.Fatal(err)
	}
	var wgC sync.WaitGroup
	ctxC, stopC := context.WithCancel(context.Background())
	defer func() { stopC(); wgC.Wait() }()
	c := e.startFeeder(ctxC, &wgC, cfg)
	time.Sleep(100 * time.Millisecond)
	if c.Leader() {
		t.Fatal("c took a lock that was still held")
	}
	e.waitFor("c to lead once the dead holder's lock expired", 15*time.Second, c.Leader)
	e.importRows("after-kill", msgRows(100, 120))
	e.waitFor("c to feed", 15*time.Second, func() bool { return e.status("after-kill").InQueue == 20 })
}

func TestListShowsEveryCampaignNewestFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.importRows("first", msgRows(0, 3))
	time.Sleep(1100 * time.Millisecond) // created times have second resolution
	e.importRows("second", msgRows(3, 5))
	all, err := e.mgr.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		names = append(names, fmt.Sprintf("%s:%d:%s", s.Name, s.Queued, s.State))
	}
	if want := []string{"second:2:running", "first:3:running"}; !slices.Equal(names, want) {
		t.Fatalf("list = %v, want %v", names, want)
	}
	if st := e.status("first"); st.RateSource != "RECALL_RATE, shared by 2 running campaigns" || st.Rate != 100 || st.ETASeconds != 0.03 {
		t.Fatalf("ETA from %v at %v: %v", st.RateSource, st.Rate, st.ETASeconds)
	}
	_ = sort.Strings
	_ = strings.Contains
}

// TestReconciliationSettlesTasksWhoseEndWasNeverRecorded: a task deleted
// from asynq by hand and one archived without the Recorder hearing of it
// would keep the campaign from ever finishing; the feeder settles both.
func TestReconciliationSettlesTasksWhoseEndWasNeverRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rows := msgRows(0, 3)
	e.importRows("lost", rows)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	e.startFeeder(ctx, &wg, FeederConfig{SyncInterval: 100 * time.Millisecond})
	// The window counts a row before its task is queued: wait for asynq.
	e.waitFor("the rows to be queued", 15*time.Second, func() bool { return e.status("lost").InQueue == 3 && e.pending() == 3 })
	id := func(r row) string {
		return tasks.Recall{SDKAppID: testApp, FromAccount: r.from, ToAccount: r.to, MsgKey: r.msgKey}.TaskID()
	}
	if err := e.insp.DeleteTask(bulkQ, id(rows[0])); err != nil {
		t.Fatal(err)
	}
	if err := e.insp.ArchiveTask(bulkQ, id(rows[1])); err != nil {
		t.Fatal(err)
	}
	ev := deadEvent(rows[2], 0)
	ev.Recall.Campaign, ev.Fate = "lost", worker.FateRecalled
	NewRecorder(RecorderConfig{Redis: e.rdb, Logger: e.log}).Record(ev)

	st := e.waitState("lost", StateDone, 10*time.Second)
	if st.Recalled != 1 || st.DeadLettered != 1 || st.Deleted != 1 || st.DeadByCode["-1"] != 1 {
		t.Fatalf("status %+v; want 1 recalled, 1 dead-lettered, 1 deleted", st)
	}
	recs := e.export("lost")
	if len(recs) != 2 || recs[1][2] != rows[1].msgKey || !strings.Contains(recs[1][5], "archived by hand") {
		t.Fatalf("export %q", recs)
	}
	if n, _ := e.rdb.SIsMember(context.Background(), activeKey, "lost").Result(); n {
		t.Fatal("a done campaign is still in the feeder's index")
	}
}

// TestWindowTasksInTheLegacyQueueSurviveTheUpgrade: a campaign fed before
// queues carried the app has its window in the legacy bulk queue. After
// the upgrade the feeder's sync, a pause and a cancel find those tasks
// there: none is counted deleted while it still waits.
func TestWindowTasksInTheLegacyQueueSurviveTheUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rows := msgRows(0, 3)
	e.importRows("old", rows)
	ctx := context.Background()
	// As the feeder before the upgrade did: the rows move to the window,
	// the tasks to recall_bulk.
	k := keysFor("old")
	c := asynq.NewClientFromRedisClient(e.rdb)
	for _, r := range rows {
		rc := tasks.Recall{SDKAppID: testApp, FromAccount: r.from, ToAccount: r.to, MsgKey: r.msgKey, Campaign: "old"}
		payload, err := rc.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.EnqueueContext(ctx, asynq.NewTask(tasks.TypeRecall, payload), asynq.TaskID(rc.TaskID()), asynq.Queue(tasks.QueueBulk)); err != nil {
			t.Fatal(err)
		}
		s, err := e.rdb.LPop(ctx, k.backlog).Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.HSet(ctx, k.window, rc.TaskID(), s).Err(); err != nil {
			t.Fatal(err)
		}
	}
	n, err := syncWindow(ctx, e.rdb, e.insp, "old", testApp)
	if err != nil || n != 0 {
		t.Fatalf("sync settled %d (%v); want 0: the tasks wait in %s", n, err, tasks.QueueBulk)
	}
	if st := e.status("old"); st.Deleted != 0 || st.InQueue != 3 {
		t.Fatalf("after sync: %+v; want 3 in the queue, none deleted", st)
	}
	res, err := e.mgr.Cancel(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if res.Queued != 3 {
		t.Fatalf("cancel: %+v; want the 3 legacy tasks removed as queued", res)
	}
	if qi, err := e.insp.GetQueueInfo(tasks.QueueBulk); err != nil || qi.Pending != 0 {
		t.Fatalf("legacy bulk queue after cancel: %+v, %v; want empty", qi, err)
	}
}

// slowScripts delays every script call by d and counts them: a Redis a
// little far away, where writes overlap.
type slowScripts struct {
	d     time.Duration
	calls atomic.Int64
}

func (s *slowScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *slowScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (s *slowScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := strings.ToLower(cmd.Name()); n == "evalsha" || n == "eval" {
			s.calls.Add(1)
			time.Sleep(s.d)
		}
		return next(ctx, cmd)
	}
}

// The ends that come while a write is on its way go together in the next
// one (one script call per campaign), and each is counted exactly once:
// the ten seqs of a group call settle at once and must not cost ten round
// trips each on the worker's one Redis.
func TestRecorderWritesEndsThatComeTogetherInOneCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const perCampaign = 40
	names := []string{"left", "right"}
	var events []worker.Event
	for ci, name := range names {
		rows := msgRows(ci*perCampaign, (ci+1)*perCampaign)
		e.importRows(name, rows)
		k := keysFor(name)
		for i, r := range rows {
			ev := deadEvent(r, 20022)
			ev.Recall.Campaign = name
			ev.TaskID = ev.Recall.TaskID()
			switch i % 4 {
			case 0, 1:
				ev.Fate, ev.Code = worker.FateRecalled, 0
			case 2:
				ev.Fate, ev.Code = worker.FateRetrying, 91000
			}
			e.rdb.HSet(context.Background(), k.window, ev.TaskID, r.encode())
			events = append(events, ev)
		}
	}
	slow := &slowScripts{d: 20 * time.Millisecond}
	rdb := e.redis.Client(t)
	rdb.AddHook(slow)
	rec := NewRecorder(RecorderConfig{Redis: rdb, Logger: e.log})
	var wg sync.WaitGroup
	for _, ev := range events {
		wg.Go(func() { rec.Record(ev) })
	}
	wg.Wait()
	for _, name := range names {
		st := e.status(name)
		if st.Recalled != perCampaign/2 || st.DeadLettered != perCampaign/4 || st.DeadByCode["20022"] != perCampaign/4 ||
			st.Retrying != perCampaign/4 {
			t.Errorf("campaign %s: %+v, want %d recalled, %d dead letters (20022), %d retrying", name, st,
				perCampaign/2, perCampaign/4, perCampaign/4)
		}
		if recs := e.export(name); len(recs)-1 != perCampaign/4 {
			t.Errorf("campaign %s: the audit lists %d dead letters, want %d", name, len(recs)-1, perCampaign/4)
		}
	}
	// One write alone, then the rest in a few: far fewer calls than events.
	if n := slow.calls.Load(); n > int64(len(events))/4 {
		t.Errorf("%d events took %d script calls; ends that wait together should share one per campaign", len(events), n)
	}
	t.Logf("%d events, %d script calls", len(events), slow.calls.Load())
}
