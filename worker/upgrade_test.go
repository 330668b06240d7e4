package worker_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
)

// legacyTask queues r as recallq did before queues carried the app: in the
// lane's queue shared by every app, with the same ID and options.
func (e *env) legacyTask(lane string, r tasks.Recall) string {
	e.t.Helper()
	return e.rawTask(r, asynq.Queue(lane), asynq.MaxRetry(tasks.DefaultMaxRetry), asynq.Timeout(tasks.DefaultTimeout),
		asynq.Retention(tasks.DefaultRetention))
}

// Upgrading from the queues every app shared loses nothing: what waits
// in them is recalled by the app's workers, and another app's task moves
// to its own app's queue (where that app's workers find it), untouched.
func TestUpgradeServesTheLegacyQueues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	urgent := e.legacyTask(tasks.QueueUrgent, msg(1))
	bulk := e.legacyTask(tasks.QueueBulk, msg(2))
	other := msg(3)
	other.SDKAppID = testApp + 1
	foreign := e.legacyTask(tasks.QueueBulk, other)

	for q, id := range map[string]string{tasks.QueueUrgent: urgent, tasks.QueueBulk: bulk} {
		info := e.waitTaskIn(q, id, "completed", inState(asynq.TaskStateCompleted))
		if info.Retried != 0 {
			t.Errorf("legacy task in %s: retried %d", q, info.Retried)
		}
	}
	e.waitTaskIn(tasks.QueueBulk, foreign, "completed (moved)", inState(asynq.TaskStateCompleted))
	moved := e.waitTaskIn(tasks.AppQueue(tasks.QueueBulk, testApp+1), foreign, "pending in its app's queue", inState(asynq.TaskStatePending))
	if r, err := tasks.Decode(moved.Payload); err != nil || r != other {
		t.Errorf("moved task's payload = %+v, %v; want %+v", r, err, other)
	}
	if moved.MaxRetry != tasks.DefaultMaxRetry || moved.Type != tasks.TypeRecall {
		t.Errorf("moved task: type %s, max retry %d", moved.Type, moved.MaxRetry)
	}
	if n := e.sim.Stats().Calls; n != 2 {
		t.Errorf("%d calls, want 2 (one per task of this app, none for the other app's)", n)
	}
}

// unservedLog keeps the worker's last report of unserved queues.
type unservedLog struct {
	mu   sync.Mutex
	last map[string]int
}

func (u *unservedLog) set(m map[string]int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.last = maps.Clone(m)
}

func (u *unservedLog) get() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.last)
}

// A task for an app that no running worker serves is kept where it is and
// reported loudly, with the app and the fix, until a worker of the app
// takes it.
func TestTaskOfAnUnservedAppIsReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{unservedCheck: 100 * time.Millisecond})
	r := msg(1)
	r.SDKAppID = testApp + 1
	id := e.recall(r)
	e.recall(msg(2)) // served: never reported
	q := tasks.AppQueue(tasks.QueueUrgent, testApp+1)
	deadline := time.Now().Add(10 * time.Second)
	for e.unserved.get()[q] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("unserved report = %v; want %s: 1", e.unserved.get(), q)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.unserved.get(); len(got) != 1 {
		t.Errorf("unserved report = %v; want only %s", got, q)
	}
	logs := e.logs.String()
	for _, want := range []string{"no running worker serves", `"sdkappid":1400000001`, "TIM_APPS_FILE"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}
	info := e.waitTaskIn(q, id, "pending", inState(asynq.TaskStatePending))
	if info.Retried != 0 {
		t.Errorf("the unserved task was taken: retried %d", info.Retried)
	}
}

// The legacy queues hold only what producers queued before an upgrade: an
// idle worker asks them about once a second (LegacyTaskCheckInterval),
// not at its own poll interval, which cost every idle worker two more
// Redis scripts a poll (half its polling) for queues that stay empty.
func TestAnIdleWorkerAsksTheLegacyQueuesAboutOnceASecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	const watch = 3 * time.Second
	n := e.dequeues(watch, urgentQ, tasks.QueueUrgent)
	t.Logf("dequeues in %v: %d of %s, %d of %s", watch, n[urgentQ], urgentQ, n[tasks.QueueUrgent], tasks.QueueUrgent)
	// The test's worker polls every 10 ms: a few hundred dequeues in 3 s
	// (at least 20 however slow the machine: the watch sees them).
	if n[urgentQ] < 20 {
		t.Errorf("%d dequeues of the app's urgent queue in %v; want the worker's own poll, every 10 ms", n[urgentQ], watch)
	}
	// asynq sleeps 0.5-1.5 times the interval between polls of empty
	// queues: at most 6 in 3 s, one more at the window's edge.
	if n[tasks.QueueUrgent] > 7 {
		t.Errorf("%d dequeues of the legacy urgent queue in %v; want about one a second", n[tasks.QueueUrgent], watch)
	}
}

// dequeues watches Redis (MONITOR) for d and counts asynq's dequeue
// scripts on each of queues: the calls whose keys begin with the queue's
// pending then paused key.
func (e *env) dequeues(d time.Duration, queues ...string) map[string]int {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.redis.Addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "MONITOR\r\n"); err != nil {
		e.t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
		e.t.Fatalf("MONITOR: %q, %v", line, err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		e.t.Fatal(err)
	}
	n := make(map[string]int, len(queues))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				e.t.Fatal(err)
			}
			return n
		}
		for _, q := range queues {
			if strings.Contains(line, fmt.Sprintf(`"asynq:{%s}:pending" "asynq:{%s}:paused"`, q, q)) {
				n[q]++
			}
		}
	}
}
