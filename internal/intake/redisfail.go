package intake

import (
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redisconn"
)

// whyRedisFailed says, for a client, why the intake could not use its
// Redis: a refused password is the intake's configuration, which the
// client cannot fix by trying again; anything else may pass.
func whyRedisFailed(err error) string {
	if redis.IsAuthError(err) {
		return "the queue's Redis refused the intake's password: the intake is misconfigured, so retrying will not help; tell its operator"
	}
	return "the queue's Redis did not answer"
}

// logRedisErr is err for the log: what to fix, without the password.
func (s *Server) logRedisErr(err error) string {
	return redisconn.Explain(err, s.conn).Error()
}
