package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recallq/recallq/internal/redisconn"
)

// DefaultAddr is where a worker serves /metrics, /healthz and /readyz
// unless METRICS_ADDR or --metrics-addr says otherwise.
const DefaultAddr = ":9090"

// DefaultPingTimeout is the default ServerConfig.PingTimeout.
const DefaultPingTimeout = time.Second

// ServerConfig configures a Server.
type ServerConfig struct {
	// Addr is the host:port to listen on (":0" picks a free port).
	// Required: a caller that wants no server does not start one.
	Addr string
	// Metrics is served at /metrics. Required.
	Metrics *Metrics
	// Ping checks that Redis answers, for /readyz. Required.
	Ping func(context.Context) error
	// PingTimeout bounds Ping. Default DefaultPingTimeout.
	PingTimeout time.Duration
	// Logger. Default: discards.
	Logger *slog.Logger
}

// Server serves /metrics, /healthz and /readyz:
//
//   - /healthz answers 200 while the process serves (liveness);
//   - /readyz answers 200 once Started was called, until Stopping is, while
//     Redis answers PING and Unready has no reason; 503 with the reason
//     otherwise (readiness).
type Server struct {
	cfg      ServerConfig
	ln       net.Listener
	srv      *http.Server
	served   chan struct{}
	started  atomic.Bool
	stopping atomic.Bool
	unready  atomic.Pointer[string] // why the worker does not take work, nil when it does
	shutdown sync.Once
	shutErr  error
}

// Listen binds cfg.Addr, logs the address and serves in the background
// until Shutdown. It returns the listen error (address in use, bad address).
func Listen(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.Metrics == nil:
		return nil, errors.New("metrics: ServerConfig.Metrics is not set")
	case cfg.Ping == nil:
		return nil, errors.New("metrics: ServerConfig.Ping is not set: /readyz checks Redis")
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %q: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, ln: ln, served: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", cfg.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.ready)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second, // a scrape reads the queues from Redis
		IdleTimeout:       time.Minute,
	}
	cfg.Logger.Info("metrics server listening", "addr", ln.Addr().String(),
		"paths", "/metrics /healthz /readyz")
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("metrics server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on (the port chosen for ":0").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Started marks the worker as taking tasks: /readyz may answer 200.
func (s *Server) Started() { s.started.Store(true) }

// Stopping marks the start of shutdown: /readyz answers 503 from now on.
func (s *Server) Stopping() { s.stopping.Store(true) }

// Unready makes /readyz answer 503 with reason while the worker does not
// take work (its configuration-error circuit is open); "" makes it ready
// again.
func (s *Server) Unready(reason string) {
	if reason == "" {
		s.unready.Store(nil)
		return
	}
	s.unready.Store(&reason)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.stopping.Load():
		http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
		return
	case s.unready.Load() != nil:
		http.Error(w, "not ready: "+*s.unready.Load(), http.StatusServiceUnavailable)
		return
	case !s.started.Load():
		http.Error(w, "not ready: the worker has not started", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PingTimeout)
	defer cancel()
	if err := s.cfg.Ping(ctx); err != nil {
		http.Error(w, "not ready: Redis does not answer PING: "+redisconn.Redact(err.Error()), http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// Shutdown marks the server as stopping, then stops it, letting requests
// in flight finish until ctx ends (then it closes them). Later calls
// return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Do(func() {
		s.Stopping()
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		<-s.served
		s.cfg.Logger.Info("metrics server stopped")
		if err != nil {
			s.shutErr = fmt.Errorf("metrics: shut down: %w", err)
		}
	})
	return s.shutErr
}
