package redisconn

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Reply is an error reply of Redis ("WRONGPASS ...", "OOM ...") recovered
// from an error that flattened it into text: asynq v0.26 formats the error
// of each of its Lua scripts with %v ("redis eval error: %v"), which cuts
// go-redis's typed error out of the chain once a client has queued once.
// Reply is a redis.Error, so redis.HasErrorPrefix and errors.As with a
// redis.Error target find it, as IsAuthError, IsOOMError, ReplyCode and
// Explain do.
type Reply string

func (r Reply) Error() string { return string(r) }

// RedisError marks Reply as a redis.Error.
func (Reply) RedisError() {}

// flattenedBy is the text asynq puts before the error it flattens.
const flattenedBy = "redis eval error: "

// Unflatten returns err, unless err's chain holds no redis.Error while its
// text holds a Redis error reply after asynq's "redis eval error: ": then
// it returns an error with err's text that wraps both err and that reply,
// as a Reply (without any password a URL in it would carry). A failure to
// reach Redis ("dial tcp ...", "i/o timeout", "EOF") is not a reply: err
// is returned as it is.
func Unflatten(err error) error {
	if err == nil {
		return nil
	}
	var re redis.Error
	if errors.As(err, &re) {
		return err
	}
	_, text, ok := strings.Cut(err.Error(), flattenedBy)
	if !ok || replyCode(text) == "" {
		return err
	}
	return unflattened{err, Reply(Redact(text))}
}

// unflattened is an error with the Reply its text held.
type unflattened struct {
	err   error
	reply Reply
}

func (u unflattened) Error() string   { return u.err.Error() }
func (u unflattened) Unwrap() []error { return []error{u.err, u.reply} }

// replyCode is the error code a Redis error reply starts with: a word of
// capitals followed by a space ("OOM command not allowed ..."); "" when
// text is not a reply.
func replyCode(text string) string {
	code, _, ok := strings.Cut(text, " ")
	if !ok || len(code) < 2 {
		return ""
	}
	for _, r := range code {
		if (r < 'A' || r > 'Z') && r != '_' && r != '-' {
			return ""
		}
	}
	return code
}

// ReplyCode is the code of the Redis error reply in err's chain ("OOM",
// "READONLY", "ERR"), also when a library flattened it (see Unflatten);
// "" when err holds none: Redis did not answer.
func ReplyCode(err error) string {
	var re redis.Error
	if !errors.As(Unflatten(err), &re) {
		return ""
	}
	if code := replyCode(re.Error() + " "); code != "" {
		return code
	}
	return "ERR" // a reply without a code of its own
}

// IsAuthError reports whether Redis refused the password (NOAUTH,
// WRONGPASS), also when a library flattened the reply (see Unflatten).
func IsAuthError(err error) bool {
	err = Unflatten(err)
	return redis.IsAuthError(err) || redis.HasErrorPrefix(err, "NOAUTH ") || redis.HasErrorPrefix(err, "WRONGPASS ")
}

// IsOOMError reports whether Redis refused a write for want of memory
// (OOM: used memory above maxmemory, with the noeviction policy), also
// when a library flattened the reply (see Unflatten).
func IsOOMError(err error) bool {
	err = Unflatten(err)
	return redis.IsOOMError(err) || redis.HasErrorPrefix(err, "OOM ")
}
