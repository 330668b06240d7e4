package redisconn_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

// A server with a password for the default user and an ACL user.
func startAuthServer(t *testing.T) *redistest.Server {
	return redistest.Start(t, "--requirepass", "default-pw-7Hq",
		"--user", "alice", "on", ">alice-pw-9Zx", "~*", "&*", "+@all")
}

func TestAuthReachesQueuesAndLimiter(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t)
	for _, tc := range []struct{ name, url string }{
		{"password", "redis://:default-pw-7Hq@" + s.Addr + "/0"},
		{"default user", "redis://default:default-pw-7Hq@" + s.Addr + "/1"},
		{"acl user", "redis://alice:alice-pw-9Zx@" + s.Addr + "/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := redisconn.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(conn.String(), "-pw-") {
				t.Fatalf("String() shows the password: %s", conn)
			}
			checkQueuesAndLimiter(t, conn)
		})
	}
}

// Every path that talks to Redis with a wrong or missing password fails,
// and no error (nor the Conn's String) carries the password.
func TestWrongPasswordFailsWithoutShowingIt(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t)
	const secret = "wrong-pw-Qm4"
	for _, tc := range []struct{ name, url, secret string }{
		{"wrong password", "redis://:" + secret + "@" + s.Addr + "/0", secret},
		{"wrong acl password", "redis://alice:" + secret + "@" + s.Addr + "/0", secret},
		{"no password", "redis://" + s.Addr + "/0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := redisconn.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errs := map[string]error{}

			task, err := tasks.NewTask(recall("k"), tasks.Options{})
			if err != nil {
				t.Fatal(err)
			}
			client := asynq.NewClient(conn.AsynqOpt())
			defer client.Close()
			_, errs["asynq enqueue"] = client.EnqueueContext(ctx, task)
			insp := asynq.NewInspector(conn.AsynqOpt())
			defer insp.Close()
			_, errs["asynq inspector"] = insp.Queues()

			rdb := conn.Client()
			defer rdb.Close()
			errs["go-redis ping"] = rdb.Ping(ctx).Err()
			lim, err := limiter.New(limiter.Config{Redis: rdb, App: 1400000000, API: "auth-test"})
			if err != nil {
				t.Fatal(err)
			}
			_, errs["limiter grant"] = lim.Wait(ctx, limiter.Urgent)
			lim.Close()

			for path, err := range errs {
				switch {
				case err == nil:
					t.Errorf("%s: no error", path)
				case tc.secret != "" && strings.Contains(err.Error(), tc.secret):
					t.Errorf("%s: error shows the password: %v", path, err)
				}
			}
			if errs["go-redis ping"] != nil && !redis.HasErrorPrefix(errs["go-redis ping"], "WRONGPASS") &&
				!redis.HasErrorPrefix(errs["go-redis ping"], "NOAUTH") {
				t.Errorf("go-redis ping: %v, want WRONGPASS or NOAUTH", errs["go-redis ping"])
			}
			if tc.secret != "" && strings.Contains(conn.String(), tc.secret) {
				t.Errorf("String() shows the password: %s", conn)
			}
		})
	}
}
