package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
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
	// Metrics is served at /metrics: one per app the process serves, each
	// with its own Config.App (Gatherer). Required. /readyz waits for
	// every app's worker (Started).
	Metrics []*Metrics
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
//   - /readyz answers 200 once Started was called for every app, until
//     Stopping is, while Redis answers PING and no app has an Unready
//     reason; 503 with the reason, naming the app and the API, otherwise
//     (readiness). Its 200 names the Degraded reasons, if any.
type Server struct {
	cfg      ServerConfig
	ln       net.Listener
	srv      *http.Server
	served   chan struct{}
	apps     []string              // the apps in ServerConfig.Metrics's order
	state    map[string]*readiness // by app
	stopping atomic.Bool
	shutdown sync.Once
	shutErr  error
}

// readiness is one app's worker's.
type readiness struct {
	started atomic.Bool
	mu      sync.Mutex
	// unready and degraded are by API: why the worker does not call it,
	// for a fault of its own or of the app's console; an API is in one
	// at most, in none when the worker calls it.
	unready, degraded map[string]string
}

// Listen binds cfg.Addr, logs the address and serves in the background
// until Shutdown. It returns the listen error (address in use, bad address).
func Listen(cfg ServerConfig) (*Server, error) {
	switch {
	case len(cfg.Metrics) == 0 || slices.Contains(cfg.Metrics, nil):
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
	s := &Server{cfg: cfg, ln: ln, served: make(chan struct{}), state: map[string]*readiness{}}
	for _, m := range cfg.Metrics {
		if s.state[m.App()] != nil {
			ln.Close()
			return nil, fmt.Errorf("metrics: two of ServerConfig.Metrics have the app label %q: give each app its own", m.App())
		}
		s.apps = append(s.apps, m.App())
		s.state[m.App()] = &readiness{unready: map[string]string{}, degraded: map[string]string{}}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(cfg.Metrics...))
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

// Started marks the worker of app (a Metrics' App) as taking tasks:
// /readyz may answer 200 once every app's has started.
func (s *Server) Started(app string) {
	if r := s.state[app]; r != nil {
		r.started.Store(true)
	}
}

// Stopping marks the start of shutdown: /readyz answers 503 from now on.
func (s *Server) Stopping() { s.stopping.Store(true) }

// Unready makes /readyz answer 503 with reason, naming api, while app's
// worker does not call api for a fault of its own (its configuration-error
// circuit of that API is open on this pod's key, admin, endpoint, egress
// IP); "" withdraws api's reason, Unready's or Degraded's. /readyz answers
// 200 again once no API of the app has an Unready one.
func (s *Server) Unready(app, api, reason string) { s.note(app, api, reason, true) }

// Degraded names reason in /readyz's 200, naming api, while app's worker
// does not call api for a fault every worker of the app shares and none
// cures (its circuit of that API is open on a setting of the app's
// console): a worker that cannot fix it is not unready for it. It replaces
// an Unready reason of api; "" withdraws either.
func (s *Server) Degraded(app, api, reason string) { s.note(app, api, reason, false) }

// note sets app's reason of api: Unready's (unready) or Degraded's.
func (s *Server) note(app, api, reason string, unready bool) {
	r := s.state[app]
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.unready, api)
	delete(r.degraded, api)
	switch {
	case reason == "":
	case unready:
		r.unready[api] = reason
	default:
		r.degraded[api] = reason
	}
}

// why returns the Unready reasons (or, with degraded, the Degraded ones)
// of the worker, each after the API's name, in the APIs' order; "" when
// there is none.
func (r *readiness) why(degraded bool) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	reasons := r.unready
	if degraded {
		reasons = r.degraded
	}
	var whys []string
	for _, api := range slices.Sorted(maps.Keys(reasons)) {
		whys = append(whys, api+": "+reasons[api])
	}
	return strings.Join(whys, "; ")
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
		return
	}
	var degraded []string
	for _, app := range s.apps {
		st := s.state[app]
		who := "the worker"
		if app != "" {
			who = "app " + app + "'s worker"
		}
		if why := st.why(false); why != "" {
			http.Error(w, "not ready: "+who+": "+why, http.StatusServiceUnavailable)
			return
		}
		if !st.started.Load() {
			http.Error(w, "not ready: "+who+" has not started", http.StatusServiceUnavailable)
			return
		}
		if why := st.why(true); why != "" {
			degraded = append(degraded, who+": "+why)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PingTimeout)
	defer cancel()
	if err := s.cfg.Ping(ctx); err != nil {
		http.Error(w, "not ready: Redis does not answer PING: "+redisconn.Redact(err.Error()), http.StatusServiceUnavailable)
		return
	}
	if len(degraded) > 0 {
		io.WriteString(w, "ready: "+strings.Join(degraded, "; ")+"\n")
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
