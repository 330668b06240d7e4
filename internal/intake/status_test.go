package intake

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
)

func TestGetQueuedTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.post(t, recallJSON("vinson", "dramon", "31906_833502_1572869830"))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	id := decodeAs[Queued](t, rec).TaskID

	rec = e.do(t, http.MethodGet, "/v1/recalls/"+id, opsToken.Secret, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	got := decodeAs[Task](t, rec)
	if got.ID != id || got.Queue != urgentQ || got.State != "pending" ||
		got.Retried != 0 || got.MaxRetry != tasks.DefaultMaxRetry || got.LastError != "" {
		t.Fatalf("GET answered %+v; want %s pending on %s, 0 of %d retries", got, id, urgentQ, tasks.DefaultMaxRetry)
	}
	if got.NextProcessAt.IsZero() || !got.CompletedAt.IsZero() || !got.LastFailedAt.IsZero() {
		t.Fatalf("GET answered times %+v", got)
	}
	if strings.Contains(rec.Body.String(), "completed_at") {
		t.Fatalf("an unset time is in the answer: %s", rec.Body)
	}

	// The dead-letter set is a state like any other.
	if err := e.inspector(t).ArchiveTask(urgentQ, id); err != nil {
		t.Fatal(err)
	}
	rec = e.do(t, http.MethodGet, "/v1/recalls/"+id, opsToken.Secret, "")
	if got := decodeAs[Task](t, rec); got.State != "archived" {
		t.Fatalf("after archiving: %+v", got)
	}
}

func TestGetFindsBulkTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := tasks.Recall{SDKAppID: testApp, FromAccount: "s", ToAccount: "u", MsgKey: "1_1_1", Campaign: "spam wave",
		RequestedBy: opsToken.Name} // a token reads what was queued in its name
	task, err := tasks.NewTask(r, tasks.Options{Queue: tasks.QueueBulk})
	if err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClientFromRedisClient(e.redis.Client(t))
	if _, err := c.EnqueueContext(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	rec := e.do(t, http.MethodGet, "/v1/recalls/"+r.TaskID(), opsToken.Secret, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	bulkQ := tasks.AppQueue(tasks.QueueBulk, testApp)
	if got := decodeAs[Task](t, rec); got.Queue != bulkQ || got.State != "pending" {
		t.Fatalf("GET answered %+v, want pending on %s", got, bulkQ)
	}
}

func TestGetUnknownTaskIs404(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Both lanes exist, neither holds the task.
	if rec := e.post(t, recallJSON("a", "b", "1_1_1")); rec.Code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	for _, id := range []string{
		taskID("a", "b", "never-queued"),
		"recall_not-an-id",
		"recall_08C2CAECB30BFB08104FC53A0BD6CC26",
		strings.Repeat("x", 300),
	} {
		rec := e.do(t, http.MethodGet, "/v1/recalls/"+id, opsToken.Secret, "")
		if rec.Code != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404 (%s)", id, rec.Code, rec.Body)
		}
		if got := decodeAs[ErrorResponse](t, rec); !strings.Contains(got.Error, "no recall task") {
			t.Fatalf("404 says %q", got.Error)
		}
	}
}
