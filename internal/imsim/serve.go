package imsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Timeouts of the server ListenAndServe runs.
const (
	// ShutdownTimeout bounds the graceful shutdown: requests still running
	// after it are cut off.
	ShutdownTimeout = 5 * time.Second
	// readHeaderTimeout bounds reading a request's headers.
	readHeaderTimeout = 10 * time.Second
)

// ListenAndServe serves s on addr (host:port; "" means "127.0.0.1:0", a free
// loopback port; port 0 picks a free port) until ctx ends, then shuts down gracefully, letting running
// requests finish for up to ShutdownTimeout. Once it listens it calls ready,
// if not nil, with the base URL ("http://127.0.0.1:PORT"). It returns nil
// after a clean shutdown, or the error that stopped it from listening or
// serving.
func ListenAndServe(ctx context.Context, addr string, s *Sim, ready func(url string)) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("imsim: listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
	}
	url := baseURL(ln.Addr())
	s.log.InfoContext(ctx, "imsim: listening", "url", url)

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if ready != nil {
		ready(url)
	}

	select {
	case err := <-done:
		return fmt.Errorf("imsim: serve %s: %w", url, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
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
