package worker_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/worker"
)

// TestWrongEndpointKeepsTheTask: a 404 from something that is not Tencent
// (a wrong TIM_ENDPOINT) is a configuration error: the task is kept without
// using a retry, and goes through once the path is right.
func TestWrongEndpointKeepsTheTask(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	e := newEnv(t, envOptions{configRetryDelay: 100 * time.Millisecond, maxRetry: 1,
		front: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if served.Add(1) <= 2 {
					http.NotFound(w, r)
					return
				}
				h.ServeHTTP(w, r)
			})
		}})
	id := e.recall(msg(1))
	info := e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
	if info.Retried != 0 {
		t.Errorf("retried = %d: a wrong endpoint used up the task's retries", info.Retried)
	}
	if got := e.events.fates(id); !slices.Equal(got, []worker.Fate{worker.FateKept, worker.FateKept, worker.FateRecalled}) {
		t.Errorf("fates %v, want kept twice (HTTP 404), then recalled", got)
	}
}

// TestHTTPSToPlainHTTPEndpointKeepsTheTask: TIM_ENDPOINT=https://... in
// front of a server that speaks plain HTTP (the simulator, a proxy's plain
// port) is a configuration error: the task is kept without using a retry,
// and the stored error names the fix.
func TestHTTPSToPlainHTTPEndpointKeepsTheTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{endpoint: func(u string) string { return "https://" + strings.TrimPrefix(u, "http://") }})
	id := e.recall(msg(1))
	info := e.waitTask(id, "sent back", inState(asynq.TaskStateRetry))
	if info.Retried != 0 {
		t.Errorf("retried = %d: an https:// endpoint to a plain-HTTP server used up the task's retries", info.Retried)
	}
	if !strings.Contains(info.LastErr, "configuration error") || !strings.Contains(info.LastErr, "use http://") {
		t.Errorf("last error %q: want a configuration error that names the fix", info.LastErr)
	}
	assertNoSecret(t, "the stored error", info.LastErr, e.sigsSeen.all())
}

// TestLongOutageArchivesNothing: an outage longer than the retry budget
// (here a budget of one retry, every retry ~20-100 ms, a 2 s outage of
// 502s) keeps the task instead of archiving it.
func TestLongOutageArchivesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{maxRetry: 1, outageRetryDelay: 100 * time.Millisecond})
	// The first slot of a new bucket comes one limiter horizon (1 s) ahead.
	e.sim.SetFaults(imsimOutage(3 * time.Second))
	var ids []string
	for i := range 5 {
		ids = append(ids, e.recall(msg(i)))
	}
	for _, id := range ids {
		info := e.waitTask(id, "completed", inState(asynq.TaskStateCompleted))
		if info.Retried != 1 {
			t.Errorf("task %s: retried = %d, want its one retry spent and the task kept", id, info.Retried)
		}
	}
	if got := e.sim.Stats().HTTPErrors; got < 10 {
		t.Fatalf("the simulator served %d 502s: the outage did not outlast the budget", got)
	}
}
