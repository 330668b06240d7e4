package limiter

import (
	"context"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// AnswerClock marks when a call's answer came, for Observe: the first byte
// of the HTTP response, stamped by the transport's own goroutine, when the
// call is made over net/http with the context WithAnswerClock returned (as
// *tim.Client makes it); otherwise, or when no byte came, the moment Done
// is called. What follows the first byte (reading and decoding the body,
// the caller's turn on a busy CPU) is the answer's way back: it moves no
// call's arrival at the API, and counting it in the latency samples would
// widen the measured spread and slow every process for nothing.
type AnswerClock struct {
	now   func() time.Time
	base  time.Time    // now() when the clock was made
	first atomic.Int64 // the first byte's time as ns after base, plus 1; 0 until it came
}

// WithAnswerClock returns ctx carrying the trace that stamps the answer's
// first byte, and the clock to read when the call returns. now is the
// clock Observe is given times of (Config.Now); nil is time.Now.
func WithAnswerClock(ctx context.Context, now func() time.Time) (context.Context, *AnswerClock) {
	if now == nil {
		now = time.Now
	}
	c := &AnswerClock{now: now, base: now()}
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() {
		c.first.CompareAndSwap(0, int64(c.now().Sub(c.base))+1)
	}}
	return httptrace.WithClientTrace(ctx, trace), c
}

// Done returns when the answer came: its first byte's time when the
// transport saw one, else now.
func (c *AnswerClock) Done() time.Time {
	if d := c.first.Load(); d > 0 {
		return c.base.Add(time.Duration(d - 1))
	}
	return c.now()
}
