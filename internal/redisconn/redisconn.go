// Package redisconn turns a REDIS_URL into the connections recallq needs:
// asynq's connection option for the queues and a go-redis client for the
// limiter and campaign state. Every error and every printed form of a URL
// leaves the password out.
package redisconn

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DefaultURL is the Redis used when REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// Conn is a parsed Redis URL.
type Conn struct {
	opt      *redis.Options
	redacted string
}

// ErrBadURL is wrapped by every parse error.
var ErrBadURL = errors.New("bad Redis URL")

// Parse parses redis://[user:password@]host:port/db or rediss://... (TLS).
// The error never contains the password.
func Parse(rawURL string) (*Conn, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	red := Redact(rawURL)
	if !strings.HasPrefix(rawURL, "redis://") && !strings.HasPrefix(rawURL, "rediss://") {
		return nil, fmt.Errorf("%w %q: use redis://host:port/db, or rediss:// for TLS", ErrBadURL, red)
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %s", ErrBadURL, red, Redact(err.Error()))
	}
	return &Conn{opt: opt, redacted: red}, nil
}

// String is the URL without its password, for logs.
func (c *Conn) String() string { return c.redacted }

// Options returns a copy of the go-redis options.
func (c *Conn) Options() *redis.Options { o := *c.opt; return &o }

// Client returns a new go-redis client. The caller closes it. It is a
// UniversalClient so that Sentinel and Cluster deployments fit the same
// callers.
func (c *Conn) Client() redis.UniversalClient { return redis.NewClient(c.Options()) }

// AsynqOpt returns asynq's connection option for the same server.
func (c *Conn) AsynqOpt() asynq.RedisConnOpt {
	return asynq.RedisClientOpt{
		Network:   c.opt.Network,
		Addr:      c.opt.Addr,
		Username:  c.opt.Username,
		Password:  c.opt.Password,
		DB:        c.opt.DB,
		TLSConfig: c.opt.TLSConfig,
		PoolSize:  c.opt.PoolSize,
	}
}

// Redact replaces the password of any URL in s with "xxxxx".
func Redact(s string) string {
	u, err := url.Parse(s)
	if err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		return s
	}
	// Not a clean URL: cut any userinfo between "://" and "@".
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.Index(s[i+3:], "@"); j >= 0 {
			return s[:i+3] + "xxxxx@" + s[i+3+j+1:]
		}
	}
	return s
}
