package intake

import (
	"github.com/recallq/recallq/internal/redisconn"
)

// whyRedisFailed says, for a client, why the intake could not use its
// Redis: a refused password is the intake's configuration, which the
// client cannot fix by trying again; a full Redis, or another error
// reply, needs its operator too; a Redis that did not answer may come
// back, so only that answer says to try again later.
func whyRedisFailed(err error) string {
	switch code := redisconn.ReplyCode(err); {
	case redisconn.IsAuthError(err):
		return "the queue's Redis refused the intake's password: the intake is misconfigured, so retrying will not help; tell its operator"
	case redisconn.IsOOMError(err):
		return "the queue's Redis refused the write: out of memory; its operator must raise Redis's maxmemory or free memory " +
			"(the workers drain the queues), and retrying fails until then"
	case code == "READONLY":
		return "the queue's Redis refused the write: it is a read-only replica (a failover may be under way)"
	case code != "":
		return "the queue's Redis refused the command (" + code + "); tell the intake's operator"
	}
	return "the queue's Redis did not answer; try again later"
}

// logRedisErr is err for the log: what to fix, without the password.
func (s *Server) logRedisErr(err error) string {
	return redisconn.Explain(err, s.conn).Error()
}
