package worker

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
)

// DefaultUnservedCheck is how often a worker looks for recall tasks of an
// app no running worker serves.
const DefaultUnservedCheck = 30 * time.Second

// unservedGrace: a queue counts as unserved only when asynq lists no live
// server for it twice in a row, this far apart at least (or one check
// interval, if shorter), so that a worker restarting (its heartbeat gone
// for a moment) raises no alarm.
const unservedGrace = 10 * time.Second

// unserved finds recall tasks that wait in an app's queue which no running
// worker serves: their app is in no worker's TIM_SDKAPPID or apps file.
// Such tasks are kept (nobody takes them, so nothing archives or bounces
// them), and every worker reports them: an error log that names the app
// and the fix, and the count to report (a metric).
type unserved struct {
	insp   *asynq.Inspector
	log    *slog.Logger
	report func(map[string]int)
	// since is when each queue was first seen unserved.
	since map[string]time.Time
	now   func() time.Time
	grace time.Duration
}

// check looks once. It returns the unserved queues with their counts of
// waiting tasks (pending, scheduled or retrying), those seen unserved for
// at least the grace, and whether others were seen for the first time
// (to be looked at again after the grace).
func (u *unserved) check() (found map[string]int, unconfirmed bool, err error) {
	queues, err := u.insp.Queues()
	if err != nil {
		return nil, false, err
	}
	servers, err := u.insp.Servers()
	if err != nil {
		return nil, false, err
	}
	served := map[string]bool{}
	for _, s := range servers {
		for q := range s.Queues {
			served[q] = true
		}
	}
	now := u.now()
	found = map[string]int{}
	seen := map[string]bool{}
	for _, q := range queues {
		if _, app, ok := tasks.ParseQueue(q); !ok || app == 0 || served[q] {
			continue
		}
		info, err := u.insp.GetQueueInfo(q)
		if err != nil {
			return nil, false, err
		}
		n := info.Pending + info.Scheduled + info.Retry
		if n == 0 {
			continue
		}
		seen[q] = true
		first, ok := u.since[q]
		if !ok {
			u.since[q] = now
			unconfirmed = true
			continue
		}
		if now.Sub(first) >= u.grace {
			found[q] = n
		} else {
			unconfirmed = true
		}
	}
	for q := range u.since {
		if !seen[q] {
			delete(u.since, q)
		}
	}
	return found, unconfirmed, nil
}

// run checks every interval until ctx ends.
func (u *unserved) run(ctx context.Context, every time.Duration) {
	u.grace = min(every, unservedGrace)
	t := time.NewTicker(u.grace)
	defer t.Stop()
	last, again := time.Time{}, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Look every interval, and once more after the grace when a queue
		// was seen unserved for the first time.
		if !again && u.now().Sub(last) < every {
			continue
		}
		last = u.now()
		found, unconfirmed, err := u.check()
		again = unconfirmed
		if err != nil {
			u.log.DebugContext(ctx, "could not look for unserved recall queues", "err", err)
			continue
		}
		names := make([]string, 0, len(found))
		for q := range found {
			names = append(names, q)
		}
		slices.Sort(names)
		for _, q := range names {
			lane, app, _ := tasks.ParseQueue(q)
			u.log.ErrorContext(ctx, "recall tasks wait for an app no running worker serves; they are kept, not called, until a worker of that app runs",
				"queue", q, "lane", lane, "sdkappid", app, "tasks", found[q],
				"fix", "add the app to TIM_APPS_FILE (or run a worker with TIM_SDKAPPID set to it), or delete the tasks in asynqmon if they were queued by mistake")
		}
		if u.report != nil {
			u.report(found)
		}
	}
}
