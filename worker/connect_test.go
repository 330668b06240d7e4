package worker_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// events lists the events recorded for a task, in order.
func (l *eventLog) events(taskID string) []worker.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []worker.Event
	for _, ev := range l.evs {
		if ev.TaskID == taskID {
			out = append(out, ev)
		}
	}
	return out
}

// TestAColdConnectionSendsNoCallLate: the first call of a worker started
// without preconnecting needs a new connection (as every call does once
// Tencent has closed the pool's), here 100 ms in the making (a server a
// continent away: a connect, a TLS handshake). The call must not go when it is ready, 100
// ms after its slot: it is cut unsent, and the next slot's call goes on
// the connection the first one started, on time. No retry is used.
func TestAColdConnectionSendsNoCallLate(t *testing.T) {
	t.Parallel()
	const dial = 100 * time.Millisecond
	e := newEnv(t, envOptions{dialDelay: dial, noPreconnect: true})
	id := e.recall(msg(1))
	info := e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
	if info.Retried != 0 {
		t.Errorf("retried = %d: a cold connection used a retry", info.Retried)
	}
	evs := e.events.events(id)
	if len(evs) != 1 || evs[0].Fate != worker.FateRecalled {
		t.Fatalf("events %+v, want one call, recalled", evs)
	}
	// Latency runs from the slot to the answer; the simulator answers at
	// once. A call that waited for its connection would show the dial.
	if evs[0].Latency >= dial/2 {
		t.Errorf("the call answered %s after its slot: it went out when its connection was ready, %s late", evs[0].Latency, dial)
	}
	if st := e.lim.Stats(); st.LateConnDrops < 1 {
		t.Errorf("limiter LateConnDrops = %d, want the first call cut for want of a connection", st.LateConnDrops)
	}
}

// TestACertificateRefusedAfterTheCutoffIsAConfigurationError: when the
// connection a cut call left behind fails (here the server's certificate
// is not trusted, 50 ms after the slot), the failure is the call's: a
// configuration error that keeps the task without using a retry, not slot
// after slot dropped for lateness while nobody learns why.
func TestACertificateRefusedAfterTheCutoffIsAConfigurationError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tls: true, dialDelay: 50 * time.Millisecond, noPreconnect: true})
	id := e.recall(msg(1))
	info := e.waitTask(id, "sent back", inState(asynq.TaskStateRetry))
	if info.Retried != 0 {
		t.Errorf("retried = %d: a refused certificate used up the task's retries", info.Retried)
	}
	if !strings.Contains(info.LastErr, "configuration error") || !strings.Contains(info.LastErr, "certificate") {
		t.Errorf("last error %q: want a configuration error about the certificate", info.LastErr)
	}
	if got := e.events.fates(id); !slices.Contains(got, worker.FateKept) {
		t.Errorf("fates %v, want the task kept", got)
	}
}

// TestAColdConnectionSendsNoGroupCallLate: the same for group_msg_recall's
// batches: the batch cut for want of a connection sends nothing, its
// members join a new batch for a new slot, and no retry is used.
func TestAColdConnectionSendsNoGroupCallLate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{dialDelay: 100 * time.Millisecond, noPreconnect: true, groupLinger: 20 * time.Millisecond})
	e.newGroup("a", 3)
	var ids []string
	for seq := uint64(1); seq <= 3; seq++ {
		ids = append(ids, e.queueGroup(tasks.QueueBulk, tasks.GroupRecall{GroupID: "a", MsgSeq: seq}))
	}
	for _, id := range ids {
		if info := e.waitTaskIn(bulkQ, id, "completed", inState(asynq.TaskStateCompleted)); info.Retried != 0 {
			t.Errorf("task %s retried %d times: a cold connection used a retry", id, info.Retried)
		}
	}
	if st := e.glim.Stats(); st.LateConnDrops < 1 {
		t.Errorf("group limiter LateConnDrops = %d, want the first batch cut for want of a connection", st.LateConnDrops)
	}
	for _, c := range e.calls.all() {
		if c.Latency >= 50*time.Millisecond {
			t.Errorf("a group call answered %s after its slot: it went out when its connection was ready", c.Latency)
		}
	}
}

// TestPreconnectedWorkerCutsNoCall: a worker opens its connections before
// it takes tasks, so its first calls, 200 ms from a new connection, find
// one ready: none is cut, none goes late. Each answer takes 30 ms, so
// calls 5 ms apart overlap and need several connections at once, which
// the client's pool must keep.
func TestPreconnectedWorkerCutsNoCall(t *testing.T) {
	t.Parallel()
	const dial = 200 * time.Millisecond
	slow := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(30 * time.Millisecond)
			h.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, envOptions{dialDelay: dial, front: slow})
	var ids []string
	for i := range 8 {
		ids = append(ids, e.recall(msg(i)))
	}
	for _, id := range ids {
		e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
		for _, ev := range e.events.events(id) {
			if ev.Latency >= dial/2 {
				t.Errorf("task %s answered %s after its slot: it waited for its connection", id, ev.Latency)
			}
		}
	}
	if st := e.lim.Stats(); st.LateConnDrops != 0 {
		t.Errorf("limiter LateConnDrops = %d, want none: the worker opened its connections before its first task", st.LateConnDrops)
	}
}

// TestAFailureTheDialHooksDoNotShowSurfaces: an HTTP proxy that refuses
// CONNECT 50 ms after the connect to it: the guard sees the connect end
// well and nothing after it, takes the connection for ready, and each call
// after the cut meets the same refusal after the cutoff. After
// limiter.MaxConnCuts cuts in a row the call waits for its connection, so
// the refusal surfaces as the configuration error it is, instead of slot
// after slot dropped while nobody learns why.
func TestAFailureTheDialHooksDoNotShowSurfaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{proxyRefusal: 50 * time.Millisecond, noPreconnect: true})
	id := e.recall(msg(1))
	info := e.waitTask(id, "sent back", inState(asynq.TaskStateRetry))
	if info.Retried != 0 || !strings.Contains(info.LastErr, "configuration error") || !strings.Contains(info.LastErr, "proxy") {
		t.Errorf("retried %d, last error %q: want the proxy's refusal kept as a configuration error", info.Retried, info.LastErr)
	}
	if st := e.lim.Stats(); st.LateConnDrops > limiter.MaxConnCuts {
		t.Errorf("limiter LateConnDrops = %d, want at most %d before the call waited for its connection", st.LateConnDrops, limiter.MaxConnCuts)
	}
}
