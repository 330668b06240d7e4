// Package httpserve is the one lifecycle of recallq's HTTP servers (the
// intake, the dashboard, the capture): serve on a listener until the
// context ends, then shut down gracefully within a bound.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// BaseURL is the URL a client on this machine dials to reach a: an
// unspecified address (":8080") is reached on 127.0.0.1.
func BaseURL(a net.Addr) string {
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

// Server is a server Run runs: net/http's *http.Server, or another behind
// the same three methods (the capture's fasthttp server).
type Server interface {
	// Serve serves ln until Shutdown or Close; after either it returns
	// nil or http.ErrServerClosed.
	Serve(ln net.Listener) error
	// Shutdown stops taking requests and waits for the running ones, or
	// for ctx to end.
	Shutdown(ctx context.Context) error
	// Close cuts off what Shutdown left running.
	Close() error
}

// Run serves srv on ln, calls ready (if set) with ln's BaseURL once it
// serves, and when ctx ends shuts srv down, letting requests finish for at
// most shutdownTimeout before cutting them off. name ("intake") prefixes
// the log line and the errors. It returns nil after a clean shutdown, or
// the error that stopped the server.
func Run(ctx context.Context, log *slog.Logger, name string, srv Server, ln net.Listener,
	shutdownTimeout time.Duration, ready func(url string)) error {
	url := BaseURL(ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if ready != nil {
		ready(url)
	}
	select {
	case err := <-done:
		return fmt.Errorf("%s: serve %s: %w", name, url, err)
	case <-ctx.Done():
	}
	log.InfoContext(ctx, name+": shutting down", "url", url, "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve %s: %w", name, url, serr)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("%s: shut down %s: requests still running after %s were cut off: %w", name, url, shutdownTimeout, err)
	}
	return nil
}
