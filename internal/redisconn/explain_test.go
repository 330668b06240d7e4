package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/redistest"
)

// Each way of failing to reach the queues is explained by its own fix, not
// by "is Redis up?", through go-redis and through asynq's wrapping alike.
func TestExplainNamesTheFix(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t, "--requirepass", "right-pass-1")
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url, want string
	}{
		{"wrong password", "redis://:wrong-pass-2@" + rs.Addr + "/0", "refused the password"},
		{"no password", "redis://" + rs.Addr + "/0", "refused the password"},
		{"no such database", "redis://:right-pass-1@" + rs.Addr + "/99", "no database 99"},
		{"nobody listening", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "is Redis at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			rdb := c.Client()
			defer rdb.Close()
			pingErr := rdb.Ping(context.Background()).Err()
			client := asynq.NewClient(c.AsynqOpt())
			defer client.Close()
			_, enqErr := client.Enqueue(asynq.NewTask("t", nil))
			for _, err := range []error{pingErr, enqErr} {
				if err == nil {
					t.Fatal("no error")
				}
				got := Explain(err, c).Error()
				if !strings.Contains(got, tc.want) {
					t.Errorf("Explain(%v) = %q, want it to say %q", err, got, tc.want)
				}
				if tc.want != "is Redis at" && strings.Contains(got, "is Redis at") {
					t.Errorf("Explain(%v) = %q asks whether Redis is up", err, got)
				}
				if strings.Contains(got, "wrong-pass-2") || strings.Contains(got, "right-pass-1") {
					t.Errorf("Explain shows the password: %q", got)
				}
			}
		})
	}
}

// Unflatten reads an error reply out of asynq's "redis eval error: %v",
// and leaves a failure to reach Redis as it is.
func TestUnflattenReadsOnlyReplies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ text, code string }{
		{"UNKNOWN: redis eval error: WRONGPASS invalid username-password pair or user is disabled.", "WRONGPASS"},
		{"INTERNAL_ERROR: redis eval error: NOAUTH Authentication required.", "NOAUTH"},
		{"UNKNOWN: redis eval error: OOM command not allowed when used memory > 'maxmemory'.", "OOM"},
		{"UNKNOWN: redis eval error: dial tcp 127.0.0.1:6379: connect: connection refused", ""},
		{"UNKNOWN: redis eval error: EOF", ""},
		{"UNKNOWN: redis eval error: context deadline exceeded", ""},
		{"WRONGPASS invalid username-password pair", ""}, // not asynq's flattening
	} {
		if got := ReplyCode(errors.New(tc.text)); got != tc.code {
			t.Errorf("ReplyCode(%q) = %q, want %q", tc.text, got, tc.code)
		}
	}
}
