package intake

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/recallq/recallq/internal/apps"
	"github.com/recallq/recallq/internal/httpserve"
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
	url := httpserve.BaseURL(ln.Addr())
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		s.log.WarnContext(ctx, "intake: serving plain HTTP beyond this machine: bearer tokens cross the network readable; "+
			"put a proxy that terminates TLS in front (or a service mesh with mTLS)", "addr", ln.Addr().String())
	}
	s.log.InfoContext(ctx, "intake: listening", "url", url, "redis", s.conn.String(), "apps", apps.IDs(s.apps),
		"clients", len(s.clients), "rate", s.cfg.Rate, "burst", s.cfg.Burst, "max_batch", s.cfg.MaxBatch)

	if err := httpserve.Run(ctx, s.log, "intake", srv, ln, s.cfg.ShutdownTimeout, ready); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "intake: stopped", "url", url)
	return nil
}
