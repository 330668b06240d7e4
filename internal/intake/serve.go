package intake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Timeouts of the HTTP server ListenAndServe runs.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
)

// ListenAndServe serves the API on Config.Addr until ctx ends, then shuts
// down gracefully: it stops accepting connections and lets running requests
// finish for up to Config.ShutdownTimeout. Once it listens it calls ready,
// if not nil, with the base URL ("http://127.0.0.1:PORT"). It returns nil
// after a clean shutdown, or the error that stopped it from listening or
// serving.
func (s *Server) ListenAndServe(ctx context.Context, ready func(url string)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("intake: listen on %s: %w", s.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	url := baseURL(ln.Addr())
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		s.log.WarnContext(ctx, "intake: serving plain HTTP beyond this machine: bearer tokens cross the network readable; "+
			"put a proxy that terminates TLS in front (or a service mesh with mTLS)", "addr", ln.Addr().String())
	}
	s.log.InfoContext(ctx, "intake: listening", "url", url, "redis", s.conn.String(), "sdkappid", s.cfg.SDKAppID,
		"clients", len(s.clients), "rate", s.cfg.Rate, "burst", s.cfg.Burst, "max_batch", s.cfg.MaxBatch)

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if ready != nil {
		ready(url)
	}
	select {
	case err := <-done:
		return fmt.Errorf("intake: serve %s: %w", url, err)
	case <-ctx.Done():
	}
	s.log.InfoContext(ctx, "intake: shutting down", "url", url, "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("intake: serve %s: %w", url, serr)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("intake: shut down %s: requests still running after %s were cut off: %w", url, s.cfg.ShutdownTimeout, err)
	}
	s.log.InfoContext(ctx, "intake: stopped", "url", url)
	return nil
}

// baseURL is the URL a client on this machine dials to reach a.
func baseURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String()
	}
	host := tcp.IP
	if host == nil || host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
	}
	return "http://" + net.JoinHostPort(host.String(), fmt.Sprint(tcp.Port))
}
