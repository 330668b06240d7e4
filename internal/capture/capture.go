// Package capture records the MsgKeys of an app's messages as Tencent Cloud
// Chat sends them, so that "recall everything this user sent in the last
// six hours" is one command. It serves Tencent's after-send callbacks
// (C2C.CallbackAfterSendMsg and Group.CallbackAfterSendMsg) and keeps an
// index in Redis by sender and time (Index), which `recallq campaign start
// --sender` turns into a campaign.
//
// Routes:
//
//	POST /callback[/<secret>]   Tencent's callbacks (the URL set in the Chat console)
//	GET  /healthz               the process is up
//	GET  /readyz                Redis answers PING
//	GET  /stats                 Stats as JSON: what was indexed, ignored, refused (by reason)
//	GET  /metrics               the same counts and the Redis write time, for Prometheus
//
// A callback is answered {"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}
// as soon as its message is in Redis (or it was not to be indexed: a failed
// send, an online-only message, another callback). Refused callbacks
// (wrong path, address, SdkAppid or Sign; a body that is not a callback,
// too large, or with an identifier no recall task would take) are answered
// 4xx with ActionStatus FAIL, counted by reason and never indexed; a
// message Redis did not take is answered 503 and counted.
package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/httpserve"
)

// CallbackPath is the path of the callback URL (followed by
// /<Auth.PathSecret> when one is set).
const CallbackPath = "/callback"

// Defaults of Config.
const (
	// DefaultAddr is where the capture listens.
	DefaultAddr = ":8082"
	// DefaultMaxBodyBytes bounds a callback body: a message body is at
	// most 12 KB, and JSON escaping can triple it.
	DefaultMaxBodyBytes = 64 << 10
	// DefaultWriteTimeout bounds how long a callback waits for Redis
	// before it is answered 503: Tencent waits for the answer, and the
	// app's messaging with it.
	DefaultWriteTimeout = 2 * time.Second
	// DefaultShutdownTimeout bounds the graceful shutdown.
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures a Server.
type Config struct {
	// Addr is host:port to listen on. Default DefaultAddr.
	Addr string
	// Auth says which callbacks are Tencent's. Required (see Auth).
	Auth Auth
	// Index is where messages go. Required.
	Index *Index
	// Redis answers /readyz. Optional.
	Redis redis.UniversalClient
	// MaxBodyBytes: default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// WriteTimeout: default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ShutdownTimeout: default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger: default slog.Default(). Refusals are logged at debug level
	// (a flood of them must not flood the log); counts are in Stats.
	Logger *slog.Logger
	// Now is the clock of the Sign check. Default time.Now.
	Now func() time.Time
}

// Stats counts what the capture did since it started.
type Stats struct {
	// IndexedC2C and IndexedGroup: messages written to the index.
	IndexedC2C, IndexedGroup int64
	// FailedSends: callbacks with SendMsgResult != 0, not indexed.
	FailedSends int64
	// OnlineOnly: online-only messages, not indexed (Tencent keeps none).
	OnlineOnly int64
	// Ignored: other callbacks, answered OK and not indexed.
	Ignored int64
	// Refused: callbacks refused, by reason (RefusedPath, ...).
	Refused map[string]int64
	// IndexErrors: messages Redis did not take in time (answered 503).
	IndexErrors int64
	// CallerGone: callbacks whose caller hung up while their message was
	// being written (it may have been written; no answer was sent). Only
	// ServeHTTP can tell; Serve (fasthttp) writes the answer and counts
	// nothing here.
	CallerGone int64
}

// Server serves the callbacks. It is an http.Handler.
type Server struct {
	cfg Config
	log *slog.Logger

	indexedC2C, indexedGroup, failedSends, onlineOnly, ignored, indexErrors, callerGone atomic.Int64
	refused                                                                             map[string]*atomic.Int64
	write                                                                               prometheus.Histogram
	metrics                                                                             http.Handler
}

// ErrConfig is wrapped by every error New returns.
var ErrConfig = errors.New("capture: bad configuration")

// New applies the defaults and validates cfg; an error wraps ErrConfig and
// names the field.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Index == nil {
		return nil, fmt.Errorf("%w: Config.Index is required", ErrConfig)
	}
	if cfg.MaxBodyBytes < 1024 {
		return nil, fmt.Errorf("%w: Config.MaxBodyBytes must be at least 1024; got %d", ErrConfig, cfg.MaxBodyBytes)
	}
	if err := cfg.Auth.validate(); err != nil {
		return nil, fmt.Errorf("%w: Config.Auth: %w", ErrConfig, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, refused: map[string]*atomic.Int64{}, write: newWriteHistogram()}
	for _, r := range []string{RefusedPath, RefusedIP, RefusedApp, RefusedSign, RefusedMethod, RefusedBody, RefusedTooLong} {
		s.refused[r] = new(atomic.Int64)
	}
	s.metrics = s.metricsHandler()
	return s, nil
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	st := Stats{
		IndexedC2C: s.indexedC2C.Load(), IndexedGroup: s.indexedGroup.Load(), FailedSends: s.failedSends.Load(),
		OnlineOnly: s.onlineOnly.Load(), Ignored: s.ignored.Load(), IndexErrors: s.indexErrors.Load(), CallerGone: s.callerGone.Load(),
		Refused: map[string]int64{},
	}
	for r, n := range s.refused {
		st.Refused[r] = n.Load()
	}
	return st
}

// answer is Tencent's callback answer.
type answer struct {
	ActionStatus string
	ErrorCode    int
	ErrorInfo    string
}

// okAnswer is the answer to every accepted callback, encoded once.
var okAnswer = []byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)

// answerBody is the body of the answer with status: okAnswer for 200,
// else ActionStatus FAIL with info.
func answerBody(status int, info string) []byte {
	if status == http.StatusOK {
		return okAnswer
	}
	b, _ := json.Marshal(answer{ActionStatus: "FAIL", ErrorCode: 1, ErrorInfo: info})
	return append(b, '\n')
}

func writeAnswer(w http.ResponseWriter, status int, info string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(answerBody(status, info))
}

// ServeHTTP serves the routes of the package comment.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		writeAnswer(w, http.StatusOK, "")
		return
	case "/readyz":
		s.readyz(w, r)
		return
	case "/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
		return
	case "/metrics":
		s.metrics.ServeHTTP(w, r)
		return
	}
	status, info := s.serveCallback(r.Context(), &netRequest{w: w, r: r})
	writeAnswer(w, status, info)
}

// callbackRequest is one request on the callback path as a server reads
// it: net/http's (netRequest) or fasthttp's (fastRequest).
type callbackRequest interface {
	path() string
	method() string
	remoteAddr() string
	query(name string) string
	// body reads the body, at most limit bytes: more is errTooLong.
	body(limit int64) ([]byte, error)
	// gone tells whether the caller hung up.
	gone() bool
}

// errTooLong is a body over the limit.
var errTooLong = errors.New("body too long")

// serveCallback handles one request of the callback path and returns the
// answer: 200 when it was accepted, the refusal's 4xx (counted by reason),
// or 503 when Redis did not take the message.
func (s *Server) serveCallback(ctx context.Context, rq callbackRequest) (status int, info string) {
	err := s.callback(ctx, rq)
	if err == nil {
		return http.StatusOK, ""
	}
	var ref *errRefused
	if errors.As(err, &ref) {
		s.refused[ref.reason].Add(1)
		status := http.StatusForbidden
		switch ref.reason {
		case RefusedPath:
			status = http.StatusNotFound
		case RefusedMethod:
			status = http.StatusMethodNotAllowed
		case RefusedBody:
			status = http.StatusBadRequest
		case RefusedTooLong:
			status = http.StatusRequestEntityTooLarge
		}
		s.log.DebugContext(ctx, "capture: refused a callback", "reason", ref.reason, "error", ref.msg, "remote", rq.remoteAddr())
		return status, ref.msg
	}
	s.indexErrors.Add(1)
	s.log.ErrorContext(ctx, "capture: a message could not be indexed", "error", err)
	return http.StatusServiceUnavailable, "the message could not be indexed; see the capture's log"
}

// callback handles one callback; a nil error means it is to be answered OK.
func (s *Server) callback(ctx context.Context, rq callbackRequest) error {
	a := &s.cfg.Auth
	if err := a.checkPath(rq.path()); err != nil {
		return err
	}
	if rq.method() != http.MethodPost {
		return refused(RefusedMethod, "callbacks are POSTed")
	}
	if err := a.checkIP(rq.remoteAddr()); err != nil {
		return err
	}
	app, err := a.checkApp(rq.query("SdkAppid"))
	if err != nil {
		return err
	}
	if err := a.checkSign(rq.query("RequestTime"), rq.query("Sign"), s.cfg.Now()); err != nil {
		return err
	}
	body, err := rq.body(s.cfg.MaxBodyBytes)
	if err != nil {
		if errors.Is(err, errTooLong) {
			return refused(RefusedTooLong, "the body is over %d bytes", s.cfg.MaxBodyBytes)
		}
		return refused(RefusedBody, "the body could not be read")
	}
	m, v, err := readCallback(rq.query("CallbackCommand"), body, s.cfg.Now().Unix())
	if err != nil {
		return refused(RefusedBody, "%s", err.Error())
	}
	switch v {
	case failedSend:
		s.failedSends.Add(1)
	case onlineOnly:
		s.onlineOnly.Add(1)
	case ignored:
		s.ignored.Add(1)
	case index:
		wctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		defer cancel()
		start := time.Now()
		if err := s.cfg.Index.Add(wctx, app, m); err != nil {
			if rq.gone() {
				// The caller hung up: no answer can reach it, and the
				// message may still be written. Not Redis's failure.
				s.callerGone.Add(1)
				return nil
			}
			return err
		}
		s.observeWrite(start)
		if m.Kind == Group {
			s.indexedGroup.Add(1)
		} else {
			s.indexedC2C.Add(1)
		}
	}
	return nil
}

// netRequest is a callbackRequest of net/http.
type netRequest struct {
	w http.ResponseWriter
	r *http.Request
	q url.Values // parsed on first use
}

func (n *netRequest) path() string       { return n.r.URL.Path }
func (n *netRequest) method() string     { return n.r.Method }
func (n *netRequest) remoteAddr() string { return n.r.RemoteAddr }
func (n *netRequest) gone() bool         { return n.r.Context().Err() != nil }

func (n *netRequest) query(name string) string {
	if n.q == nil {
		n.q = n.r.URL.Query()
	}
	return n.q.Get(name)
}

func (n *netRequest) body(limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(n.w, n.r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errTooLong
	}
	return b, err
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Redis == nil {
		writeAnswer(w, http.StatusOK, "")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Redis.Ping(ctx).Err(); err != nil {
		writeAnswer(w, http.StatusServiceUnavailable, "Redis does not answer PING")
		return
	}
	writeAnswer(w, http.StatusOK, "")
}

// ListenAndServe serves on Config.Addr until ctx ends (see Serve).
func (s *Server) ListenAndServe(ctx context.Context, ready func(url string)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("capture: listen on %s: %w", s.cfg.Addr, err)
	}
	s.log.InfoContext(ctx, "capture: listening", "url", httpserve.BaseURL(ln.Addr()), "sdkappids", s.cfg.Auth.SDKAppIDs,
		"token", s.cfg.Auth.Token != "", "allow_ips", len(s.cfg.Auth.AllowIPs), "path_secret", s.cfg.Auth.PathSecret != "",
		"retention", s.cfg.Index.Retention().String())
	return s.Serve(ctx, ln, ready)
}
