package limiter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"sync"
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
	c := newAnswerClock(now)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: c.stamp}), c
}

func newAnswerClock(now func() time.Time) *AnswerClock {
	if now == nil {
		now = time.Now
	}
	return &AnswerClock{now: now, base: now()}
}

// stamp is the trace's GotFirstResponseByte.
func (c *AnswerClock) stamp() { c.first.CompareAndSwap(0, int64(c.now().Sub(c.base))+1) }

// Done returns when the answer came: its first byte's time when the
// transport saw one, else now.
func (c *AnswerClock) Done() time.Time {
	if d := c.first.Load(); d > 0 {
		return c.base.Add(time.Duration(d - 1))
	}
	return c.now()
}

// Call is a permit's call in flight: Permit.Go admitted it, the caller
// makes it with Context, and End tells what came of it.
type Call struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	p      Permit
	answer *AnswerClock
	now    func() time.Time
	// deadline is the last moment the call may still go (Slot plus the
	// cutoff, local clock); zero for a Permit made elsewhere: no guard.
	deadline time.Time

	mu     sync.Mutex
	state  callState
	timer  *time.Timer
	connAt time.Time // when the HTTP client had the call's connection
	dial   dialWatch
}

type callState int

const (
	callAdmitted  callState = iota // no connection asked for yet
	callAsking                     // the HTTP client waits for a connection
	callOverdue                    // past the deadline, but no dial of its own seen
	callConnected                  // it has one: the request goes now
	callLate                       // none by the deadline: cancelled unsent
	callEnded
)

// dialWatch follows the connection the HTTP client makes for a call, from
// the hooks net/http calls on the dial's goroutine; they go on after the
// call was cancelled, for the dial does. It settles dialGrace after the
// last lookup, connect or handshake under way ended with none begun since
// (a handshake begins as its connect ends), or dialGrace after the call
// was cancelled when none was under way then.
type dialWatch struct {
	begun     bool  // a lookup, connect or handshake began for the call
	pending   int   // lookups, connects and handshakes under way
	connected bool  // a connect succeeded
	connErr   error // the last connect's failure
	failed    error // a lookup's or a handshake's failure
	check     *time.Timer
	settled   chan struct{} // closed when settled
}

const (
	// dialGrace is how long a dial with nothing under way may stay quiet
	// before it counts as over: the step after a connect (the handshake)
	// begins within microseconds on the same goroutine.
	dialGrace = 2 * time.Millisecond
	// dialWait bounds how long End waits for the connection a cancelled
	// call left dialing: as long as the default HTTP client would have
	// waited for the whole call (tim.DefaultHTTPTimeout).
	dialWait = 5 * time.Second
)

// Go admits the permit's call at now() (Permit.Admit) and returns it, to
// be made with Call.Context and ended with Call.End; it returns Admit's
// error, wrapping ErrLate, when the call may no longer go.
//
// Admit's check comes before the HTTP client has a connection, and a new
// one (a dial and a TLS handshake, round trips to a server a continent
// away; the pool's connections closed by the server or gone idle) holds
// the request back by its setup, into a second that already holds its
// share. So while the client waits for a connection the call is guarded:
// when none is ready by the cutoff after the slot, the request is
// cancelled before a byte of it is written. net/http dials on for its pool
// regardless (it detaches dials from requests); End waits for that dial
// and reports ErrLate when its connection is ready for the next call, or
// the dial's failure, which is the call's. The call's send, from which
// Observe measures its latency, is the moment it had its connection. A
// call that asks no net/http client for a connection, or whose client
// dials out of sight of the hooks, is not guarded (Call.expire); see also
// MaxConnCuts.
//
// When the client takes the connection as the call is cancelled, an
// HTTP/1 connection is closed before the request can be written on it
// (connected). Over HTTP/2, a race of microseconds remains between the
// transport's last look at the context and its write of the headers; the
// caller then calls again with another slot, as for any late drop: a
// recall is idempotent, the worst is one call more.
func (p Permit) Go(ctx context.Context, now func() time.Time) (*Call, error) {
	if now == nil {
		now = time.Now
	}
	if err := p.Admit(now()); err != nil {
		return nil, err
	}
	c := &Call{parent: ctx, p: p, now: now, answer: newAnswerClock(now)}
	if p.lim != nil {
		c.deadline = p.Slot.Add(p.lim.cfg.LateCutoff)
	}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: c.answer.stamp,

		GetConn: func(string) { c.asking() },
		GotConn: func(i httptrace.GotConnInfo) { c.connected(i.Conn) },

		DNSStart:          func(httptrace.DNSStartInfo) { c.dialBegun() },
		DNSDone:           func(i httptrace.DNSDoneInfo) { c.dialEnded(i.Err, true) },
		ConnectStart:      func(string, string) { c.dialBegun() },
		ConnectDone:       func(_, _ string, err error) { c.dialEnded(err, false) },
		TLSHandshakeStart: func() { c.dialBegun() },
		TLSHandshakeDone:  func(_ tls.ConnectionState, err error) { c.dialEnded(err, true) },
	})
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	return c, nil
}

// MaxConnCuts is how many calls in a row a caller lets Permit.Go cut for
// want of a connection before it makes the next without the guard
// (ConnCuts.Go). The guard learns from the dial's hooks when its
// connection is ready; a step they do not show (an HTTP proxy's CONNECT)
// can make a connection that is not ready, or has failed, look ready, and
// a caller that only ever asked again would drop slot after slot and never
// see the failure. The call made without the guard waits for its
// connection and gets the path's answer or error, as before the guard: at
// worst one call late.
const MaxConnCuts = 3

// ConnCuts counts one caller's calls in a row that Call.End reported cut
// for want of a connection. The zero value is ready.
type ConnCuts int

// Go makes the permit's call with Permit.Go, or, after MaxConnCuts cuts in
// a row, without the guard on its connection: it goes when the HTTP client
// has one, however late.
func (n *ConnCuts) Go(ctx context.Context, p Permit, now func() time.Time) (*Call, error) {
	c, err := p.Go(ctx, now)
	if err == nil && *n >= MaxConnCuts {
		c.mu.Lock()
		c.deadline = time.Time{}
		c.mu.Unlock()
	}
	return c, err
}

// Ended counts Call.End's error: a cut (ErrLate) adds one; a call made,
// answered or failed, starts the count again.
func (n *ConnCuts) Ended(err error) {
	if errors.Is(err, ErrLate) {
		*n++
	} else {
		*n = 0
	}
}

// Context is the context to make the call with.
func (c *Call) Context() context.Context { return c.ctx }

// asking: the HTTP client looks for a connection (again, when it retries
// on another). The call goes only if it has one by the deadline.
func (c *Call) asking() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadline.IsZero() || c.state == callLate || c.state == callEnded {
		return
	}
	c.state = callAsking
	left := c.deadline.Sub(c.now())
	if left <= 0 {
		c.state = callOverdue // cut when a dial of its own begins
		return
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(left, c.expire)
	} else {
		c.timer.Reset(left)
	}
}

// expire: the deadline came while the client still waited. Only a wait
// for a dial of the call's own is cut: its hooks tell when the connection
// is ready or why it failed (End). A client that dials without them (a
// DialContext of its own) or waits for a connection in use gives no such
// word, and cutting it blind could drop call after call and never see a
// failure; such a call goes when its connection comes, as before the guard.
func (c *Call) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state != callAsking:
	case c.dial.begun:
		c.lateLocked()
	default:
		c.state = callOverdue
	}
}

func (c *Call) lateLocked() {
	c.state = callLate
	c.dial.settled = make(chan struct{})
	c.cancel(fmt.Errorf("%w: no connection to the API by %s after the slot (the cutoff)", ErrLate, c.p.lim.cfg.LateCutoff))
	if c.dial.pending == 0 {
		c.checkDialLocked()
	}
}

// connected: the client has the connection; the request is written now.
//
// A call already cut can be handed its connection still: net/http's
// getConn picks at random between a connection and the request's end when
// both are there, and an HTTP/1 request is then written by the
// connection's goroutine whatever its context says. Closing conn first
// makes that write fail with nothing sent (the connection was for the
// next call; the pool dials again). HTTP/2 checks the context under its
// write lock before a stream's headers go, and its connection carries
// other calls' streams: it is left alone.
func (c *Call) connected(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == callLate && conn != nil && !isHTTP2(conn) {
		conn.Close()
	}
	if c.state == callLate || c.state == callEnded {
		return
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.state = callConnected
	c.connAt = c.now()
}

// isHTTP2 reports whether conn negotiated HTTP/2.
func isHTTP2(conn net.Conn) bool {
	tc, ok := conn.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// dialBegun: a step of a dial for the call began; past the deadline
// (the dial began late, or the client was waiting for it) it is cut now.
func (c *Call) dialBegun() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dial.pending++
	c.dial.begun = true
	if c.state == callOverdue || (c.state == callAsking && c.now().After(c.deadline)) {
		c.lateLocked()
	}
}

// dialEnded: a lookup, connect or handshake ended with err; fatal says
// that its failure fails the dial (a connect's may not: another address
// may follow).
func (c *Call) dialEnded(err error, fatal bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dial.pending--
	switch {
	case err != nil && fatal:
		c.dial.failed = err
	case err != nil:
		c.dial.connErr = err
	case !fatal:
		c.dial.connected = true
	}
	if c.dial.pending == 0 && c.dial.settled != nil {
		c.checkDialLocked()
	}
}

// checkDialLocked settles the dial after dialGrace unless a step of it
// begins before then.
func (c *Call) checkDialLocked() {
	if c.dial.check != nil {
		c.dial.check.Stop()
	}
	c.dial.check = time.AfterFunc(dialGrace, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.dial.pending == 0 {
			select {
			case <-c.dial.settled:
			default:
				close(c.dial.settled)
			}
		}
	})
}

// End ends the call once the caller is done with it (its answer read):
// it returns the permit, with its send when the connection was ready, and
// when the answer came, for Limiter.Observe.
//
// When the call was cancelled for want of a connection by the cutoff,
// nothing was sent and the slot is dropped (Stats.LateConnDrops). End then
// waits for the connection the client went on making (at most dialWait,
// or until the context Go was given ends): ready, End returns an error
// wrapping ErrLate, and the caller asks for another slot; failed, or not
// ready in time, it returns the failure, which is the call's (a DNS name
// not found, a certificate refused: the caller classifies it as it would
// the call's own error).
func (c *Call) End() (Permit, time.Time, error) {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	state, connAt, settled := c.state, c.connAt, c.dial.settled
	c.state = callEnded
	c.mu.Unlock()
	p := c.p
	if state != callLate {
		c.cancel(nil)
		if !connAt.IsZero() {
			p.sent = connAt
		}
		return p, c.answer.Done(), nil
	}
	late := context.Cause(c.ctx)
	c.cancel(nil)
	p.lim.stats.lateDrops.Add(1)
	p.lim.stats.lateConnDrops.Add(1)
	p.lim.noteDrop(p.RedisSlot)
	p.Unused()
	wait := time.NewTimer(dialWait)
	defer wait.Stop()
	select {
	case <-settled:
	case <-wait.C:
		return p, time.Time{}, fmt.Errorf("limiter: no connection to the API within %s", dialWait)
	case <-c.parent.Done():
		return p, time.Time{}, late
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.dial.failed != nil:
		return p, time.Time{}, c.dial.failed
	case !c.dial.connected && c.dial.connErr != nil:
		return p, time.Time{}, c.dial.connErr
	}
	return p, time.Time{}, late
}
