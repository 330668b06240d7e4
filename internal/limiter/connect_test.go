package limiter

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/redistest"
)

// slowDialer connects delay late, as a connection to a server a continent
// away takes round trips to set up (TCP, then TLS) before a request can
// go. The delay is inside the dial, after its ConnectStart, as a real
// connect's round trip is.
func slowDialer(delay time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(string, string, syscall.RawConn) error {
		time.Sleep(delay)
		return nil
	}}
	return d.DialContext
}

// seededLimiter is a limiter at 200/s on a redis-server of its own, its
// schedule seeded (no restart horizon to wait out).
func seededLimiter(t *testing.T) *Limiter {
	t.Helper()
	s := redistest.Start(t)
	rdb := s.Client(t)
	l := newTestLimiter(t, rdb, Config{Rate: 200})
	seed(t, rdb, l)
	return l
}

// goCall waits for l's next slot and admits its call (Permit.Go).
func goCall(t *testing.T, l *Limiter) *Call {
	t.Helper()
	p, err := l.Wait(context.Background(), Urgent)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Go(context.Background(), time.Now)
	if err != nil {
		t.Fatalf("Go = %v, want the call admitted at its slot", err)
	}
	return c
}

// TestACallWithoutAConnectionByTheCutoffIsNotSent: Admit's check comes
// before the HTTP client has a connection, and a new one holds the request
// back by its setup. A call whose connection is not ready by the cutoff
// after its slot must not go at all (it would land in a second that
// already holds its share); the connection it started is kept for the next
// call, which goes on time. Over HTTP/1.1 and over HTTP/2 (TLS, as
// Tencent's endpoint).
func TestACallWithoutAConnectionByTheCutoffIsNotSent(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "http1"
		if h2 {
			name = "http2"
		}
		t.Run(name, func(t *testing.T) {
			var requests, conns atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				time.Sleep(20 * time.Millisecond) // a slow answer on a ready connection is no reason to cut
				_, _ = io.WriteString(w, `{"ActionStatus":"OK","ErrorCode":0}`)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			if h2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.DialContext = slowDialer(200 * time.Millisecond)
			client := &http.Client{Transport: tr}
			t.Cleanup(tr.CloseIdleConnections)

			l := seededLimiter(t)
			call := func() (*Call, error) {
				c := goCall(t, l)
				req, err := http.NewRequestWithContext(c.Context(), http.MethodPost, srv.URL, strings.NewReader(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				return c, err
			}

			c, err := call()
			if _, _, late := c.End(); !errors.Is(late, ErrLate) {
				t.Fatalf("End = %v (the request: %v), want ErrLate: the connection took 200 ms, the cutoff is %s",
					late, err, l.cfg.LateCutoff)
			}
			if n := requests.Load(); n != 0 {
				t.Fatalf("the server got %d requests, want none: the late call must not go", n)
			}
			// Wait itself may drop a slot its grant or its wake-up missed
			// on a loaded machine; those are counted apart.
			if st := l.Stats(); st.LateDrops-st.LateGrantDrops-st.LateWakeDrops != 1 || st.LateConnDrops != 1 {
				t.Errorf("Stats() LateDrops=%d (grant %d, wake-up %d) LateConnDrops=%d, want 1 after Wait's own and 1",
					st.LateDrops, st.LateGrantDrops, st.LateWakeDrops, st.LateConnDrops)
			}

			// The dial went on without the request, and its connection
			// waits in the client's pool.
			deadline := time.Now().Add(5 * time.Second)
			for conns.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // its TLS handshake, then the pool
			c, err = call()
			if err != nil {
				t.Fatalf("the second call: %v", err)
			}
			p, answered, late := c.End()
			if late != nil {
				t.Fatalf("the second call's End = %v, want it sent on the connection the first one dialed", late)
			}
			if requests.Load() != 1 || conns.Load() != 1 {
				t.Errorf("the server got %d requests on %d connections, want 1 on 1", requests.Load(), conns.Load())
			}
			if p.sent.IsZero() || answered.Before(p.sent.Add(20*time.Millisecond)) {
				t.Errorf("sent %v, answered %v: want the send when the connection was ready and the answer after the server's 20 ms", p.sent, answered)
			}
		})
	}
}

// TestACallNotOverHTTPIsNotGuarded: the guard acts only while the HTTP
// client waits for a connection; a call that never asks for one (another
// client, a test double) is not cut, however long it takes.
func TestACallNotOverHTTPIsNotGuarded(t *testing.T) {
	l := seededLimiter(t)
	c := goCall(t, l)
	time.Sleep(4 * l.cfg.LateCutoff)
	if err := c.Context().Err(); err != nil {
		t.Errorf("the call's context ended (%v) though it never asked for a connection", err)
	}
	if _, _, late := c.End(); late != nil {
		t.Errorf("End = %v, want nil", late)
	}
	var zero Permit
	zc, err := zero.Go(context.Background(), time.Now)
	if err != nil {
		t.Fatalf("a Permit made elsewhere: Go = %v", err)
	}
	if _, _, late := zc.End(); late != nil {
		t.Errorf("a Permit made elsewhere: End = %v", late)
	}
}

// TestACallWhoseConnectionFailsAfterTheCutoffGetsTheFailure: the dial a
// cancelled call left behind fails (a host that refuses, a certificate
// refused, a name not found, after the cutoff): End must hand the caller
// that failure, which is the call's, and not ErrLate, or the caller would
// ask for slot after slot and never learn that Tencent cannot be reached.
func TestACallWhoseConnectionFailsAfterTheCutoffGetsTheFailure(t *testing.T) {
	// A port nobody listens on refuses at once; the dial reaches it 200 ms
	// after the slot.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	tr := &http.Transport{DialContext: slowDialer(200 * time.Millisecond)}
	client := &http.Client{Transport: tr}
	l := seededLimiter(t)
	c := goCall(t, l)
	req, err := http.NewRequestWithContext(c.Context(), http.MethodPost, "http://"+closed+"/v4/openim/admin_msgwithdraw", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request succeeded through a dialer that always fails")
	}
	_, _, end := c.End()
	if !errors.Is(end, syscall.ECONNREFUSED) || errors.Is(end, ErrLate) {
		t.Errorf("End = %v, want the dial's failure (connection refused), not ErrLate", end)
	}
	if st := l.Stats(); st.LateConnDrops != 1 {
		t.Errorf("Stats().LateConnDrops = %d, want 1: the slot was dropped unused", st.LateConnDrops)
	}
}

// TestACallWhoseClientDialsOutOfSightIsNotCut: a client that dials with
// a DialContext of its own that does not report its steps (no lookup or
// connect hooks) gives no word of when its connection is ready or why it
// failed; cutting its calls blind could drop call after call. Such a call
// goes when its connection comes, as it did before the guard.
func TestACallWhoseClientDialsOutOfSightIsNotCut(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.WriteString(w, `{"ActionStatus":"OK","ErrorCode":0}`)
	}))
	t.Cleanup(srv.Close)
	tr := &http.Transport{DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(50 * time.Millisecond)
		return net.Dial(network, addr) // no context: no hooks
	}}
	t.Cleanup(tr.CloseIdleConnections)
	l := seededLimiter(t)
	c := goCall(t, l)
	req, err := http.NewRequestWithContext(c.Context(), http.MethodPost, srv.URL, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("the call through a client that dials out of sight: %v", err)
	}
	resp.Body.Close()
	if _, _, end := c.End(); end != nil || requests.Load() != 1 {
		t.Errorf("End = %v, %d requests served; want the call made, late as before the guard", end, requests.Load())
	}
}

// TestACutCallHandedItsConnectionAnywayIsNotSent: net/http's getConn
// waits for its dial's connection or the request's end, and when both are
// there it picks one at random (a cut's cancel and the dial's delivery in
// the same moment, as on a loaded machine). An HTTP/1 request handed its
// connection is then written by the connection's own goroutine, racing
// the transport's reaction to the cancel: a cut call could go out after
// all, late, into a second that holds its share, and be counted twice by
// a caller that asks again. The race is one of goroutines, so it is shown
// at the hooks net/http calls: a connection handed to a call already cut
// is closed before anything can be written on it.
func TestACutCallHandedItsConnectionAnywayIsNotSent(t *testing.T) {
	t.Parallel()
	l := seededLimiter(t)
	c := goCall(t, l)
	trace := httptrace.ContextClientTrace(c.Context())
	trace.GetConn("api:443")
	trace.ConnectStart("tcp", "192.0.2.1:443")
	trace.ConnectDone("tcp", "192.0.2.1:443", nil)
	c.expire() // the cutoff came as the connect ended
	if c.Context().Err() == nil {
		t.Fatal("the call was not cut at its cutoff")
	}
	conn, server := net.Pipe()
	t.Cleanup(func() { conn.Close(); server.Close() })
	go func() { _, _ = io.Copy(io.Discard, server) }()
	trace.GotConn(httptrace.GotConnInfo{Conn: conn}) // getConn picked the connection
	if _, err := io.WriteString(conn, "POST /v4/openim/admin_msgwithdraw HTTP/1.1\r\n"); err == nil {
		t.Error("the request could be written on the connection handed to the cut call; want it closed first")
	}
	if _, _, late := c.End(); !errors.Is(late, ErrLate) {
		t.Errorf("End = %v, want ErrLate", late)
	}
}
