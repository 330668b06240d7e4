// Package enqueue is the producer side of recallq: the library other Go
// services import to queue recalls of Tencent Cloud Chat messages,
// one-to-one (Recall) and in groups (GroupRecall, GroupRecalls).
//
//	c, err := enqueue.New(enqueue.Config{RedisURL: os.Getenv("REDIS_URL"), SDKAppID: 1400000000})
//	res, err := c.Recall(ctx, tasks.Recall{FromAccount: "vinson", ToAccount: "dramon", MsgKey: "31906_833502_1572869830"})
//	// res.TaskID; res.AlreadyQueued is true when the same recall was queued before.
//
// Recalls queued here go to the urgent lane, which workers always serve
// before bulk campaigns.
package enqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/tasks"
)

// Config configures a Client.
type Config struct {
	// RedisURL is the Redis that holds the queues. Default
	// "redis://127.0.0.1:6379/0"; rediss:// for TLS, redis-sentinel://
	// and redis-cluster:// for Sentinel and Cluster.
	RedisURL string
	// Redis, if set, is used instead of RedisURL: for Sentinel or Cluster
	// options built elsewhere, or TLS with a private CA.
	Redis asynq.RedisConnOpt
	// SDKAppID is the Chat app whose messages are recalled. Required.
	SDKAppID uint64
	// MaxRetry is each task's budget of transient failures. Default
	// tasks.DefaultMaxRetry.
	MaxRetry int
	// Retention keeps a finished task's record so a second request for the
	// same recall is reported as already queued. Default tasks.DefaultRetention.
	Retention time.Duration
}

// Client queues recalls. It is safe for concurrent use.
type Client struct {
	cfg Config
	c   *asynq.Client
}

// New connects to Redis lazily; it returns an error only for bad Config.
func New(cfg Config) (*Client, error) {
	if cfg.SDKAppID == 0 {
		return nil, errors.New("enqueue: Config.SDKAppID is not set: give the app's SDKAppID from the Chat console")
	}
	opt := cfg.Redis
	if opt == nil {
		conn, err := redisconn.Parse(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("enqueue: %w", err)
		}
		opt = conn.AsynqOpt()
	}
	return &Client{cfg: cfg, c: asynq.NewClient(opt)}, nil
}

// Result says what happened to a queued recall.
type Result struct {
	// TaskID is the recall's deterministic task ID.
	TaskID string
	// AlreadyQueued is true when a task for the same message was already
	// there (queued, running, retrying or recently finished): nothing new
	// was queued.
	AlreadyQueued bool
}

// Recall validates r and queues it on the urgent lane. r.SDKAppID may be
// left zero; the client's app is used. Bad input returns an error wrapping
// tasks.ErrInvalid that names the field; a Redis failure returns the
// Redis error, without the password. An error reply of Redis (WRONGPASS,
// NOAUTH, OOM, READONLY, ...) is in its chain as a redis.Error, even where
// asynq flattened it into text: test it with redis.HasErrorPrefix(err,
// "WRONGPASS") or errors.As.
func (c *Client) Recall(ctx context.Context, r tasks.Recall) (Result, error) {
	return c.queue(ctx, r, tasks.QueueUrgent)
}

func (c *Client) queue(ctx context.Context, r tasks.Recall, queue string) (Result, error) {
	if r.SDKAppID == 0 {
		r.SDKAppID = c.cfg.SDKAppID
	}
	t, err := tasks.NewTask(r, tasks.Options{Queue: queue, MaxRetry: c.cfg.MaxRetry, Retention: c.cfg.Retention})
	if err != nil {
		return Result{}, err
	}
	return c.enqueue(ctx, t, r.TaskID())
}

// GroupRecall validates g and queues the recall of its one message on the
// urgent lane; g.SDKAppID may be left zero. Its errors are Recall's. The
// worker packs the seqs of one group waiting at the same time into one
// call, whoever queued them.
func (c *Client) GroupRecall(ctx context.Context, g tasks.GroupRecall) (Result, error) {
	if g.SDKAppID == 0 {
		g.SDKAppID = c.cfg.SDKAppID
	}
	t, err := tasks.NewGroupTask(g, tasks.Options{Queue: tasks.QueueUrgent, MaxRetry: c.cfg.MaxRetry, Retention: c.cfg.Retention})
	if err != nil {
		return Result{}, err
	}
	return c.enqueue(ctx, t, g.TaskID())
}

// GroupRecalls queues one task per seq of g's group (and topic): g with
// MsgSeq set to each of seqs in turn, on the urgent lane. It validates
// every seq before it queues any (a bad one: an error naming the field,
// nothing queued) and returns one Result per seq, in order; on a Redis
// failure it returns the Results of the seqs queued before it.
func (c *Client) GroupRecalls(ctx context.Context, g tasks.GroupRecall, seqs []uint64) ([]Result, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("%w: %w", tasks.ErrInvalid, &tasks.FieldError{Field: "MsgSeq", Reason: "no MsgSeq given: give at least one"})
	}
	if g.SDKAppID == 0 {
		g.SDKAppID = c.cfg.SDKAppID
	}
	all := make([]tasks.GroupRecall, len(seqs))
	for i, seq := range seqs {
		all[i] = g
		all[i].MsgSeq = seq
		if err := all[i].Validate(); err != nil {
			return nil, err
		}
	}
	out := make([]Result, 0, len(seqs))
	for _, one := range all {
		res, err := c.GroupRecall(ctx, one)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

func (c *Client) enqueue(ctx context.Context, t *asynq.Task, id string) (Result, error) {
	res := Result{TaskID: id}
	switch _, err := c.c.EnqueueContext(ctx, t); {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		res.AlreadyQueued = true
	case err != nil:
		// asynq flattens a reply to its scripts (WRONGPASS, OOM) into
		// text: Unflatten puts it back in the chain as a redis.Error.
		return Result{}, fmt.Errorf("queue recall %s: %w", res.TaskID, redisconn.Redacted(redisconn.Unflatten(err)))
	}
	return res, nil
}

// Close closes the connection to Redis.
func (c *Client) Close() error { return c.c.Close() }
