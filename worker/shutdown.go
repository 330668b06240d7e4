package worker

import (
	"context"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// ShutdownBound is how long after Config.ShutdownTimeout Run may take to
// hand unfinished tasks back to Redis. When Redis does not answer in that
// time, Run returns anyway and logs once which tasks it could not hand
// back: they stay active in Redis until their lease expires, and asynq's
// recoverer queues them again, so nothing is lost.
const ShutdownBound = 5 * time.Second

// checksStopWait bounds how long Run waits, at its end, for its
// background checks to return once their Redis clients are closed.
const checksStopWait = time.Second

// waitAtMost waits until every channel is closed, or d.
func waitAtMost(d time.Duration, chs ...<-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, ch := range chs {
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

// inFlight is the set of task IDs the handler is working on and, from
// the start of a shutdown, the tasks it cannot vouch for: those running
// then and every task that reached the handler since (asynq moves a task
// to active before it calls the handler, so one taken just before the
// stop arrives after it).
type inFlight struct {
	mu        sync.Mutex
	ids       map[string]bool
	stopping  bool
	unsureIDs []string // from stop on
}

func (f *inFlight) track(h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		id := t.ResultWriter().TaskID()
		f.enter(id)
		defer f.leave(id)
		return h.ProcessTask(ctx, t)
	})
}

func (f *inFlight) enter(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids[id] = true
	if f.stopping {
		f.unsureIDs = append(f.unsureIDs, id)
	}
}

func (f *inFlight) leave(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ids, id)
}

// stop marks the start of a shutdown: the tasks running now are unsure,
// and so is every task that reaches the handler from now on.
func (f *inFlight) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopping = true
	for id := range f.ids {
		f.unsureIDs = append(f.unsureIDs, id)
	}
}

// unsure returns the tasks whose state a shutdown that Redis did not let
// finish cannot vouch for: those running at stop and those that reached
// the handler after it.
func (f *inFlight) unsure() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.unsureIDs)
}

// shutdownLog collects, from the start of a shutdown, the tasks asynq says
// it could not move back, and keeps its warnings and errors out of the log
// (at debug level), so that a shutdown against a Redis that does not answer
// says so once, not once per task and per background job.
type shutdownLog struct {
	mu       sync.Mutex
	on       bool
	notMoved []string
}

// notMovedRe matches asynq's log line for a task it could not move out of
// "active". asynq reports this only in its log, so the log is read.
var notMovedRe = regexp.MustCompile(`Could not move task id=(\S+)`)

func (q *shutdownLog) start() {
	q.mu.Lock()
	q.on = true
	q.mu.Unlock()
}

// swallow records msg and reports whether it is to be kept out of the log.
func (q *shutdownLog) swallow(msg string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.on {
		return false
	}
	if m := notMovedRe.FindStringSubmatch(msg); m != nil {
		q.notMoved = append(q.notMoved, m[1])
	}
	return true
}

// finish returns the tasks asynq said it could not move back so far.
func (q *shutdownLog) finish() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.notMoved)
}

func uniqueSorted(ids []string) []string {
	slices.Sort(ids)
	return slices.Compact(ids)
}
