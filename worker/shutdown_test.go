package worker_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/worker"
)

// A worker told to stop while its Redis hangs (the process is stopped with
// SIGSTOP: connections open, nothing answers, as behind a dead network
// path) returns within worker.ShutdownBound of its ShutdownTimeout, with
// the retries the command line uses, and says once which tasks it could
// not hand back.
func TestShutdownIsBoundedWhenRedisHangs(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	conn, err := redisconn.Parse(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn = conn.WithRetries(redisconn.FailoverRetries) // as recallq worker runs
	sim, err := imsim.New(imsim.Config{SDKAppID: testApp, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(sim)
	defer api.Close()
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client, err := tim.New(tim.Config{SDKAppID: testApp, SecretKey: testSecret, Endpoint: api.URL, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rdb := conn.Client()
	defer rdb.Close()
	lim, err := limiter.New(limiter.Config{Redis: rdb, App: testApp, API: tim.APIWithdraw, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	noSlots(t, lim, time.Hour) // every task waits for a slot, active
	enq, err := enqueue.New(enqueue.Config{RedisURL: rs.URL, SDKAppID: testApp})
	if err != nil {
		t.Fatal(err)
	}
	defer enq.Close()
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr})
	defer insp.Close()

	const shutdownTimeout = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, worker.Config{
			Redis: conn.AsynqOpt(), Concurrency: 4, ShutdownTimeout: shutdownTimeout,
			TaskCheckInterval: 10 * time.Millisecond, Logger: log,
			// The background checks read Redis often, so that one is
			// waiting for it when it hangs: Run must not wait for it
			// past the bound (CI saw 11 s under load).
			UnservedCheck: 5 * time.Millisecond, LastAttemptCheck: 5 * time.Millisecond,
			Handler: worker.HandlerConfig{SDKAppID: testApp, API: client, Limiter: lim, Secrets: []string{testSecret}},
		})
	}()
	var ids []string
	for i := range 3 {
		res, err := enq.Recall(context.Background(), msg(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.TaskID)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := insp.GetTaskInfo(urgentQ, ids[0])
		if err == nil && info.State == asynq.TaskStateActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task never became active: %v %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	resume := rs.Pause(t)
	start := time.Now()
	cancel()
	bound := shutdownTimeout + worker.ShutdownBound
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker.Run: %v", err)
		}
	case <-time.After(bound + 30*time.Second):
		t.Fatalf("the worker had not stopped %s after SIGTERM (bound %s)", time.Since(start).Round(time.Millisecond), bound)
	}
	took := time.Since(start)
	resume()                      // the deferred closes need Redis
	if took > bound+time.Second { // a second for a busy machine's scheduling
		t.Errorf("shutdown took %s with Redis hanging; the bound is %s", took.Round(time.Millisecond), bound)
	}
	out := logs.String()
	if n := strings.Count(out, "could not hand back"); n != 1 {
		t.Errorf("the logs say %d times what was not handed back, want once:\n%s", n, out)
	}
	for _, id := range ids[:1] {
		if !strings.Contains(out, id) {
			t.Errorf("the logs do not name the task %s that was running:\n%s", id, out)
		}
	}
	t.Logf("shutdown took %s (bound %s)", took.Round(time.Millisecond), bound)
}
