package dashboard

import (
	"context"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

const (
	testSDKAppID = 1400000000
	// redisPassword guards the test's redis-server; no page may show it.
	redisPassword = "redis-Pa55word-never-shown"
)

// Queue contents seedQueues leaves: pending and archived per queue.
const (
	urgentPending, urgentArchived = 3, 1
	bulkPending, bulkArchived     = 5, 2
)

type seeded struct {
	opt  asynq.RedisConnOpt
	conn *redisconn.Conn
}

// startSeededRedis starts a password-protected redis-server and queues
// recalls on both lanes: some pending, some archived (dead-lettered).

// The test app's queues.
var (
	urgentQ = tasks.AppQueue(tasks.QueueUrgent, testSDKAppID)
	bulkQ   = tasks.AppQueue(tasks.QueueBulk, testSDKAppID)
)

func startSeededRedis(t *testing.T) seeded {
	t.Helper()
	s := redistest.Start(t, "--requirepass", redisPassword)
	url := fmt.Sprintf("redis://:%s@%s/0", redisPassword, s.Addr)
	conn, err := redisconn.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The urgent lane, as producers fill it: through the enqueue library.
	prod, err := enqueue.New(enqueue.Config{RedisURL: url, SDKAppID: testSDKAppID})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var urgentIDs []string
	for i := range urgentPending + urgentArchived {
		res, err := prod.Recall(ctx, tasks.Recall{FromAccount: "vinson", ToAccount: "dramon",
			MsgKey: urgentMsgKey(i), Reason: "abuse report 7731"})
		if err != nil {
			t.Fatal(err)
		}
		urgentIDs = append(urgentIDs, res.TaskID)
	}

	// The bulk lane, as a campaign fills it.
	c := asynq.NewClient(conn.AsynqOpt())
	defer c.Close()
	var bulkIDs []string
	for i := range bulkPending + bulkArchived {
		r := tasks.Recall{SDKAppID: testSDKAppID, FromAccount: "spam-bot", ToAccount: fmt.Sprintf("user%d", i),
			MsgKey: fmt.Sprintf("40100_%d_1572869999", i), Campaign: "spam wave 12"}
		task, err := tasks.NewTask(r, tasks.Options{Queue: tasks.QueueBulk})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.EnqueueContext(ctx, task); err != nil {
			t.Fatal(err)
		}
		bulkIDs = append(bulkIDs, r.TaskID())
	}

	// Dead letters, as the worker leaves them: the first of each lane.
	insp := asynq.NewInspector(conn.AsynqOpt())
	defer insp.Close()
	for _, id := range urgentIDs[:urgentArchived] {
		if err := insp.ArchiveTask(urgentQ, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range bulkIDs[:bulkArchived] {
		if err := insp.ArchiveTask(bulkQ, id); err != nil {
			t.Fatal(err)
		}
	}
	return seeded{opt: conn.AsynqOpt(), conn: conn}
}

// urgentMsgKey is the MsgKey of the i-th urgent recall startSeededRedis queues.
func urgentMsgKey(i int) string { return fmt.Sprintf("31906_%d_1572869830", 833500+i) }
