package enqueue_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

// asynq flattens the reply to its enqueue script into text once a client
// has queued once; Recall's error still holds Redis's reply as a
// redis.Error, so a refused password and a full Redis are told apart from
// a Redis that did not answer, and the password shows nowhere.
func TestRecallErrorKeepsRedisReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		refuse []any // the CONFIG SET that makes Redis refuse
		prefix string
		is     func(error) bool
	}{
		{"password changed", []any{"requirepass", "new-pass-2"}, "WRONGPASS", redisconn.IsAuthError},
		{"out of memory", []any{"maxmemory", "1"}, "OOM", redisconn.IsOOMError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t, "--requirepass", "old-pass-1")
			c, err := enqueue.New(enqueue.Config{RedisURL: "redis://:old-pass-1@" + rs.Addr + "/0", SDKAppID: 1400000000})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			recall := tasks.Recall{FromAccount: "vinson", ToAccount: "dramon", MsgKey: "1_1_1"}
			if _, err := c.Recall(t.Context(), recall); err != nil {
				t.Fatal(err)
			}
			admin := redis.NewClient(&redis.Options{Addr: rs.Addr, Password: "old-pass-1"})
			defer admin.Close()
			if err := admin.Do(t.Context(), append([]any{"CONFIG", "SET"}, tc.refuse...)...).Err(); err != nil {
				t.Fatal(err)
			}
			admin.Do(t.Context(), "CLIENT", "KILL", "TYPE", "normal") // log in again
			recall.MsgKey = "2_2_2"
			_, err = c.Recall(t.Context(), recall)
			var reply redis.Error
			if !errors.As(err, &reply) || !redis.HasErrorPrefix(err, tc.prefix) || !tc.is(err) {
				t.Fatalf("Recall: %v; want a redis.Error %s in the chain", err, tc.prefix)
			}
			if strings.Contains(err.Error(), "-pass-") {
				t.Fatalf("the error shows a password: %v", err)
			}
		})
	}
}
