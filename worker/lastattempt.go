package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// LastAttemptsKey is the Redis HASH of tasks on their last attempt:
// "QUEUE/TASKID" -> "running UNIXMS" while the attempt begun at UNIXMS
// runs, "kept UNIXMS" when it ended for a reason that is not the task's (a
// rate limit, a configuration error, a stop) and the task should be
// called again at UNIXMS.
//
// Why: a task's asynq MaxRetry is its real budget, so asynqmon and asynq's
// CLI show the truth (Max Retry 10, Retried n). But asynq v0.26 archives a
// task whose Retried has reached MaxRetry on *any* error, before it asks
// IsFailure (processor.handleFailedMessage), and its recoverer does the same
// for a worker that died mid-call. On every other attempt such errors cost
// nothing; on the last one they would dead-letter the task for a reason
// that is not its own. So the handler notes each last attempt here, and
// every worker puts back a task that asynq archived while noted (RunTask:
// it goes back to its queue with its Retried unchanged). A task that really
// failed on its last attempt (dead letter, budget spent) is un-noted before
// the handler returns, so it stays archived.
//
// A kept task must not wait in asynq's archive for its delay (a minute
// after an outage or a configuration error): asynq caps the archive at
// 10,000 tasks per queue, and its archive script deletes the task records
// of the oldest beyond the cap, so 10,000 later archives in the same queue
// (other tasks kept during the same outage, a campaign's dead letters)
// would delete it. So putBack moves a kept task that is not yet due from
// asynq's archived set to its scheduled set, with its due time, at once
// (toScheduled); asynq's forwarder moves it to pending when due, Retried
// unchanged, and its next attempt is noted again. A task stays in the
// archive one putBack pass (LastAttemptCheck) at most. That move writes
// asynq's own keys and relies on asynq v0.26's layout (internal/rdb),
// pinned by TestPutBackFollowsTheNotes and
// TestAKeptTaskOutlivesTheArchiveCap: see toScheduledScript. Check it
// again when upgrading asynq.
//
// The note of a task so moved ends in noteOut ("kept UNIXMS out") until
// its next attempt notes it again. asynq archives only a task that ran, so
// such a task found archived again was archived by an operator (asynqmon,
// `asynq task archive`): a dead letter, which putBack un-notes and leaves
// in the archive (before, it put it back, undoing the operator's archive,
// and a campaign's check of its tasks never counted it dead-lettered).
const LastAttemptsKey = "recallq:last-attempts"

// DefaultLastAttemptCheck is how often a worker looks for tasks to put back.
const DefaultLastAttemptCheck = time.Second

const (
	noteRunning = "running"
	noteKept    = "kept "
	noteOut     = " out" // ends a kept note once putBack moved the task out of the archive
)

// lastAttempts notes and puts back tasks on their last attempt.
type lastAttempts struct {
	rdb  redis.UniversalClient
	insp *asynq.Inspector
	log  *slog.Logger
	now  func() time.Time
}

// newLastAttempts connects to the queues' Redis.
func newLastAttempts(opt asynq.RedisConnOpt, log *slog.Logger) (*lastAttempts, func(), error) {
	rdb, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, nil, fmt.Errorf("worker: the queues' Redis connection (%T) is not a go-redis client", opt)
	}
	l := &lastAttempts{rdb: rdb, insp: asynq.NewInspector(opt), log: log.With("component", "last-attempts"), now: time.Now}
	return l, func() { l.insp.Close(); rdb.Close() }, nil
}

func lastAttemptField(queue, id string) string { return queue + "/" + id }

// begin notes the task when this is its last attempt; the returned func
// records how the attempt ended. On a nil receiver both do nothing.
func (l *lastAttempts) begin(ctx context.Context) (end func(error)) {
	if l == nil {
		return func(error) {}
	}
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	id, ok3 := asynq.GetTaskID(ctx)
	queue, ok4 := asynq.GetQueueName(ctx)
	if !ok1 || !ok2 || !ok3 || !ok4 || retried < maxRetry {
		return func(error) {}
	}
	field := lastAttemptField(queue, id)
	l.write(func(c context.Context) error {
		return l.rdb.HSet(c, LastAttemptsKey, field, runningNote(l.now())).Err()
	})
	return func(err error) {
		var rl *retryLater
		switch {
		case err == nil, errors.Is(err, asynq.SkipRetry), errors.Is(err, asynq.RevokeTask):
			// Ended for good: completed, or archived on its own account.
			l.write(func(c context.Context) error { return l.rdb.HDel(c, LastAttemptsKey, field).Err() })
		case errors.As(err, &rl):
			due := l.now().Add(rl.delay).UnixMilli()
			l.write(func(c context.Context) error {
				return l.rdb.HSet(c, LastAttemptsKey, field, noteKept+strconv.FormatInt(due, 10)).Err()
			})
		default:
			// Not the task's decision either (asynq's own deadline, say):
			// put it back at once.
			l.write(func(c context.Context) error {
				return l.rdb.HSet(c, LastAttemptsKey, field, noteKept+strconv.FormatInt(l.now().UnixMilli(), 10)).Err()
			})
		}
	}
}

// runningNote is the note of an attempt begun at at, "running UNIXMS":
// the time tells one attempt's note from the next one's, which putBack's
// compare-and-delete needs (a task run again by hand and begun while a
// pass was forgetting its earlier attempt's note).
func runningNote(at time.Time) string {
	return noteRunning + " " + strconv.FormatInt(at.UnixMilli(), 10)
}

func (l *lastAttempts) write(fn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := fn(ctx); err != nil {
		l.log.Warn("could not note a task on its last attempt; if asynq archives it for a reason not its own, run it again from the dashboard", "err", err)
	}
}

// run puts back noted tasks every interval until ctx ends.
func (l *lastAttempts) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := l.putBack(ctx); err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "could not check tasks on their last attempt", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// putBack runs again every noted task that asynq archived for a reason not
// its own, once it is due, moves to asynq's scheduled set one not yet due,
// and forgets those that ended, and those archived by hand after it moved
// them (noteOut). It returns how many it ran again. Tasks
// alive in any other state (one it scheduled among them) keep their note
// and are left alone until their next attempt notes them again. A task it
// cannot look up or move is reported in the error, after the others.
func (l *lastAttempts) putBack(ctx context.Context) (int, error) {
	notes, err := l.rdb.HGetAll(ctx, LastAttemptsKey).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error // one task's error must not hold up the notes after it
	for field, note := range notes {
		// The note read above, forgotten only if no worker has noted the
		// task again since (its next attempt: run again by hand, or put
		// back by this pass): that note stands.
		forget := func() error { _, err := l.swapNote(ctx, field, note, ""); return err }
		queue, id, ok := strings.Cut(field, "/")
		if !ok {
			_ = forget()
			continue
		}
		info, err := l.insp.GetTaskInfo(queue, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			_ = forget()
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("look up task %s: %w", id, err))
			continue
		}
		switch info.State {
		case asynq.TaskStateCompleted:
			_ = forget()
		case asynq.TaskStateArchived:
			due, kept := strings.CutPrefix(note, noteKept)
			if kept && strings.HasSuffix(due, noteOut) {
				// Archived by hand since putBack moved it out of the
				// archive: a dead letter.
				if err := forget(); err != nil {
					errs = append(errs, fmt.Errorf("forget task %s archived by hand: %w", id, err))
				} else {
					l.log.InfoContext(ctx, "task kept on its last attempt was archived by hand while it waited; left archived",
						"task_id", id, "queue", queue, "last_err", info.LastErr)
				}
				continue
			}
			if !kept && !notOwnFault(info.LastErr) {
				// Archived on its own account; the note outlived a failed
				// write.
				_ = forget()
				continue
			}
			if ms, _ := strconv.ParseInt(due, 10, 64); kept && l.now().UnixMilli() < ms {
				// Out of the archive until due (its cap would delete
				// it); the note stays for the next attempt.
				moved, err := l.toScheduled(ctx, queue, id, ms)
				if err != nil {
					errs = append(errs, fmt.Errorf("move kept task %s to the scheduled set: %w", id, err))
					continue
				}
				if moved {
					// Marked out of the archive, unless its next attempt
					// has begun and noted it already.
					if _, err := l.swapNote(ctx, field, note, note+noteOut); err != nil {
						errs = append(errs, fmt.Errorf("mark kept task %s out of the archive: %w", id, err))
					}
					l.log.InfoContext(ctx, "task archived by asynq on its last attempt for a reason not its own; scheduled again when due",
						"task_id", id, "queue", queue, "due", time.UnixMilli(ms), "retried", info.Retried, "last_err", info.LastErr)
				}
				continue
			}
			if err := l.insp.RunTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				if now, ierr := l.insp.GetTaskInfo(queue, id); ierr == nil && now.State != asynq.TaskStateArchived {
					continue // another worker put it back first
				}
				errs = append(errs, fmt.Errorf("put back task %s: %w", id, err))
				continue
			}
			_ = forget()
			n++
			l.log.InfoContext(ctx, "task archived by asynq on its last attempt for a reason not its own; put back in its queue",
				"task_id", id, "queue", queue, "retried", info.Retried, "last_err", info.LastErr)
		}
	}
	return n, errors.Join(errs...)
}

// swapNoteScript sets a task's note (KEYS[1] LastAttemptsKey, ARGV[1] the
// field) to ARGV[3], or removes it when ARGV[3] is empty, if it is still
// ARGV[2]: a worker that began the task's next attempt meanwhile has noted
// it again, and that note must stand. Returns 1 when it changed the note.
var swapNoteScript = redis.NewScript(`
if redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then
	return 0
end
if ARGV[3] == "" then
	return redis.call("HDEL", KEYS[1], ARGV[1])
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// swapNote sets the note of field from was to now (removes it when now is
// empty) if it is still was; it reports whether it changed it.
func (l *lastAttempts) swapNote(ctx context.Context, field, was, now string) (bool, error) {
	n, err := swapNoteScript.Run(ctx, l.rdb, []string{LastAttemptsKey}, field, was, now).Int()
	return n == 1, err
}

// toScheduledScript moves an archived task to the scheduled set, as
// asynq v0.26's own scripts write them (internal/rdb: scheduleCmd, and
// forwardCmd, which moves it on to pending when due): the ZSETs
// "asynq:{QUEUE}:archived" (score: died at) and "asynq:{QUEUE}:scheduled"
// (score: process at, unix seconds), and the task HASH
// "asynq:{QUEUE}:t:ID" whose "state" names the set. All keys share the
// {QUEUE} hash tag, so it runs on Redis Cluster. It moves nothing (0) if
// the task is no longer archived: another worker moved it, someone ran or
// deleted it, or asynq's cap trimmed it.
//
// KEYS[1] archived, KEYS[2] scheduled, KEYS[3] the task; ARGV[1] the task
// ID, ARGV[2] its due time in unix seconds.
var toScheduledScript = redis.NewScript(`
if redis.call("HGET", KEYS[3], "state") ~= "archived" then
	return 0
end
if redis.call("ZREM", KEYS[1], ARGV[1]) == 0 then
	return 0
end
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[1])
redis.call("HSET", KEYS[3], "state", "scheduled")
return 1
`)

// toScheduled moves the archived task to the scheduled set, due at dueMs
// (rounded up to asynq's whole seconds, so never early). It reports
// whether it moved it.
func (l *lastAttempts) toScheduled(ctx context.Context, queue, id string, dueMs int64) (bool, error) {
	prefix := "asynq:{" + queue + "}:"
	dueSec := (dueMs + 999) / 1000
	n, err := toScheduledScript.Run(ctx, l.rdb,
		[]string{prefix + "archived", prefix + "scheduled", prefix + "t:" + id}, id, dueSec).Int()
	return n == 1, err
}

// notOwnFault reports whether asynq's stored error is one asynq made
// itself for a task that was not failing: its worker died (the lease
// expired) or its deadline passed while it waited.
func notOwnFault(lastErr string) bool {
	return lastErr == asynq.ErrLeaseExpired.Error() || lastErr == context.DeadlineExceeded.Error() ||
		lastErr == context.Canceled.Error()
}

// retryText says which retry comes next, against the budget asynq shows.
func retryText(next, budget int, c Class) string {
	if c == Unknown {
		return fmt.Sprintf("retry %d of %d for an unknown code next", next, budget)
	}
	return fmt.Sprintf("retry %d of %d next", next, budget)
}

// retriesText says that the budget is spent.
func retriesText(retried, budget int, c Class) string {
	if c == Unknown {
		return fmt.Sprintf("%d retries, all an unknown code gets", retried)
	}
	return fmt.Sprintf("%d retries of %d", retried, budget)
}
