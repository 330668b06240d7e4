package intake

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
)

// Task is a queued recall's state, as asynq keeps it.
type Task struct {
	// ID is the task ID.
	ID string `json:"id"`
	// Queue is the asynq queue that holds the task: the app's urgent or
	// bulk queue (tasks.AppQueue), or a legacy one (tasks.LegacyQueues).
	Queue string `json:"queue"`
	// State is pending, active, scheduled, retry, archived (dead-lettered)
	// or completed.
	State string `json:"state"`
	// Retried is how many transient failures the task has had.
	Retried int `json:"retried"`
	// MaxRetry is the task's budget of transient failures.
	MaxRetry int `json:"max_retry"`
	// LastError is the last failure's cause, already scrubbed of secrets by
	// the worker.
	LastError string `json:"last_error,omitempty"`
	// LastFailedAt is when the task last failed.
	LastFailedAt time.Time `json:"last_failed_at,omitzero"`
	// NextProcessAt is when a pending, scheduled or retrying task is next
	// tried.
	NextProcessAt time.Time `json:"next_process_at,omitzero"`
	// CompletedAt is when a completed task finished.
	CompletedAt time.Time `json:"completed_at,omitzero"`
}

// getRecall answers a task's state: 200, 404 for an ID no queue holds (or
// holds no longer: a finished task is kept tasks.DefaultRetention) or that
// another client queued, 503 when Redis fails.
func (s *Server) getRecall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	notFound := func() {
		writeError(w, http.StatusNotFound, "no recall task "+id+
			": check the task_id POST /v1/recalls returned; finished tasks are kept for "+tasks.DefaultRetention.String(), nil)
	}
	if !tasks.IsTaskID(id) { // anything else cannot name a recall: not looked up
		notFound()
		return
	}
	info, err := s.findTask(r.Context(), id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), err == nil && !queuedBy(info, requester(r.Context())):
		notFound()
	case err != nil:
		s.log.ErrorContext(r.Context(), "intake: cannot look up a task", "task_id", id, "err", s.logRedisErr(err))
		writeError(w, http.StatusServiceUnavailable, "cannot look up the task: "+whyRedisFailed(err)+"; try again later", nil)
	default:
		writeJSON(w, http.StatusOK, Task{
			ID:            info.ID,
			Queue:         info.Queue,
			State:         info.State.String(),
			Retried:       info.Retried,
			MaxRetry:      tasks.RetryBudget(info.MaxRetry),
			LastError:     info.LastErr,
			LastFailedAt:  info.LastFailedAt.UTC(),
			NextProcessAt: info.NextProcessAt.UTC(),
			CompletedAt:   info.CompletedAt.UTC(),
		})
	}
}

// queuedBy reports whether the client named who queued the task. A token
// reads only its own recalls: task IDs are derived from the accounts and
// the MsgKey, so reading any ID would tell any client whether any message
// was recalled. A task whose payload does not decode is no one's.
func queuedBy(info *asynq.TaskInfo, who string) bool {
	r, err := tasks.Decode(info.Payload)
	return err == nil && who != "" && r.RequestedBy == who
}

// findTask looks for the task in the app's urgent queue, then its bulk
// queue, then the legacy queues (tasks queued before queues carried the
// app). It returns an error wrapping asynq.ErrTaskNotFound when none holds
// it.
func (s *Server) findTask(ctx context.Context, id string) (*asynq.TaskInfo, error) {
	type found struct {
		info *asynq.TaskInfo
		err  error
	}
	// asynq's Inspector takes no context: bound the lookup here.
	done := make(chan found, 1)
	go func() {
		app := s.cfg.SDKAppID
		for _, q := range []string{tasks.AppQueue(tasks.QueueUrgent, app), tasks.AppQueue(tasks.QueueBulk, app), tasks.QueueUrgent, tasks.QueueBulk} {
			info, err := s.inspect.GetTaskInfo(q, id)
			switch {
			case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
				continue
			case err != nil:
				done <- found{err: err}
				return
			case info.Type != tasks.TypeRecall:
				continue
			}
			done <- found{info: info}
			return
		}
		done <- found{err: asynq.ErrTaskNotFound}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	defer cancel()
	select {
	case f := <-done:
		return f.info, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
