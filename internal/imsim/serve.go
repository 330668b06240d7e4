package imsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/recallq/recallq/internal/httpserve"
)

// Timeouts of the server ListenAndServe runs.
const (
	// ShutdownTimeout bounds the graceful shutdown: requests still running
	// after it are cut off.
	ShutdownTimeout = 5 * time.Second
	// readHeaderTimeout bounds reading a request's headers.
	readHeaderTimeout = 10 * time.Second
)

// Bounds of a refusal (Faults.RefuseUntil).
const (
	// refuseCloseTimeout bounds the wait for the requests still running
	// when a refusal starts (the POST that set it among them); the
	// connections of those still running after it are closed under them.
	refuseCloseTimeout = time.Second
	// refusePoll is how often a refusal's end is checked against
	// Config.Now, so a clock that tests move by hand ends it too.
	refusePoll = 50 * time.Millisecond
	// relistenTimeout bounds the attempts to listen on the same port again
	// when a refusal ends (another socket may hold the port for a moment).
	relistenTimeout = 5 * time.Second
)

// ListenAndServe serves s on addr (host:port; "" means "127.0.0.1:0", a free
// loopback port; port 0 picks a free port) until ctx ends, then shuts down gracefully, letting running
// requests finish for up to ShutdownTimeout. Once it listens it calls ready,
// if not nil, with the base URL ("http://127.0.0.1:PORT"). It returns nil
// after a clean shutdown, or the error that stopped it from listening or
// serving.
//
// During a refusal (Faults.RefuseUntil) it stops listening and closes every
// connection, once the requests then running have finished (at most
// refuseCloseTimeout), and listens on the same address and port again when
// the refusal ends; it returns an error if it cannot (within
// relistenTimeout).
func ListenAndServe(ctx context.Context, addr string, s *Sim, ready func(url string)) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("imsim: listen on %s: %w", addr, err)
	}
	bound := ln.Addr().String() // the port a refusal reopens
	url := httpserve.BaseURL(ln.Addr())
	s.log.InfoContext(ctx, "imsim: listening", "url", url)

	for first := true; ; first = false {
		srv := &http.Server{
			Handler:           s,
			ReadHeaderTimeout: readHeaderTimeout,
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		if first && ready != nil {
			ready(url)
		}

		if stop, err := serveUntilRefusal(ctx, s, srv, done, url); stop {
			return err
		}
		until := s.Faults().RefuseUntil
		s.log.InfoContext(ctx, "imsim: refusing connections", "url", url, "until", until)
		closeForRefusal(srv, done)
		if !waitRefusal(ctx, s) {
			s.log.InfoContext(ctx, "imsim: stopped", "url", url)
			return nil
		}
		if ln, err = relisten(ctx, &lc, bound); err != nil {
			return fmt.Errorf("imsim: listen on %s again after a refusal: %w", bound, err)
		}
		s.log.InfoContext(ctx, "imsim: accepting connections again", "url", url)
	}
}

// serveUntilRefusal waits until srv fails, ctx ends (then it shuts srv down
// gracefully) or a refusal starts. stop reports that ListenAndServe must
// return err.
func serveUntilRefusal(ctx context.Context, s *Sim, srv *http.Server, done <-chan error, url string) (stop bool, err error) {
	for {
		select {
		case err := <-done:
			return true, fmt.Errorf("imsim: serve %s: %w", url, err)
		case <-ctx.Done():
			return true, shutdown(ctx, s, srv, done, url)
		case <-s.refuseChanged:
			if s.refusing() {
				return false, nil
			}
		}
	}
}

// shutdown stops srv gracefully, within ShutdownTimeout.
func shutdown(ctx context.Context, s *Sim, srv *http.Server, done <-chan error, url string) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("imsim: serve %s: %w", url, serr)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("imsim: shut down %s: %w", url, err)
	}
	s.log.InfoContext(ctx, "imsim: stopped", "url", url)
	return nil
}

// closeForRefusal stops srv listening at once and closes its connections:
// idle ones at once, busy ones when their request is done (an API request
// is cut by the handler itself), all of them after refuseCloseTimeout.
func closeForRefusal(srv *http.Server, done <-chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), refuseCloseTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	<-done
}

// waitRefusal waits until the refusal ends, and reports false if ctx ended
// first.
func waitRefusal(ctx context.Context, s *Sim) bool {
	for s.refusing() {
		t := time.NewTimer(refusePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-s.refuseChanged: // changed: look again
		case <-t.C:
		}
		t.Stop()
	}
	return ctx.Err() == nil
}

// relisten listens on addr again, trying for up to relistenTimeout.
func relisten(ctx context.Context, lc *net.ListenConfig, addr string) (net.Listener, error) {
	deadline := time.Now().Add(relistenTimeout)
	for {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err == nil {
			return ln, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(refusePoll):
		}
	}
}
