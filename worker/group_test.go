package worker_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// seqCodes are the codes group_msg_recall answers per seq (RetCode); the
// others are the call's ErrorCode.
var seqCodes = map[int]bool{10030: true, 10031: true, 10032: true, 10033: true, 10041: true}

// queueGroup queues one group recall on queue and returns its task ID.
func (e *env) queueGroup(queue string, g tasks.GroupRecall) string {
	e.t.Helper()
	if g.SDKAppID == 0 {
		g.SDKAppID = testApp
	}
	task, err := tasks.NewGroupTask(g, tasks.Options{Queue: queue})
	if err != nil {
		e.t.Fatal(err)
	}
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: e.redis.Addr})
	defer c.Close()
	if _, err := c.Enqueue(task); err != nil {
		e.t.Fatalf("queue %+v: %v", g, err)
	}
	return g.TaskID()
}

func (e *env) newGroup(id string, messages uint64) {
	e.t.Helper()
	if err := e.sim.CreateGroup(imsim.GroupSpec{GroupID: id, Messages: messages}); err != nil {
		e.t.Fatal(err)
	}
}

// TestEveryGroupOutcomeRowEndToEnd forces each code of group_msg_recall's
// rows of the outcome table (its own and the shared ones) at the
// simulator, a RetCode for the per-seq codes and the call's ErrorCode for
// the others, and checks where the task ends in asynq and the fate the
// handler recorded.
func TestEveryGroupOutcomeRowEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{breakerThreshold: 1000, groupUrgentLinger: -1})
	type row struct {
		o     worker.Outcome
		group string
		id    string
	}
	var rows []row
	for _, o := range worker.GroupOutcomes() {
		group := fmt.Sprintf("grp_%d", o.Code)
		e.newGroup(group, 10)
		switch {
		case o.Code == 0:
		case seqCodes[o.Code]:
			e.sim.ForceGroupSeq(group, "", 3, o.Code, 1)
		default:
			e.sim.ForceGroup(group, o.Code, 1)
		}
		rows = append(rows, row{o: o, group: group, id: e.queueGroup(tasks.QueueUrgent, tasks.GroupRecall{GroupID: group, MsgSeq: 3})})
	}
	for _, rw := range rows {
		t.Run(fmt.Sprintf("%d_%s", rw.o.Code, rw.o.Class), func(t *testing.T) {
			info := pinRow(t, e, urgentQ, rw.id, rw.o, func() []int { return e.sim.GroupFate(rw.group, "", 3) })
			if info.State != asynq.TaskStateCompleted {
				return
			}
			var res worker.Result
			if err := json.Unmarshal(info.Result, &res); err != nil || res.Code != 0 && res.Code != 10030 || res.CallSeqs != 1 {
				t.Errorf("result %s (%v), want the seq's code (0 or 10030) and call_seqs 1", info.Result, err)
			}
		})
	}
	assertNoSecret(t, "the logs", e.logs.String(), e.sigsSeen.all())
}

// TestGroupSecondRecallIsDone: a seq recalled before is done whichever
// answer Tencent gives (the simulator's two choices: 10030 and 0).
func TestGroupSecondRecallIsDone(t *testing.T) {
	t.Parallel()
	for _, again := range []imsim.RecalledAgain{imsim.RecalledAgainNotFound, imsim.RecalledAgainOK} {
		t.Run(fmt.Sprint(again), func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.sim.SetGroupSettings(imsim.GroupSettings{RecalledAgain: again})
			e.newGroup("g", 5)
			if err := e.sim.SetGroupMessage("g", "", 2, imsim.GroupMsgRecalled); err != nil {
				t.Fatal(err)
			}
			id := e.queueGroup(tasks.QueueUrgent, tasks.GroupRecall{GroupID: "g", MsgSeq: 2})
			e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
			if got := e.sim.GroupFate("g", "", 2); len(got) != 1 {
				t.Errorf("simulator answered %v, want one answer", got)
			}
		})
	}
}

// TestGroupTasksOfOneGroupShareOneCall: ten tasks of one group waiting at
// once are one call of ten seqs; each task is settled by its own seq's
// RetCode: a failed seq's task alone is retried (and alone in its second
// call), the others end at once each their own way.
func TestGroupTasksOfOneGroupShareOneCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{groupLinger: 300 * time.Millisecond, breakerThreshold: 1000, configRetryDelay: time.Hour})
	e.newGroup("g", 20)
	want := map[uint64]string{} // seq -> how it ends
	e.sim.ForceGroupSeq("g", "", 2, 10030, 1)
	want[2] = "already"
	e.sim.ForceGroupSeq("g", "", 3, 10031, 1)
	want[3] = "dead"
	e.sim.ForceGroupSeq("g", "", 4, 12345, 1) // unknown: retried
	want[4] = "retried"
	e.sim.ForceGroupSeq("g", "", 5, 10041, 1) // configuration: kept
	want[5] = "kept"
	ids := map[uint64]string{}
	for seq := uint64(1); seq <= 10; seq++ {
		ids[seq] = e.queueGroup(tasks.QueueBulk, tasks.GroupRecall{GroupID: "g", MsgSeq: seq})
	}
	for seq, id := range ids {
		switch want[seq] {
		case "dead":
			info := e.waitTaskIn(bulkQ, id, "archived", inState(asynq.TaskStateArchived))
			if !strings.Contains(info.LastErr, "tencent 10031") {
				t.Errorf("seq %d: stored error %q", seq, info.LastErr)
			}
		case "kept":
			e.waitTaskIn(bulkQ, id, "kept", func(i *asynq.TaskInfo) bool {
				return i.State == asynq.TaskStateRetry && i.Retried == 0 && strings.Contains(i.LastErr, "10041")
			})
		case "retried":
			info := e.waitTaskIn(bulkQ, id, "completed", inState(asynq.TaskStateCompleted))
			if info.Retried != 1 {
				t.Errorf("seq %d: retried %d, want 1", seq, info.Retried)
			}
			if got := e.sim.GroupFate("g", "", seq); !slices.Equal(got, []int{12345, 0}) {
				t.Errorf("seq %d: simulator answered %v, want [12345 0]", seq, got)
			}
		default:
			info := e.waitTaskIn(bulkQ, id, "completed", inState(asynq.TaskStateCompleted))
			if info.Retried != 0 {
				t.Errorf("seq %d: retried %d", seq, info.Retried)
			}
			if got := e.sim.GroupFate("g", "", seq); len(got) != 1 {
				t.Errorf("seq %d: simulator answered %v, want one answer (called once)", seq, got)
			}
			fates := e.events.fates(id)
			if w := worker.FateRecalled; want[seq] == "already" {
				if !slices.Equal(fates, []worker.Fate{worker.FateAlreadyRecalled}) {
					t.Errorf("seq %d: fates %v", seq, fates)
				}
			} else if !slices.Equal(fates, []worker.Fate{w}) {
				t.Errorf("seq %d: fates %v", seq, fates)
			}
		}
	}
	calls := e.calls.all()
	if len(calls) != 2 || calls[0].Seqs != 10 || calls[1].Seqs != 1 {
		t.Errorf("calls %+v, want one of 10 seqs, then one of 1 (the retried seq alone)", calls)
	}
	if st := e.sim.GroupStats(); st.Calls != 2 {
		t.Errorf("simulator saw %d calls, want 2", st.Calls)
	}
}

// TestGroupBatchesCarryAtMostTenSeqs: 25 tasks of one group are calls of
// at most ten seqs (the worker runs 16 tasks at once: 10 and 6 first), and
// a seq of another group never shares them.
func TestGroupBatchesCarryAtMostTenSeqs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{groupLinger: 300 * time.Millisecond})
	e.newGroup("a", 30)
	e.newGroup("b", 30)
	var ids []string
	for seq := uint64(1); seq <= 25; seq++ {
		ids = append(ids, e.queueGroup(tasks.QueueBulk, tasks.GroupRecall{GroupID: "a", MsgSeq: seq}))
	}
	ids = append(ids, e.queueGroup(tasks.QueueBulk, tasks.GroupRecall{GroupID: "b", MsgSeq: 1}))
	for _, id := range ids {
		e.waitTaskIn(bulkQ, id, "completed", inState(asynq.TaskStateCompleted))
	}
	var sizes []int
	sum := 0
	for _, c := range e.calls.all() {
		sizes = append(sizes, c.Seqs)
		sum += c.Seqs
	}
	slices.Sort(sizes)
	if sum != len(ids) || sizes[0] != 1 || sizes[len(sizes)-1] != 10 || len(sizes) > 5 {
		t.Errorf("call sizes %v for %d tasks: want each task in one call, a call of 10, none more, and b's seq alone", sizes, len(ids))
	}
	for seq := uint64(1); seq <= 25; seq++ {
		if got := e.sim.GroupFate("a", "", seq); !slices.Equal(got, []int{0}) {
			t.Errorf("seq %d of a: simulator answered %v, want [0]", seq, got)
		}
	}
}

// TestGroupConfigErrorsOpenTheBreakerPerCall: a configuration error of a
// call of ten seqs is one strike of this worker's breaker, not ten; three
// calls in a row open it. No task uses a retry.
func TestGroupConfigErrorsOpenTheBreakerPerCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{groupLinger: 300 * time.Millisecond})
	for _, g := range []string{"a", "b", "c"} {
		e.newGroup(g, 20)
		e.sim.ForceGroup(g, 10007, 0)
	}
	ids := e.queueTenSeqs("a")
	for _, id := range ids {
		e.waitTaskIn(bulkQ, id, "kept", func(i *asynq.TaskInfo) bool {
			return i.State == asynq.TaskStateRetry && i.Retried == 0 && strings.Contains(i.LastErr, "configuration error")
		})
	}
	if opened := len(e.breakerChanges(tim.APIGroupRecall)); opened != 0 {
		t.Fatalf("one call's configuration error (10 seqs) changed the breaker %d times; it is one strike", opened)
	}
	for _, g := range []string{"b", "c"} {
		id := e.queueGroup(tasks.QueueBulk, tasks.GroupRecall{GroupID: g, MsgSeq: 1})
		e.waitTaskIn(bulkQ, id, "kept", func(i *asynq.TaskInfo) bool {
			return i.State == asynq.TaskStateRetry && i.Retried == 0
		})
	}
	e.waitBreaker(tim.APIGroupRecall, []bool{true}, "three failing calls")
	if got := e.sim.GroupStats().Calls; got != 3 {
		t.Errorf("simulator saw %d calls, want 3", got)
	}
	if !strings.Contains(e.logs.String(), "enable group message recall") && !strings.Contains(e.logs.String(), "TIM_ADMIN") {
		t.Error("the log does not say what to fix")
	}
}

// TestGroupRecallDisabledDoesNotStopOneToOneRecalls: 10041 says the app
// has group message recall disabled in the console, while
// admin_msgwithdraw still works. Three group calls answering it open the
// worker's circuit of group_msg_recall only: a one-to-one recall queued
// after them is called at once, never handed back.
func TestGroupRecallDisabledDoesNotStopOneToOneRecalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{groupUrgentLinger: -1})
	e.sim.SetGroupSettings(imsim.GroupSettings{RecallDisabled: true})
	for _, g := range []string{"a", "b", "c"} {
		e.newGroup(g, 5)
		id := e.queueGroup(tasks.QueueUrgent, tasks.GroupRecall{GroupID: g, MsgSeq: 1})
		e.waitTask(id, "kept", func(i *asynq.TaskInfo) bool {
			return i.State == asynq.TaskStateRetry && i.Retried == 0 && strings.Contains(i.LastErr, "10041")
		})
	}
	// The batch tells the breaker before it hands the tasks their answers.
	if got := e.breakerChanges(tim.APIGroupRecall); !slices.Equal(got, []bool{true}) {
		t.Errorf("group_msg_recall breaker changes %v after three calls answered 10041, want [true]", got)
	}
	// Every worker of the app meets a console setting: the log must not
	// say the others go on.
	if logs := e.logs.String(); !strings.Contains(logs, "for every worker of the app") || strings.Contains(logs, "the other workers of the app go on") {
		t.Errorf("the circuit's log line for 10041 does not say every worker of the app meets it:\n%s", logs)
	}
	id := e.recall(msg(1))
	info := e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
	if info.Retried != 0 || info.LastErr != "" {
		t.Errorf("one-to-one recall after group recall was found disabled: retried %d, last error %q; want called at once", info.Retried, info.LastErr)
	}
	if got := e.breakerChanges(tim.APIWithdraw); len(got) != 0 {
		t.Errorf("admin_msgwithdraw breaker changes %v after group calls answered 10041, want none", got)
	}
}

// TestGroupUserSigRefusedEveryTimeOpensTheBreaker: a wrong key answers
// every group call 60004; each task's two refusals in a row are one
// configuration error, and three open the circuit. The first refusal of a
// call must not count as a good answer that resets the run.
func TestGroupUserSigRefusedEveryTimeOpensTheBreaker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{groupUrgentLinger: -1})
	for _, g := range []string{"a", "b", "c"} {
		e.newGroup(g, 5)
		e.sim.ForceGroup(g, 60004, 0)
		id := e.queueGroup(tasks.QueueUrgent, tasks.GroupRecall{GroupID: g, MsgSeq: 1})
		e.waitTask(id, "kept", func(i *asynq.TaskInfo) bool {
			return i.State == asynq.TaskStateRetry && i.Retried == 0 && strings.Contains(i.LastErr, "configuration error")
		})
	}
	e.waitBreaker(tim.APIGroupRecall, []bool{true}, "three tasks refused 60004 twice each")
	if got := e.sim.GroupStats().Calls; got != 6 {
		t.Errorf("simulator saw %d group calls, want 6 (two per task)", got)
	}
}

// TestGroupRateLimitSlowsTheGroupBucketOnce: a 10006 for a call of ten
// seqs asks the group bucket to slow down once (not ten times), and every
// task is called again in place without using a retry.
func TestGroupRateLimitSlowsTheGroupBucketOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{groupLinger: 300 * time.Millisecond})
	e.newGroup("g", 20)
	e.sim.ForceGroup("g", 10006, 1)
	ids := e.queueTenSeqs("g")
	for _, id := range ids {
		info := e.waitTaskIn(bulkQ, id, "completed", inState(asynq.TaskStateCompleted))
		if info.Retried != 0 {
			t.Errorf("%s retried %d", id, info.Retried)
		}
		if got := e.events.fates(id); !slices.Equal(got, []worker.Fate{worker.FateCalledAgain, worker.FateRecalled}) {
			t.Errorf("%s fates %v", id, got)
		}
	}
	st := e.glim.Stats()
	if st.SlowDowns+st.IsolatedStrikes != 1 {
		t.Errorf("group bucket: %d slow-downs and %d isolated strikes, want one in all", st.SlowDowns, st.IsolatedStrikes)
	}
	if c := e.lim.Stats(); c.SlowDowns+c.IsolatedStrikes != 0 {
		t.Errorf("the one-to-one bucket was slowed down by a group answer")
	}
}

// counted hands what the handler reported (every Event, every group call)
// to a fresh Metrics, as a worker is wired, and sums the series of name,
// or with label = value only those.
func (e *env) counted(name string, labelValue ...string) float64 {
	e.t.Helper()
	m := metrics.New(metrics.Config{})
	e.events.mu.Lock()
	for _, ev := range e.events.evs {
		m.Record(ev)
	}
	e.events.mu.Unlock()
	for _, c := range e.calls.all() {
		m.GroupCalled(c)
	}
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			match := len(labelValue) == 0
			for _, l := range s.GetLabel() {
				match = match || l.GetName() == labelValue[0] && l.GetValue() == labelValue[1]
			}
			if mf.GetName() == name && match {
				n += s.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestGroupRateLimitCountsOneBackoffPerCall: a 10006 for a call of ten
// seqs is one rate-limited answer and one shared pause, so one back-off,
// not ten.
func TestGroupRateLimitCountsOneBackoffPerCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{groupLinger: 300 * time.Millisecond})
	e.newGroup("g", 20)
	e.sim.ForceGroup("g", 10006, 1)
	ids := e.queueTenSeqs("g")
	for _, id := range ids {
		e.waitTaskIn(bulkQ, id, "completed", inState(asynq.TaskStateCompleted))
	}
	if n := e.counted(metrics.RateLimitBackoffs, "code", "10006"); n != 1 {
		t.Errorf("%s{code=\"10006\"} = %v after one rate-limited call of ten seqs, want 1", metrics.RateLimitBackoffs, n)
	}
}

// TestGroupConfigErrorCountsOncePerCall: a 10007 for a call of ten seqs
// is one configuration error, not ten.
func TestGroupConfigErrorCountsOncePerCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{groupLinger: 300 * time.Millisecond})
	e.newGroup("a", 20)
	e.sim.ForceGroup("a", 10007, 0)
	ids := e.queueTenSeqs("a")
	for _, id := range ids {
		e.waitTaskIn(bulkQ, id, "kept", func(i *asynq.TaskInfo) bool {
			return i.State == asynq.TaskStateRetry && i.Retried == 0
		})
	}
	if calls := e.sim.GroupStats().Calls; calls != 1 {
		t.Fatalf("simulator saw %d group calls, want 1 of ten seqs", calls)
	}
	if n := e.counted(metrics.ConfigErrors); n != 1 {
		t.Errorf("%s = %v after one configuration-error call of ten seqs, want 1", metrics.ConfigErrors, n)
	}
}

// TestGroupTaskForAnotherAppIsKept mirrors the one-to-one rule.
func TestGroupTaskForAnotherAppIsKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := e.queueGroup(tasks.QueueUrgent, tasks.GroupRecall{SDKAppID: testApp + 1, GroupID: "g", MsgSeq: 1})
	e.keptForOtherApp(id, func() int { return int(e.sim.GroupStats().Calls) })
}
