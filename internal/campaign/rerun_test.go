package campaign

import (
	"testing"
	"time"
)

// Rows appended to the file of a finished campaign and imported with the
// same `campaign start` are recalled: the import says it queued them.
func TestRowsAddedToAFinishedCampaignAreRecalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{})
	e.importRows("wave", msgRows(0, 5))
	e.waitState("wave", StateDone, 15*time.Second)

	res := e.importRows("wave", msgRows(0, 8)) // the same file, three rows appended
	if res.New != 3 || res.Already != 5 {
		t.Fatalf("re-run import %+v, want 3 new and 5 already queued", res)
	}
	e.waitFor("the 3 new rows recalled", 10*time.Second, func() bool { return e.calls() == 8 })
	st := e.waitState("wave", StateDone, 10*time.Second)
	if st.Pending != 0 || !st.ImportDone {
		t.Fatalf("status %+v, want done with nothing pending", st)
	}
}

// The feeder's done mark and an import's push are scripts on the same
// keys: whichever runs first, no pushed row is left in a done campaign,
// nor a reopened one outside the active set. A re-run's first batch fed
// and ended before its next batch is pushed must not let it be marked done.
func TestAPushAndTheDoneMarkLeaveNoRowsBehind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.importRows("wave", msgRows(0, 1))
	k := keysFor("wave")
	drain := func() { e.rdb.Del(ctx, k.backlog) } // as if fed and ended
	push := func(rows int64, r row) {
		t.Helper()
		if v, err := pushImportBatch(ctx, e.rdb, k, rows, rows+1, int(rows)+2, 0, 0, []any{r.encode()}); err != nil || v[0] != answerOK {
			t.Fatalf("push: %q %v", v, err)
		}
	}
	drain()
	if done, err := finishIfEmpty(ctx, e.rdb, k, time.Now()); err != nil || !done {
		t.Fatalf("mark done: %v %v", done, err)
	}
	push(1, msgRow(1)) // a re-run's first batch, into the done campaign
	if md, _ := readMeta(ctx, e.rdb, "wave"); md.state != StateRunning || md.importDone {
		t.Fatalf("after a push into a done campaign: state %s, import_done %v; want running, not done", md.state, md.importDone)
	}
	// The feeder read it done before the push: its cleanup must not take
	// the reopened campaign out of the active set (Import added it back).
	e.rdb.SAdd(ctx, activeKey, "wave")
	if err := leaveActive(ctx, e.rdb, "wave"); err != nil {
		t.Fatal(err)
	}
	if in, _ := e.rdb.SIsMember(ctx, activeKey, "wave").Result(); !in {
		t.Fatal("a campaign reopened by an import was taken out of the active set: the feeder never feeds it")
	}
	drain()
	if done, err := finishIfEmpty(ctx, e.rdb, k, time.Now()); err != nil || done {
		t.Fatalf("marked done between two batches of an import (%v, %v): the next batch would be left", done, err)
	}
}
