// Package intake is recallq's HTTP front door for services not written in
// Go: an authenticated JSON API that queues recalls (one-to-one, one or a
// batch per request; group messages, one group's MsgSeqs per request)
// through the enqueue library and reports a queued task's state.
// Its contract is openapi.yaml, embedded and served at /openapi.yaml; a test
// holds the handler to it.
//
// Routes:
//
//	POST /v1/recalls        queue one recall or a batch (bearer token)
//	POST /v1/group-recalls  queue group messages by MsgSeq, one task each (bearer token)
//	GET  /v1/recalls/{id}   a task's state, one-to-one or group (bearer token)
//	GET  /healthz           the process is up
//	GET  /readyz            Redis answers PING
//	GET  /openapi.yaml      the API's description
//	GET  /metrics           failed and throttled logins, for Prometheus
//
// An intake serves one app or several (Config.Apps); a POST names its app
// with ?sdkappid=, which may be left out when the intake serves one app.
// A token may be limited to some of the apps (Token.Apps).
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/apps"
	"github.com/recallq/recallq/internal/loginguard"
	"github.com/recallq/recallq/internal/redisconn"
)

// Defaults of Config.
const (
	// DefaultAddr is where the intake listens: loopback only, so that
	// serving other hosts (in plain HTTP, unless a TLS proxy is in front)
	// is a deliberate choice.
	DefaultAddr = "127.0.0.1:8081"
	// DefaultRate is the requests per second each token may make.
	DefaultRate = 50.0
	// DefaultBurst is how many requests a token may make at once before
	// DefaultRate applies.
	DefaultBurst = 100
	// DefaultMaxBatch is the most recalls one request may carry: the
	// recalls of a batch, or the MsgSeqs of a group recall.
	DefaultMaxBatch = 1000
	// DefaultMaxBodyBytes bounds a request body: 1 MiB holds a full batch of
	// typical recalls.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultShutdownTimeout bounds the graceful shutdown: requests still
	// running after it are cut off.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultRedisTimeout bounds each Redis round of a request (a batch's
	// enqueues, a status lookup, the readiness PING).
	DefaultRedisTimeout = 10 * time.Second
)

// Config configures a Server.
type Config struct {
	// Addr is host:port to listen on. Default DefaultAddr.
	Addr string
	// RedisURL is the Redis that holds the queues, read with the
	// environment's settings (redisconn.ParseEnv: REDIS_CA_FILE, a client
	// certificate, the sentinels' password). Default redisconn.DefaultURL.
	RedisURL string
	// SDKAppID is the Chat app whose messages are recalled, for an intake
	// that serves one app. Set it or Apps.
	SDKAppID uint64
	// Apps are the Chat apps whose messages are recalled (as
	// apps.LoadIDs reads them: only SDKAppID and Name are used). Set it
	// or SDKAppID. With more than one, every POST names its app.
	Apps []apps.App
	// Tokens are the bearer tokens accepted, each with the name recorded as
	// the task's RequestedBy. At least one is required.
	Tokens []Token
	// Rate is the requests per second each token may make. Default
	// DefaultRate.
	Rate float64
	// Burst is how many requests a token may make at once. Default
	// DefaultBurst.
	Burst int
	// MaxBatch is the most recalls one request may carry (one-to-one
	// recalls of a batch, or MsgSeqs of a group recall). Default
	// DefaultMaxBatch.
	MaxBatch int
	// MaxBodyBytes bounds a request body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// ShutdownTimeout bounds the graceful shutdown. Default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// RedisTimeout bounds the Redis work of one request. Default
	// DefaultRedisTimeout.
	RedisTimeout time.Duration
	// Logger receives one line per request and the server's lifecycle.
	// Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of the per-token rate limits. Default time.Now.
	Now func() time.Time
}

// Server is the intake's HTTP handler with the Redis connections it uses.
// Close it when done.
type Server struct {
	cfg     Config
	log     *slog.Logger
	conn    *redisconn.Conn
	queue   *enqueue.Client
	rdb     redis.UniversalClient
	inspect *asynq.Inspector
	clients []*client
	apps    []apps.App // the apps served, at least one
	guard   *loginguard.Guard
	metrics *prometheus.Registry
	mux     *http.ServeMux
}

// client is one token's identity and its flood guard.
type client struct {
	name string
	hash [32]byte // sha256 of the token; the token itself is not kept
	lim  *rate.Limiter
	// apps are the SDKAppIDs the token may use; allApps says they are
	// all the intake serves (the token lists none).
	apps    []uint64
	allApps bool
}

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("intake: bad configuration")

// New applies Config's defaults, validates it and connects to Redis lazily.
// It returns an error wrapping ErrConfig that names the field to fix.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.RedisTimeout <= 0 {
		cfg.RedisTimeout = DefaultRedisTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	served, err := servedApps(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case len(cfg.Tokens) == 0:
		return nil, fmt.Errorf("%w: Config.Tokens is empty: give at least one bearer token", ErrConfig)
	case cfg.Rate < 0:
		return nil, fmt.Errorf("%w: Config.Rate must be above 0 requests per second; got %v", ErrConfig, cfg.Rate)
	case cfg.Burst < 1:
		return nil, fmt.Errorf("%w: Config.Burst must be at least 1; got %d", ErrConfig, cfg.Burst)
	case cfg.MaxBatch < 1:
		return nil, fmt.Errorf("%w: Config.MaxBatch must be at least 1; got %d", ErrConfig, cfg.MaxBatch)
	case cfg.MaxBodyBytes < 1024:
		return nil, fmt.Errorf("%w: Config.MaxBodyBytes must be at least 1024; got %d", ErrConfig, cfg.MaxBodyBytes)
	}
	clients, err := newClients(cfg.Tokens, apps.IDs(served), cfg.Rate, cfg.Burst)
	if err != nil {
		return nil, fmt.Errorf("%w: Config.Tokens: %w", ErrConfig, err)
	}
	conn, err := redisconn.ParseEnv(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("%w: Config.RedisURL: %w", ErrConfig, err)
	}
	// The queues use conn, as /readyz and the lookups do, so that the
	// environment's settings (REDIS_CA_FILE, a client certificate, the
	// sentinels' password) reach them too. Every task the intake queues
	// names its app: the client's app is never used.
	queue, err := enqueue.New(enqueue.Config{Redis: conn.AsynqOpt(), SDKAppID: served[0].SDKAppID})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	rdb := conn.Client()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		conn:    conn,
		queue:   queue,
		rdb:     rdb,
		inspect: asynq.NewInspectorFromRedisClient(rdb),
		clients: clients,
		apps:    served,
		guard:   loginguard.New(loginguard.Config{Door: "intake", Logger: cfg.Logger, Now: cfg.Now}),
		metrics: prometheus.NewRegistry(),
	}
	s.metrics.MustRegister(s.guard.Collector())
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.method+" "+rt.pattern, rt.handler)
	}
	return s, nil
}

// route is one operation the API serves. openapi.yaml describes exactly
// these; TestOpenAPIRoutesMatchHandler holds the two together.
type route struct {
	method, pattern string
	handler         http.Handler
}

func (s *Server) routes() []route {
	return []route{
		{http.MethodPost, "/v1/recalls", s.authenticated(http.HandlerFunc(s.postRecalls))},
		{http.MethodPost, "/v1/group-recalls", s.authenticated(http.HandlerFunc(s.postGroupRecalls))},
		{http.MethodGet, "/v1/recalls/{id}", s.authenticated(http.HandlerFunc(s.getRecall))},
		{http.MethodGet, "/healthz", http.HandlerFunc(s.healthz)},
		{http.MethodGet, "/readyz", http.HandlerFunc(s.readyz)},
		{http.MethodGet, "/openapi.yaml", http.HandlerFunc(serveSpec)},
		{http.MethodGet, "/metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{})},
	}
}

// ServeHTTP serves the API: every request's body is bounded and every
// request is logged (without its Authorization header).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Bound the body here, on the server's own ResponseWriter, so that an
	// oversized body also closes the connection.
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	r, who := withClientSlot(r)
	s.mux.ServeHTTP(rec, r)
	level := slog.LevelInfo
	if r.Pattern == "GET /healthz" || r.Pattern == "GET /readyz" || r.Pattern == "GET /metrics" {
		level = slog.LevelDebug
	}
	s.log.Log(r.Context(), level, "intake: request",
		"method", r.Method, "path", r.URL.Path, "status", rec.status,
		"client", who.name, "remote", r.RemoteAddr, "duration", time.Since(start))
}

// Close closes the connections to Redis.
func (s *Server) Close() error {
	return errors.Join(s.queue.Close(), s.rdb.Close())
}

// recorder remembers the status a handler wrote, for the request log.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// healthz says the process is up; it does not touch Redis.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// readyz says whether Redis answers, so a load balancer sends requests only
// to an intake that can queue them.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), min(s.cfg.RedisTimeout, 2*time.Second))
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.log.WarnContext(ctx, "intake: not ready: Redis does not answer PING",
			"redis", s.conn.String(), "err", s.logRedisErr(err))
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// Health is the body of /healthz and /readyz.
type Health struct {
	// Status is "ok" or "unavailable".
	Status string `json:"status"`
}
