package redisconn_test

// Helpers that run recallq's real pieces (asynq client and inspector, the
// worker, the shared limiter) over a Conn, against servers of redistest.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

const testApp = 1400000000

// checkQueuesAndLimiter queues a recall through asynq with conn.AsynqOpt,
// reads it back with asynq's Inspector, and takes a limiter slot (and
// pauses the bucket) through conn.Client: what a producer, the dashboard
// and a worker each do first.
func checkQueuesAndLimiter(t *testing.T, conn *redisconn.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := recall(t.Name())
	task, err := tasks.NewTask(r, tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(conn.AsynqOpt())
	defer client.Close()
	if _, err := client.EnqueueContext(ctx, task); err != nil {
		t.Fatalf("enqueue through %s: %v", conn, err)
	}
	insp := asynq.NewInspector(conn.AsynqOpt())
	defer insp.Close()
	info, err := insp.GetTaskInfo(tasks.AppQueue(tasks.QueueUrgent, testApp), r.TaskID())
	if err != nil {
		t.Fatalf("inspect through %s: %v", conn, err)
	}
	if info.State != asynq.TaskStatePending || !bytes.Equal(info.Payload, task.Payload()) {
		t.Fatalf("task read back: state %v payload %q, want pending %q", info.State, info.Payload, task.Payload())
	}

	rdb := conn.Client()
	defer rdb.Close()
	lim, err := limiter.New(limiter.Config{Redis: rdb, App: testApp, API: "conn-test-" + strings.NewReplacer("/", "-", ":", "-").Replace(t.Name()),
		Rate: 100, Horizon: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lim.Wait(ctx, limiter.Urgent); err != nil {
		t.Fatalf("limiter grant through %s: %v", conn, err)
	}
	if err := lim.SlowDown(ctx, time.Millisecond); err != nil {
		t.Fatalf("limiter pause through %s: %v", conn, err)
	}
	if err := lim.Close(); err != nil {
		t.Fatalf("limiter close through %s: %v", conn, err)
	}
	if s := lim.Stats(); s.Calls != 1 || s.Resets != 1 {
		t.Fatalf("limiter stats %+v: want one call on a new schedule", s)
	}
}

func recall(key string) tasks.Recall {
	return tasks.Recall{SDKAppID: testApp, FromAccount: "vinson", ToAccount: "dramon", MsgKey: key}
}

// enqueueRecalls queues n recalls on the urgent lane and returns their
// task IDs.
func enqueueRecalls(t *testing.T, conn *redisconn.Conn, n int) map[string]bool {
	t.Helper()
	client := asynq.NewClient(conn.AsynqOpt())
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ids := make(map[string]bool, n)
	for i := range n {
		r := recall(fmt.Sprintf("%s_%d", t.Name(), i))
		task, err := tasks.NewTask(r, tasks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.EnqueueContext(ctx, task); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
		ids[r.TaskID()] = true
	}
	return ids
}

// fakeAPI answers every recall with success after a fixed latency.
type fakeAPI struct {
	latency time.Duration
	mu      sync.Mutex
	calls   []time.Time
}

func (a *fakeAPI) Withdraw(ctx context.Context, _, _, _ string) (tim.Response, error) {
	select {
	case <-time.After(a.latency):
	case <-ctx.Done():
		return tim.Response{}, ctx.Err()
	}
	a.mu.Lock()
	a.calls = append(a.calls, time.Now())
	a.mu.Unlock()
	return tim.Response{ActionStatus: "OK"}, nil
}

// callTimes returns when each call answered, in order.
func (a *fakeAPI) callTimes() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.calls...)
}

// recalled counts, per task ID, the calls that recalled it.
type recalled struct {
	mu  sync.Mutex
	ids map[string]int
}

func (r *recalled) Record(ev worker.Event) {
	if ev.Fate != worker.FateRecalled {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]int{}
	}
	r.ids[ev.TaskID]++
}

// counts returns the distinct task IDs recalled and the calls that did.
func (r *recalled) counts() (distinct, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.ids {
		distinct++
		calls += n
	}
	return distinct, calls
}

func (r *recalled) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id] > 0
}

// runningWorker is recallq's worker (worker.Run) with the fake API and the
// real shared limiter, over a Conn.
type runningWorker struct {
	api  *fakeAPI
	done *recalled
	lim  *limiter.Limiter
	logs *logtest.Buffer
	stop func()
}

// startWorker runs a worker until the test ends.
func startWorker(t *testing.T, conn *redisconn.Conn, concurrency int, latency time.Duration) *runningWorker {
	t.Helper()
	w := &runningWorker{api: &fakeAPI{latency: latency}, done: &recalled{}, logs: &logtest.Buffer{}}
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rdb := conn.Client()
	lim, err := limiter.New(limiter.Config{Redis: rdb, App: testApp, API: tim.APIWithdraw,
		Horizon: 100 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	w.lim = lim
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() {
		exited <- worker.Run(ctx, worker.Config{
			Redis:                    conn.AsynqOpt(),
			Concurrency:              concurrency,
			ShutdownTimeout:          2 * time.Second,
			DelayedTaskCheckInterval: 200 * time.Millisecond,
			RetryBase:                50 * time.Millisecond,
			RetryMax:                 500 * time.Millisecond,
			Logger:                   log,
			Handler:                  worker.HandlerConfig{SDKAppID: testApp, API: w.api, Limiter: lim, Recorder: w.done},
		})
	}()
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-exited; err != nil {
				t.Errorf("worker: %v", err)
			}
			lim.Close()
			rdb.Close()
		})
	}
	t.Cleanup(w.stop)
	return w
}

// waitAllCompleted waits until asynq's Inspector shows every task of the
// urgent lane completed, and nothing pending, active, scheduled, retrying
// or archived; it fails the test with the queue's counts when ctx ends.
func waitAllCompleted(ctx context.Context, t *testing.T, conn *redisconn.Conn, n int) {
	t.Helper()
	insp := asynq.NewInspector(conn.AsynqOpt())
	defer insp.Close()
	var last string
	for {
		q, err := insp.GetQueueInfo(tasks.AppQueue(tasks.QueueUrgent, testApp))
		if err == nil {
			last = fmt.Sprintf("completed %d pending %d active %d scheduled %d retry %d archived %d",
				q.Completed, q.Pending, q.Active, q.Scheduled, q.Retry, q.Archived)
			if q.Completed == n && q.Pending+q.Active+q.Scheduled+q.Retry+q.Archived == 0 {
				return
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not every task completed in time: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
