package campaign

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/imsim"
)

// groupRow is the group row of seq in groupID (and topicID).
func groupRow(groupID, topicID string, seq uint64) row {
	return row{kind: kindGroup, groupID: groupID, topicID: topicID, msgSeq: fmt.Sprint(seq)}
}

// TestGroupFileDrainsToRecalledThroughAWorker imports a GroupId,MsgSeq
// file (with a TopicId column), rejects its bad rows with their lines, and
// drains it through a real worker against the simulator: each message is
// recalled once, one past its time limit (10031) is dead-lettered, and the
// export names it by its group and seq.
func TestGroupFileDrainsToRecalledThroughAWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{})
	const group, n = "@TGS#lobby", 23
	if err := e.sim.CreateGroup(imsim.GroupSpec{GroupID: group, Messages: n}); err != nil {
		t.Fatal(err)
	}
	topic := group + "@TOPIC#_news"
	topicSeq := e.sim.PostGroupMessage(group, topic, time.Now())
	const late = 7
	e.sim.ForceGroupSeq(group, "", late, 10031, 0)

	var b strings.Builder
	b.WriteString("MsgSeq,GroupId,TopicId,note\n") // line 1
	for seq := 1; seq <= n; seq++ {                // lines 2..24
		fmt.Fprintf(&b, "%d,%s,,spam\n", seq, group)
	}
	fmt.Fprintf(&b, "%d,%s,%s,\n", topicSeq, group, topic) // 25
	b.WriteString("x1," + group + ",,\n")                  // 26: not a number
	b.WriteString("0," + group + ",,\n")                   // 27: seq 0
	b.WriteString("3,,,\n")                                // 28: no group
	b.WriteString("4," + strings.Repeat("g", 49) + ",,\n") // 29: GroupId too long
	rows, rejects, res := readAll(t, e, "lobby", "lobby.csv", b.String())
	if res.New != n+1 || res.Rejected != 4 || len(rows) != n+1 {
		t.Fatalf("import %+v, %d rows", res, len(rows))
	}
	if want := groupRow(group, topic, topicSeq); rows[n] != want {
		t.Fatalf("topic row %+v, want %+v", rows[n], want)
	}
	want := map[int]string{26: `MsgSeq: "x1" is not a whole number`, 27: "MsgSeq: is missing or 0", 28: "GroupId: is empty", 29: "GroupId: is 49 bytes long"}
	for _, r := range rejects {
		if w := want[r.Line]; w == "" || !strings.HasPrefix(r.Reason, w) {
			t.Errorf("reject line %d %q, want %q", r.Line, r.Reason, w)
		}
	}
	if len(rejects) != len(want) || rejects[0].GroupID != group || rejects[0].MsgSeq != "x1" {
		t.Fatalf("rejects %+v", rejects)
	}

	st := e.waitState("lobby", StateDone, 30*time.Second)
	if st.Recalled != n || st.DeadLettered != 1 || st.DeadByCode["10031"] != 1 || st.Ended() != st.Queued || st.Queued != n+1 {
		t.Fatalf("status %+v: want %d recalled, 1 dead-lettered (10031)", st, n)
	}
	for seq := uint64(1); seq <= n; seq++ {
		wantFate := []int{0}
		if seq == late {
			wantFate = []int{10031}
		}
		if got := e.sim.GroupFate(group, "", seq); !slices.Equal(got, wantFate) {
			t.Errorf("seq %d answered %v, want %v", seq, got, wantFate)
		}
	}
	if got := e.sim.GroupFate(group, topic, topicSeq); !slices.Equal(got, []int{0}) {
		t.Errorf("the topic's message answered %v, want [0]", got)
	}

	recs := e.export("lobby")
	if len(recs) != 2 {
		t.Fatalf("export %q, want the one dead letter", recs)
	}
	got := recs[1]
	if got[0] != "" || got[2] != "" || got[3] != "10031" || !strings.Contains(got[4], "time limit") ||
		got[7] != "'"+group || got[8] != "" || got[9] != fmt.Sprint(late) {
		t.Fatalf("export row %q: want the group and seq in GroupId and MsgSeq, code 10031 and its meaning", got)
	}
}

// TestGroupDeadLetterRunAgainLeavesTheExport runs a group dead letter
// again (as asynqmon does) after the cause is gone: the campaign counts it
// recalled and the export, which finds current dead letters by the task's
// ID, no longer lists it.
func TestGroupDeadLetterRunAgainLeavesTheExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{})
	const group = "@TGS#again"
	if err := e.sim.CreateGroup(imsim.GroupSpec{GroupID: group, Messages: 3}); err != nil {
		t.Fatal(err)
	}
	e.sim.ForceGroupSeq(group, "", 2, 10031, 1)
	if _, _, res := readAll(t, e, "again", "again.jsonl", `{"GroupId":"@TGS#again","MsgSeq":1}
{"GroupId":"@TGS#again","MsgSeq":"2"}
{"GroupId":"@TGS#again","MsgSeq":3}
`); res.New != 3 {
		t.Fatalf("import %+v", res)
	}
	e.waitState("again", StateDone, 30*time.Second)
	if recs := e.export("again"); len(recs) != 2 || recs[1][9] != "2" {
		t.Fatalf("export %q, want seq 2", recs)
	}
	id, err := groupRow(group, "", 2).taskID(testApp)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.insp.RunTask(bulkQ, id); err != nil {
		t.Fatalf("run the dead letter again: %v", err)
	}
	e.waitFor("the re-run to be counted", 10*time.Second, func() bool { return e.status("again").Recalled == 3 })
	if st := e.status("again"); st.DeadLettered != 0 {
		t.Fatalf("status %+v", st)
	}
	if recs := e.export("again"); len(recs) != 1 {
		t.Fatalf("export %q, want no dead letter", recs)
	}
	var b strings.Builder
	if _, err := e.mgr.ExportHistory(context.Background(), "again", &b); err != nil || strings.Count(b.String(), "\n") != 3 {
		t.Fatalf("history %q (%v): want the dead letter and its re-run", b.String(), err)
	}
}

// TestGroupRowsArePausedAndResumed pauses a campaign of group and
// one-to-one rows midway: the rows taken back decode as their kind, and
// after resume every message is recalled exactly once.
func TestGroupRowsArePausedAndResumed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{rate: 20, feeder: FeederConfig{Window: 20}})
	const group, n = "@TGS#pause", 60
	if err := e.sim.CreateGroup(imsim.GroupSpec{GroupID: group, Messages: n}); err != nil {
		t.Fatal(err)
	}
	rows := make([]Row, 0, 2*n)
	for i := range n {
		r := msgRow(i)
		rows = append(rows, Row{Group: true, GroupID: group, MsgSeq: uint64(i + 1)}, Row{From: r.from, To: r.to, MsgKey: r.msgKey})
	}
	if _, err := ImportRows(context.Background(), ImportConfig{Redis: e.rdb, Name: "mixed", SDKAppID: testApp}, "test", rows); err != nil {
		t.Fatal(err)
	}
	e.waitFor("some ends", 20*time.Second, func() bool { return e.status("mixed").Ended() >= 10 })
	if _, err := e.mgr.Pause(context.Background(), "mixed"); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the tasks in flight to end", 10*time.Second, func() bool { return e.status("mixed").InQueue == 0 })
	if st := e.status("mixed"); st.State != StatePaused || st.Ended()+st.Pending != 2*n {
		t.Fatalf("paused status %+v", st)
	}
	for _, r := range backlogRows(t, e, "mixed") {
		if r.kind == kindGroup && r.groupID != group {
			t.Fatalf("a group row came back as %+v", r)
		}
	}
	if _, err := e.mgr.Resume(context.Background(), "mixed"); err != nil {
		t.Fatal(err)
	}
	if st := e.waitState("mixed", StateDone, 60*time.Second); st.Recalled != 2*n {
		t.Fatalf("status %+v, want %d recalled", st, 2*n)
	}
	for i := range n {
		r := msgRow(i)
		if got := e.sim.GroupFate(group, "", uint64(i+1)); !slices.Equal(got, []int{0}) {
			t.Fatalf("seq %d answered %v, want one recall", i+1, got)
		}
		if got := e.sim.Fate(r.from, r.to, r.msgKey); !slices.Equal(got, []int{0}) {
			t.Fatalf("%s answered %v, want one recall", r.msgKey, got)
		}
	}
}
