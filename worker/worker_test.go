package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// TestEveryOutcomeRowEndToEnd forces each code of the outcome table once
// at the simulator and checks where the task ends in asynq: the table is
// pinned row by row through enqueue, worker, client, simulator and Redis.
func TestEveryOutcomeRowEndToEnd(t *testing.T) {
	t.Parallel()
	// One worker meets 21 different configuration errors at once: its
	// circuit would open and hand the rows back (breaker_test.go pins
	// that). Here each row's own outcome is the subject.
	e := newEnv(t, envOptions{breakerThreshold: 1000})
	type row struct {
		o  worker.Outcome
		id string
		r  tasks.Recall
	}
	var rows []row
	for i, o := range worker.Outcomes() {
		r := msg(i)
		if o.Code != 0 {
			e.sim.Force(r.MsgKey, o.Code, 1)
		}
		rows = append(rows, row{o: o, r: r, id: e.recall(r)})
	}
	for _, rw := range rows {
		t.Run(fmt.Sprintf("%d_%s", rw.o.Code, rw.o.Class), func(t *testing.T) {
			pinRow(t, e, urgentQ, rw.id, rw.o, func() []int { return e.sim.Fate(rw.r.FromAccount, rw.r.ToAccount, rw.r.MsgKey) })
		})
	}
	if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"configuration error`) {
		t.Error("configuration errors were not logged at error level")
	}
	assertNoSecret(t, "the logs", e.logs.String(), e.sigsSeen.all())
}

func TestTransientFailuresUseTheBudgetThenDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{maxRetry: 2})
	r := msg(1)
	e.sim.Force(r.MsgKey, 91000, 0)
	info := e.waitTask(e.recall(r), "archived", inState(asynq.TaskStateArchived))
	if info.Retried != 2 || info.MaxRetry != 2 || !strings.Contains(info.LastErr, "tencent 91000") ||
		!strings.Contains(info.LastErr, "after 3 attempts (2 retries of 2)") {
		t.Fatalf("retried=%d last_err=%q; want 2 retries and the code in the error", info.Retried, info.LastErr)
	}
	if got := e.sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey); len(got) != 3 {
		t.Fatalf("simulator saw %d calls, want 3", len(got))
	}
}

func TestUnknownCodeRetriesAFewTimesThenDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	r := msg(1)
	e.sim.Force(r.MsgKey, 99999, 0)
	info := e.waitTask(e.recall(r), "archived", inState(asynq.TaskStateArchived))
	if want := worker.UnknownRetries + 1; len(e.sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey)) != want {
		t.Fatalf("simulator saw %v, want %d calls", e.sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey), want)
	}
	if !strings.Contains(info.LastErr, "tencent 99999: unknown result code") {
		t.Fatalf("last_err = %q", info.LastErr)
	}
}

// asynq archives a failing task whose retry count has reached its limit,
// before it asks whether the error was a failure at all. A configuration
// error on such a task must still keep it: the worker puts it back, and it
// is called again with its count unchanged.
func TestConfigErrorAfterRetriesAreSpentKeepsTheTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{maxRetry: 1, retryBase: time.Hour, configRetryDelay: 300 * time.Millisecond})
	r := msg(1)
	e.sim.Force(r.MsgKey, 91000, 1)
	id := e.recall(r)
	e.waitTask(id, "retrying with its one retry spent", func(i *asynq.TaskInfo) bool {
		return i.State == asynq.TaskStateRetry && i.Retried == 1
	})
	e.sim.Force(r.MsgKey, 90009, 1)
	if err := e.insp.RunTask(urgentQ, id); err != nil {
		t.Fatal(err)
	}
	info := e.waitTask(id, "completed after the configuration error", inState(asynq.TaskStateCompleted))
	if info.Retried != 1 || info.MaxRetry != 1 {
		t.Fatalf("retried=%d max_retry=%d: the configuration error must not use a retry, and asynq must show the real budget", info.Retried, info.MaxRetry)
	}
	if got := e.sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey); !slices.Equal(got, []int{91000, 90009, 0}) {
		t.Fatalf("simulator saw %v, want [91000 90009 0]", got)
	}
}

// The same on the last attempt for a rate limit that outlasts the calls
// made in place: asynq archives the task, the worker puts it back.
func TestRateLimitedOnTheLastAttemptIsPutBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{maxRetry: 1, retryBase: time.Hour})
	r := msg(1)
	e.sim.Force(r.MsgKey, 91000, 1)
	id := e.recall(r)
	e.waitTask(id, "retrying with its one retry spent", func(i *asynq.TaskInfo) bool {
		return i.State == asynq.TaskStateRetry && i.Retried == 1
	})
	e.sim.Force(r.MsgKey, 60007, worker.DefaultRateLimitedInPlace+1) // the whole attempt
	if err := e.insp.RunTask(urgentQ, id); err != nil {
		t.Fatal(err)
	}
	info := e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
	if info.Retried != 1 || info.MaxRetry != 1 {
		t.Fatalf("retried=%d max_retry=%d after a rate limit on the last attempt", info.Retried, info.MaxRetry)
	}
	if n := len(e.sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey)); n != worker.DefaultRateLimitedInPlace+3 {
		t.Fatalf("simulator saw %d calls, want %d", n, worker.DefaultRateLimitedInPlace+3)
	}
	if !strings.Contains(e.logs.String(), "put back in its queue") {
		t.Error("the worker did not log that it put the task back")
	}
}

// What asynqmon and asynq's CLI show is the real budget: Max Retry 10,
// Retried counting failures, and the stored error saying the same.
func TestAsynqShowsTheRealRetryBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{retryBase: time.Hour})
	r := msg(1)
	e.sim.Force(r.MsgKey, 91000, 0)
	info := e.waitTask(e.recall(r), "retrying", inState(asynq.TaskStateRetry))
	if info.MaxRetry != tasks.DefaultMaxRetry || info.Retried != 1 ||
		!strings.Contains(info.LastErr, "tencent 91000: internal service error (attempt 1 failed; retry 1 of 10 next)") {
		t.Fatalf("max_retry=%d retried=%d last_err=%q; want 10, 1 and the same numbers in the error", info.MaxRetry, info.Retried, info.LastErr)
	}
	u := msg(2)
	e.sim.Force(u.MsgKey, 99999, 0)
	info = e.waitTask(e.recall(u), "retrying", inState(asynq.TaskStateRetry))
	if !strings.Contains(info.LastErr, "(attempt 1 failed; retry 1 of 3 for an unknown code next)") {
		t.Fatalf("last_err=%q; want the unknown code's budget of %d", info.LastErr, worker.UnknownRetries)
	}
}

// A completed task keeps a small JSON result that asynq's tools print.
func TestCompletedTaskKeepsItsResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name    string
		code    int
		meaning string
	}{
		{"recalled", 0, "recalled"},
		{"already recalled", 20023, "the message has already been recalled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := msg(10 + tc.code)
			if tc.code != 0 {
				e.sim.Force(r.MsgKey, tc.code, 1)
			}
			info := e.waitTask(e.recall(r), "completed", inState(asynq.TaskStateCompleted))
			var res worker.Result
			if err := json.Unmarshal(info.Result, &res); err != nil {
				t.Fatalf("result %q is not JSON: %v", info.Result, err)
			}
			if res.Code != tc.code || res.Meaning != tc.meaning || !strings.HasPrefix(res.RequestID, "Id-sim-") ||
				res.Attempts != 1 || time.Since(res.Time) > time.Minute {
				t.Fatalf("result %s; want code %d, %q, the simulator's RequestId, 1 attempt, now", info.Result, tc.code, tc.meaning)
			}
		})
	}
}

func TestRateLimitedForLongGoesBackWithoutUsingRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{maxRetry: 1})
	r := msg(1)
	e.sim.Force(r.MsgKey, 60007, 0)
	id := e.recall(r)
	e.waitTask(id, "retried twice through the retry set", func(i *asynq.TaskInfo) bool {
		return len(e.sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey)) >= 2*(worker.DefaultRateLimitedInPlace+1)
	})
	info, err := e.insp.GetTaskInfo(urgentQ, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State == asynq.TaskStateArchived || info.Retried != 0 {
		t.Fatalf("state=%v retried=%d: being rate limited must not fail the task", info.State, info.Retried)
	}
	if st := e.lim.Stats(); st.SlowDowns == 0 {
		t.Fatal("60007 did not slow the shared bucket down")
	}
}

func TestOutageRetriesUntilTheAPIIsBack(t *testing.T) {
	t.Parallel()
	// Test retries come every ~100 ms; a budget of 50 outlasts the outage.
	e := newEnv(t, envOptions{maxRetry: 50})
	// The first slot of a new bucket comes one limiter horizon (1 s) ahead.
	e.sim.SetFaults(imsimOutage(2 * time.Second))
	r := msg(1)
	info := e.waitTask(e.recall(r), "completed", inState(asynq.TaskStateCompleted))
	if info.Retried == 0 {
		t.Fatal("the task completed without meeting the outage")
	}
	if got := e.sim.Stats().HTTPErrors; got == 0 {
		t.Fatal("the simulator served no 502")
	}
}

func TestBadPayloadIsDeadLetteredWithTheReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: e.redis.Addr})
	defer c.Close()
	info, err := c.Enqueue(asynq.NewTask(tasks.TypeRecall, []byte(`{"SDKAppID":1400000000,"From_Account":"a"}`)),
		asynq.Queue(urgentQ), asynq.MaxRetry(3))
	if err != nil {
		t.Fatal(err)
	}
	got := e.waitTask(info.ID, "archived", inState(asynq.TaskStateArchived))
	if !strings.Contains(got.LastErr, "bad payload") || !strings.Contains(got.LastErr, "To_Account") {
		t.Fatalf("last_err = %q; want the reason", got.LastErr)
	}
}

// A task of an app no worker serves waits in that app's queue: this
// worker neither takes it nor calls for it.
func TestTaskOfAnotherAppIsKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	r := msg(1)
	r.SDKAppID = testApp + 1
	e.keptForOtherApp(e.recall(r), func() int { return int(e.sim.Stats().Calls) })
}

func TestUserSigRegeneratedOn70001(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	first := msg(1)
	e.waitTask(e.recall(first), "completed", inState(asynq.TaskStateCompleted))
	before := e.refresh.Load()
	r := msg(2)
	e.sim.Force(r.MsgKey, 70001, 1)
	e.waitTask(e.recall(r), "completed", inState(asynq.TaskStateCompleted))
	if after := e.refresh.Load(); after != before+1 {
		t.Fatalf("UserSig generations went %d -> %d; want exactly one more after 70001", before, after)
	}
}

// A connection that breaks mid-call gives Go's *url.Error, whose text holds
// the whole URL, UserSig included. Neither the stored task error nor any log
// line may show it or the secret key.
func TestSecretsReachNoErrorOrLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{maxRetry: 1, front: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // the client reads EOF: an *url.Error with the URL in it
			}
		})
	}})
	r := msg(1)
	// No answer is an outage, not the task's fault: once its one retry is
	// spent the task is kept, with the error stored. asynq archives any
	// error on a last attempt, so "kept" is a note in
	// worker.LastAttemptsKey and the task archived, then moved to the
	// scheduled set until the delay is due.
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	defer rdb.Close()
	info := e.waitTask(e.recall(r), "kept after its retry was spent while the network failed", func(i *asynq.TaskInfo) bool {
		if i.Retried != 1 || !strings.Contains(i.LastErr, "outage") {
			return false
		}
		note, _ := rdb.HGet(context.Background(), worker.LastAttemptsKey, i.Queue+"/"+i.ID).Result()
		return i.State == asynq.TaskStateRetry ||
			((i.State == asynq.TaskStateArchived || i.State == asynq.TaskStateScheduled) && strings.HasPrefix(note, "kept "))
	})
	if !strings.Contains(info.LastErr, "no answer") || !strings.Contains(info.LastErr, "usersig=REDACTED") {
		t.Fatalf("last_err = %q; want a redacted transport error", info.LastErr)
	}
	sigs := e.sigsSeen.all()
	if len(sigs) == 0 {
		t.Fatal("no UserSig was seen: the test proves nothing")
	}
	assertNoSecret(t, "the stored task error", info.LastErr, sigs)
	assertNoSecret(t, "the logs", e.logs.String(), sigs)
}

// On shutdown, tasks still waiting for a slot go back to the queue without
// using a retry; nothing is archived.
func TestShutdownReturnsWaitingTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.noSlots(time.Hour)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, e.recall(msg(i)))
	}
	e.waitTask(ids[0], "active", inState(asynq.TaskStateActive))
	e.stop()
	for _, id := range ids {
		info, err := e.insp.GetTaskInfo(urgentQ, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.State == asynq.TaskStateArchived || info.State == asynq.TaskStateCompleted || info.Retried != 0 {
			t.Errorf("task %s: state=%v retried=%d after shutdown", id, info.State, info.Retried)
		}
	}
	if n := e.sim.Stats().Calls; n != 0 {
		t.Fatalf("%d calls went out during a pause", n)
	}
}

// Wrong credentials for a while, then fixed: the circuit opens after a few
// configuration errors and stops the app's calls, probes, and closes by
// itself; every task completes, none archived, none lost a retry.
func TestBreakerStopsCallsDuringConfigErrorsAndRecovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{configRetryDelay: 200 * time.Millisecond})
	e.sim.SetFaults(imsim.Faults{CodeUntil: time.Now().Add(3 * time.Second), Code: 90009})
	const n = 20
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, e.recall(msg(i)))
	}
	for _, id := range ids {
		info := e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
		if info.Retried != 0 {
			t.Errorf("task %s used %d retries during a configuration outage", id, info.Retried)
		}
	}
	// Without the breaker every task would be refused every ~200 ms for
	// 3 s: about n*15 = 300 refused calls. With it: the few that open the
	// circuit, the slots already granted, then one probe per pause.
	if refused := e.sim.Stats().ByCode[90009]; refused > 3*n/2 {
		t.Errorf("%d calls were refused with 90009: the circuit did not stop the calls", refused)
	}
	if got := e.breakerChanges(tim.APIWithdraw); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("admin_msgwithdraw breaker changes = %v, want [open closed]", got)
	}
	if got := e.breakerChanges(tim.APIGroupRecall); len(got) != 0 {
		t.Errorf("group_msg_recall breaker changes = %v after one-to-one configuration errors, want none", got)
	}
}

// A task on its last attempt whose deadline passes while it waits for a
// slot (asynq archives it with "context deadline exceeded") is put back,
// and recalled once calls may go again.
func TestDeadlineOnTheLastAttemptIsPutBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.noSlots(2500 * time.Millisecond)
	// A deadline shorter than the wait: the task runs out of time.
	id := e.lastAttempt(msg(1), time.Second)
	info := e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
	if info.Retried != 0 {
		t.Fatalf("retried=%d: running out of time while waiting is not a failure", info.Retried)
	}
	if !strings.Contains(e.logs.String(), "put back in its queue") {
		t.Errorf("the task was never archived and put back: the test did not reach the last-attempt path\n%s", e.logs.String())
	}
}

// A task on its last attempt whose deadline passes while its call is out
// (the answer comes too late) is put back at once: the call's fate is
// unknown, not a Tencent outage, and its next run reads what the call did
// (20023 answers done).
func TestDeadlineDuringTheCallIsPutBackAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{}) // an outage would keep the task a minute
	e.sim.SetFaults(imsim.Faults{AnswerDelay: 3 * time.Second})
	id := e.lastAttempt(msg(1), 2*time.Second)
	for start := time.Now(); e.sim.Stats().Calls == 0; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatal("the task was never called")
		}
	}
	e.sim.SetFaults(imsim.Faults{}) // the next run is answered in time
	info := e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
	if info.Retried != 0 {
		t.Fatalf("retried=%d: a deadline during the call is not the task's failure", info.Retried)
	}
	logs := e.logs.String()
	if strings.Contains(logs, "outage") {
		t.Errorf("a deadline during the call was taken for an outage:\n%s", logs)
	}
	if !strings.Contains(logs, "put back in its queue") {
		t.Errorf("the task was never archived and put back: the test did not reach the last-attempt path\n%s", logs)
	}
}

// A task kept on its last attempt (an outage: called again after a delay)
// leaves asynq's archive for its scheduled set at once. asynq keeps 10,000
// archived tasks per queue and deletes the oldest beyond: 10,000 later
// archives in the queue (others kept during the outage, a campaign's dead
// letters) would delete it while it waited there.
func TestAKeptTaskOutlivesTheArchiveCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{outageRetryDelay: 3 * time.Second})
	e.sim.SetFaults(imsim.Faults{OutageUntil: time.Now().Add(time.Hour)}) // 502s: no answer
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	defer rdb.Close()
	ctx := context.Background()
	scheduledKept := func(i *asynq.TaskInfo) bool {
		note, _ := rdb.HGet(ctx, worker.LastAttemptsKey, i.Queue+"/"+i.ID).Result()
		return i.State == asynq.TaskStateScheduled && strings.HasPrefix(note, "kept ") && strings.Contains(i.LastErr, "outage")
	}
	a := e.lastAttempt(msg(1), time.Minute) // its first attempt is its last
	info := e.waitTask(a, "kept, out of asynq's archive", scheduledKept)

	// 10,000 tasks archived after it in the queue (asynq's cap is a
	// constant: placeholder IDs with a later died-at stand for them), then
	// one more task kept: asynq archives it and trims the oldest.
	archived, diedAt := "asynq:{"+urgentQ+"}:archived", info.LastFailedAt.Unix()
	pipe := rdb.Pipeline()
	for i := range 10000 {
		pipe.ZAdd(ctx, archived, redis.Z{Score: float64(diedAt) + 0.5, Member: fmt.Sprintf("later-%05d", i)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for time.Now().Unix() <= diedAt { // the next one is newer than those
		time.Sleep(50 * time.Millisecond)
	}
	e.waitTask(e.lastAttempt(msg(2), time.Minute), "kept, out of asynq's archive", scheduledKept)
	if n, err := rdb.ZCard(ctx, archived).Result(); err != nil || n >= 10000 {
		t.Fatalf("asynq's archive holds %d tasks (%v): not trimmed, the test proves nothing", n, err)
	}

	e.sim.SetFaults(imsim.Faults{}) // the outage ends
	if info := e.waitTask(a, "completed", inState(asynq.TaskStateCompleted)); info.Retried != 0 {
		t.Errorf("retried=%d: an outage on the last attempt is not a failure", info.Retried)
	}
}

// pinRow checks where the task id of queue, answered once with o's code
// (fate: what the simulator answered it, in order), ended up in asynq and
// which fates the handler recorded: the row's promise, end to end. It
// returns the task's final info.
func pinRow(t *testing.T, e *env, queue, id string, o worker.Outcome, fate func() []int) (info *asynq.TaskInfo) {
	t.Helper()
	wantFates := func(want ...worker.Fate) {
		t.Helper()
		if got := e.events.fates(id); !slices.Equal(got, want) {
			t.Errorf("recorded fates %v, want %v", got, want)
		}
	}
	switch o.Class {
	case worker.Done:
		info = e.waitTaskIn(queue, id, "completed", inState(asynq.TaskStateCompleted))
		if info.Retried != 0 {
			t.Errorf("retried %d times", info.Retried)
		}
		if got := fate(); len(got) != 1 || got[0] != o.Code {
			t.Errorf("simulator answered %v, want exactly [%d]", got, o.Code)
		}
		if o.Code != 0 {
			wantFates(worker.FateAlreadyRecalled)
		} else {
			wantFates(worker.FateRecalled)
		}
	case worker.DeadLetter:
		info = e.waitTaskIn(queue, id, "archived", inState(asynq.TaskStateArchived))
		if want := fmt.Sprintf("tencent %d: %s", o.Code, o.Meaning); !strings.Contains(info.LastErr, want) {
			t.Errorf("stored error %q does not say %q", info.LastErr, want)
		}
		if info.Retried != 0 || len(fate()) != 1 {
			t.Errorf("dead letter was retried: retried=%d calls=%v", info.Retried, fate())
		}
		wantFates(worker.FateDeadLettered)
	case worker.Transient:
		info = e.waitTaskIn(queue, id, "completed", inState(asynq.TaskStateCompleted))
		if info.Retried != 1 {
			t.Errorf("retried = %d, want 1 (one transient failure used one retry)", info.Retried)
		}
		if got := fate(); !slices.Equal(got, []int{o.Code, 0}) {
			t.Errorf("simulator answered %v, want [%d 0]", got, o.Code)
		}
		wantFates(worker.FateRetrying, worker.FateRecalled)
	case worker.RateLimited, worker.SigStale:
		info = e.waitTaskIn(queue, id, "completed", inState(asynq.TaskStateCompleted))
		if info.Retried != 0 {
			t.Errorf("retried = %d: a %s answer used up a retry", info.Retried, o.Class)
		}
		if got := fate(); !slices.Equal(got, []int{o.Code, 0}) {
			t.Errorf("simulator answered %v, want [%d 0] (tried again in place)", got, o.Code)
		}
		wantFates(worker.FateCalledAgain, worker.FateRecalled)
	case worker.Configuration:
		info = e.waitTaskIn(queue, id, "retrying after a configuration error", func(i *asynq.TaskInfo) bool {
			return i.State == asynq.TaskStateRetry && strings.Contains(i.LastErr, "configuration error")
		})
		if info.Retried != 0 {
			t.Errorf("retried = %d: a configuration error used up a retry", info.Retried)
		}
		if !strings.Contains(info.LastErr, fmt.Sprint(o.Code)) || !strings.Contains(info.LastErr, "fix:") {
			t.Errorf("stored error %q should name the code and the fix", info.LastErr)
		}
		wantFates(worker.FateKept)
	default:
		t.Fatalf("row %d has class %s, which the table must not use", o.Code, o.Class)
	}
	return info
}
