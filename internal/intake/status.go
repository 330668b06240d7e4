package intake

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
)

// Task is a queued recall's state, as asynq keeps it, and what it recalls.
type Task struct {
	// ID is the task ID.
	ID string `json:"id"`
	// Type is tasks.TypeRecall (one-to-one) or tasks.TypeGroupRecall.
	Type string `json:"type"`
	// FromAccount, ToAccount and MsgKey name a one-to-one recall's message.
	FromAccount string `json:"From_Account,omitempty"`
	ToAccount   string `json:"To_Account,omitempty"`
	MsgKey      string `json:"MsgKey,omitempty"`
	// GroupID, TopicID (when given) and MsgSeq name a group recall's
	// message.
	GroupID string `json:"GroupId,omitempty"`
	TopicID string `json:"TopicId,omitempty"`
	MsgSeq  uint64 `json:"MsgSeq,omitempty"`
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

// getRecall answers a task's state, one-to-one or group: 200, 404 for an
// ID no queue of the token's apps holds (or holds no longer: a finished
// task is kept tasks.DefaultRetention), that another client queued or
// that is of an app the token may not use, 503 when Redis fails.
func (s *Server) getRecall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	notFound := func() {
		writeError(w, http.StatusNotFound, "no recall task "+id+
			": check the task_id POST /v1/recalls or /v1/group-recalls returned; finished tasks are kept for "+tasks.DefaultRetention.String(), nil)
	}
	typ := taskType(id)
	if typ == "" { // anything else cannot name a recall: not looked up
		notFound()
		return
	}
	c := slotOf(r.Context()).client
	info, err := s.findTask(r.Context(), id, typ, c.apps)
	var task Task
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		notFound()
	case err != nil:
		s.log.ErrorContext(r.Context(), "intake: cannot look up a task", "task_id", id, "err", s.logRedisErr(err))
		writeError(w, http.StatusServiceUnavailable, "cannot look up the task: "+whyRedisFailed(err), nil)
	case !readPayload(info, c, &task):
		notFound()
	default:
		task.ID, task.Type, task.Queue, task.State = info.ID, info.Type, info.Queue, info.State.String()
		task.Retried, task.MaxRetry, task.LastError = info.Retried, tasks.RetryBudget(info.MaxRetry), info.LastErr
		task.LastFailedAt, task.NextProcessAt, task.CompletedAt = info.LastFailedAt.UTC(), info.NextProcessAt.UTC(), info.CompletedAt.UTC()
		writeJSON(w, http.StatusOK, task)
	}
}

// taskType is the task type an ID of that shape belongs to: tasks.TypeRecall
// for tasks.IsTaskID's shape, tasks.TypeGroupRecall for the same shape
// after tasks.GroupTaskIDPrefix; "" for anything else.
func taskType(id string) string {
	if tasks.IsTaskID(id) {
		return tasks.TypeRecall
	}
	if rest, ok := strings.CutPrefix(id, tasks.GroupTaskIDPrefix); ok && tasks.IsTaskID(tasks.TaskIDPrefix+rest) {
		return tasks.TypeGroupRecall
	}
	return ""
}

// readPayload fills t with what the task recalls and reports whether c
// queued it, for an app c may still use. A token reads only its own
// recalls: task IDs are derived from the app, the accounts and the MsgKey,
// or the group and the MsgSeq, so reading any ID would tell any client
// whether any message was recalled. A task whose payload does not decode
// is no one's.
func readPayload(info *asynq.TaskInfo, c *client, t *Task) bool {
	if c == nil || c.name == "" {
		return false
	}
	switch info.Type {
	case tasks.TypeRecall:
		r, err := tasks.Decode(info.Payload)
		t.FromAccount, t.ToAccount, t.MsgKey = r.FromAccount, r.ToAccount, r.MsgKey
		return err == nil && r.RequestedBy == c.name && slices.Contains(c.apps, r.SDKAppID)
	case tasks.TypeGroupRecall:
		g, err := tasks.DecodeGroupRecall(info.Payload)
		t.GroupID, t.TopicID, t.MsgSeq = g.GroupID, g.TopicID, g.MsgSeq
		return err == nil && g.RequestedBy == c.name && slices.Contains(c.apps, g.SDKAppID)
	}
	return false
}

// findTask looks for the task of type typ in the queues of the apps ids,
// each app's urgent then bulk queue, then in the legacy queues (see
// taskQueues). It returns an error wrapping asynq.ErrTaskNotFound when
// none holds it.
func (s *Server) findTask(ctx context.Context, id, typ string, ids []uint64) (*asynq.TaskInfo, error) {
	type found struct {
		info *asynq.TaskInfo
		err  error
	}
	// asynq's Inspector takes no context: bound the lookup here.
	done := make(chan found, 1)
	go func() {
		for _, q := range taskQueues(ids) {
			info, err := s.inspect.GetTaskInfo(q, id)
			switch {
			case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
				continue
			case err != nil:
				done <- found{err: err}
				return
			case info.Type != typ:
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
