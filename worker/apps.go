package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
)

// Queues returns the asynq queues a worker of the app sdkAppID serves on
// its main server, with their priorities (asynq's StrictPriority: higher
// first): the app's urgent queue, then the app's bulk queue.
//
// The legacy queues (tasks.LegacyQueues) hold what producers queued before
// queues carried the app; every worker keeps serving them (LegacyQueues),
// so an upgrade loses nothing, and moves another app's task found there to
// that app's own queue (Handler: moveToApp). They are served by a second,
// small asynq server in the same process, not listed here: asynq's
// dequeue asks each listed queue in turn, one Redis script call each, so
// two empty legacy queues ahead of or beside the app's own cost every bulk
// task two more round trips in the one loop that takes tasks (measured:
// a group campaign at the cap, whose tasks come 2,000 a second, ran 20%
// slower with them listed; README, "Through a campaign").
func Queues(sdkAppID uint64) map[string]int {
	return map[string]int{
		tasks.AppQueue(tasks.QueueUrgent, sdkAppID): 2,
		tasks.AppQueue(tasks.QueueBulk, sdkAppID):   1,
	}
}

// LegacyQueues returns the queues of the legacy server (see Queues):
// urgent before bulk.
func LegacyQueues() map[string]int {
	return map[string]int{tasks.QueueUrgent: 2, tasks.QueueBulk: 1}
}

// legacyConcurrency is how many tasks the legacy server works on at once
// for a worker of concurrency c: enough to drain a backlog queued before
// an upgrade at the cap (its calls take slots of the same shared bucket),
// small beside the main server.
func legacyConcurrency(c int) int { return max(4, c/4) }

// laneOf is the lane of the queue a task came from: bulk for either bulk
// queue, urgent otherwise.
func laneOf(queue string) Lane {
	if lane, _, _ := tasks.ParseQueue(queue); lane == tasks.QueueBulk {
		return LaneBulk
	}
	return LaneUrgent
}

// otherApp handles a task for an app this worker does not serve. Where the
// handler can queue (it runs under Run), the task moves to its own app's
// queue of the same lane, with its ID, type, payload and retry budget (the
// count of retries it used starts again), and this copy completes: it
// came from a legacy queue (an upgrade), or a producer put it in the wrong
// app's queue by hand. It is never archived and never bounced back to a
// queue nobody serves for it: if no worker serves its app, it waits in
// that app's queue, and every worker reports it (unserved.go). Without a
// queue client (a Handler used alone), it is a configuration error as
// before: the task goes back without using a retry.
func (h *Handler) otherApp(ctx context.Context, log *slog.Logger, t *asynq.Task, app uint64) error {
	o := Outcome{Class: Configuration,
		Meaning: fmt.Sprintf("the task is for SDKAppID %d but this worker serves %d", app, h.cfg.SDKAppID),
		Fix:     fmt.Sprintf("run a worker for app %d (TIM_SDKAPPID, or an entry in TIM_APPS_FILE)", app)}
	if h.queues == nil {
		// The fix speaks of another app's worker, not of this app's
		// settings: as it is, from an apps file too.
		return h.configErrorAsIs(ctx, log, o, uncountedConfigRetryDelay)
	}
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx) // 0: the default budget
	lane, _, ok := tasks.ParseQueue(queue)
	if !ok {
		lane = tasks.QueueUrgent
	}
	to := tasks.AppQueue(lane, app)
	moved, err := tasks.Rebuild(t.Type(), t.Payload(), id, app, tasks.Options{Queue: lane, MaxRetry: maxRetry})
	if err == nil {
		_, err = h.queues.EnqueueContext(ctx, moved)
	}
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		log.Info("task of another app: a copy already waits in its app's queue; this one completes", "app", app, "to_queue", to)
		return nil
	case err != nil:
		log.Warn("task of another app: could not move it to its app's queue; it goes back and is tried again", "app", app, "to_queue", to, "err", err)
		return &retryLater{reason: "could not move the task to its app's queue " + to + ": " + err.Error()}
	}
	log.Info("task of another app moved to its app's queue", "app", app, "from_queue", queue, "to_queue", to)
	return nil
}
