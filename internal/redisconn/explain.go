package redisconn

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Explain wraps err, an error from a client of c, with what to do about
// it: a refused password (WRONGPASS, NOAUTH) says to check REDIS_URL's
// user and password, a database the server does not have says so, a full
// Redis (OOM) or a read-only replica (READONLY) says so, another error
// reply names its code, and a failure to get an answer asks whether Redis
// is up at c's address. It reads replies asynq flattened into text too
// (see Unflatten). The result wraps err (and the Reply Unflatten found)
// and, like c.String, shows no password.
func Explain(err error, c *Conn) error {
	if err == nil {
		return nil
	}
	err = Unflatten(err)
	msg := Redact(err.Error())
	switch code := ReplyCode(err); {
	case IsAuthError(err) && c.kind == Sentinel:
		// The sentinels and the data nodes each have their own password,
		// and go-redis's error does not always say which refused.
		return explained{err, fmt.Sprintf("%s: Redis at %s refused the password: check %s (the sentinels' password, if they have one) "+
			"and the user and password in REDIS_URL (the primary's: redis-sentinel://:PASSWORD@host, percent-encoded)", msg, c, EnvSentinelPassword)}
	case IsAuthError(err):
		return explained{err, fmt.Sprintf("%s: Redis at %s refused the password: check the user and password in REDIS_URL "+
			"(redis://:PASSWORD@host, percent-encoded)", msg, c)}
	case redis.HasErrorPrefix(err, "DB index is out of range"):
		return explained{err, fmt.Sprintf("%s: Redis at %s has no database %d: use one below its \"databases\" setting (16 by default), e.g. /0",
			msg, c, c.db())}
	case IsOOMError(err):
		return explained{err, fmt.Sprintf("%s: Redis at %s refused the write: out of memory (used memory is above maxmemory, "+
			"and its policy evicts nothing): raise maxmemory, or free memory (let the workers drain the queues)", msg, c)}
	case code == "READONLY":
		return explained{err, fmt.Sprintf("%s: Redis at %s is a read-only replica: point REDIS_URL at the primary "+
			"(a redis-sentinel:// URL follows failovers)", msg, c)}
	case code != "":
		return explained{err, fmt.Sprintf("%s: Redis at %s refused the command (%s)", msg, c, code)}
	}
	return explained{err, fmt.Sprintf("%s (is Redis at %s up?)", msg, c)}
}

// explained is an error with a message of its own that still unwraps to
// the cause, so callers can test it with errors.Is and errors.As.
type explained struct {
	err error
	msg string
}

func (e explained) Error() string { return e.msg }
func (e explained) Unwrap() error { return e.err }

// db is the database the URL names.
func (c *Conn) db() int {
	switch c.kind {
	case Sentinel:
		return c.failover.DB
	case Cluster:
		return 0
	}
	return c.opt.DB
}

// Redacted returns err with Redact applied to its message; it still
// unwraps to err, so callers can test the cause (errors.Is, errors.As,
// redis.IsAuthError) where a flattened message would lose it.
func Redacted(err error) error {
	if err == nil {
		return nil
	}
	return explained{err, Redact(err.Error())}
}
