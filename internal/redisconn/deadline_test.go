package redisconn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
)

// A caller's deadline bounds its call to a Redis that holds the connection
// open and never answers (a hung primary, a dead network path). go-redis
// reads with ReadTimeout (5 s) whatever the context says unless the client
// is told to respect it, and a client WithRetries(FailoverRetries) tries
// ten times: a limiter's one-second round trip, a shutdown's bound or a
// task's deadline then held for half a minute.
func TestAContextDeadlineBoundsACallToAHungRedis(t *testing.T) {
	rs := redistest.Start(t)
	base, err := Parse(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]redis.UniversalClient{
		"Client":                       base.Client(),
		"WithRetries(FailoverRetries)": base.WithRetries(FailoverRetries).Client(),
		"AsynqOpt":                     base.AsynqOpt().MakeRedisClient().(redis.UniversalClient),
		"AsynqOpt, WithRetries":        base.WithRetries(FailoverRetries).AsynqOpt().MakeRedisClient().(redis.UniversalClient),
	}
	for _, c := range clients {
		defer c.Close()
		if err := c.Ping(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rs.Pause(t)
	const deadline = 200 * time.Millisecond
	for name, c := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		err := c.Eval(ctx, "return 1", nil).Err()
		took := time.Since(start)
		cancel()
		// Well under ReadTimeout, the bound when the deadline is ignored.
		if !errors.Is(err, context.DeadlineExceeded) || took > 2*time.Second {
			t.Errorf("%s: a call with a %s deadline to a hung Redis returned after %s with %v; want context.DeadlineExceeded soon after the deadline",
				name, deadline, took.Round(time.Millisecond), err)
		}
	}
}

// Every kind of client respects the caller's deadline.
func TestEveryClientRespectsTheContextDeadline(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"redis://h:1/0", "redis-sentinel://s:1/0?master=m", "redis-cluster://n:1"} {
		base, err := Parse(url)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*Conn{base, base.WithRetries(FailoverRetries)} {
			var on bool
			switch v := c.Client().(type) {
			case *redis.Client:
				on = v.Options().ContextTimeoutEnabled
				v.Close()
			case *redis.ClusterClient:
				on = v.Options().ContextTimeoutEnabled
				v.Close()
			default:
				t.Fatalf("%s: client %T", url, v)
			}
			if !on {
				t.Errorf("%s (retries %v): ContextTimeoutEnabled is off", url, c.retries != nil)
			}
		}
	}
}

// A worker's client (WithRetries(FailoverRetries)) waits out a Redis that
// stalls for a few seconds instead of sending the command again: the first
// send stays queued in the stalled Redis and runs when it wakes, so a
// command sent again runs twice. When that command is asynq's dequeue, the
// first run moves a task to active for no worker, where it waits for
// asynq's lease recovery (seen once in the fault suite's redis-hang: the
// drain 92.6 s late). A read_timeout the URL sets still wins.
func TestAStallIsWaitedOutNotRunTwice(t *testing.T) {
	rs := redistest.Start(t)
	base, err := Parse(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := base.WithRetries(FailoverRetries).Client()
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	const stall = 7 * time.Second // past go-redis's 5 s default
	resume := rs.Pause(t)
	time.AfterFunc(stall, resume)
	// No deadline, as asynq's dequeue has none.
	n, err := c.Eval(context.Background(), "return redis.call('INCR', KEYS[1])", []string{"runs"}).Int()
	if err != nil {
		t.Fatal(err)
	}
	runs, err := rs.Client(t).Get(context.Background(), "runs").Int()
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 || n != 1 {
		t.Errorf("a script sent during a %s stall ran %d times (the reply read: run %d); want once", stall, runs, n)
	}

	withURL, err := Parse(rs.URL + "?read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	uc := withURL.WithRetries(FailoverRetries).Client().(*redis.Client)
	defer uc.Close()
	if got := uc.Options().ReadTimeout; got != 2*time.Second {
		t.Errorf("the URL's read_timeout=2s gave %s", got)
	}
}
