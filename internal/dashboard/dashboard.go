// Package dashboard serves asynqmon, asynq's web console, over recallq's
// queues, behind HTTP Basic authentication.
//
// asynqmon itself has no authentication and can delete, run and archive
// tasks, so a Dashboard refuses to be built without credentials unless it
// is told explicitly to run open, and then only on a loopback address.
// GET /healthz answers without credentials, for probes; GET /metrics counts
// failed logins, which are throttled per client address (loginguard). The Redis password
// never reaches a page: asynqmon's Redis page shows the server's address
// (host:port) and its INFO, neither of which holds it.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/recallq/recallq/internal/httpserve"
	"github.com/recallq/recallq/internal/loginguard"
)

// Defaults and fixed paths.
const (
	// DefaultAddr is where the dashboard listens unless told otherwise:
	// loopback only, so exposing it is a deliberate choice.
	DefaultAddr = "127.0.0.1:8080"
	// HealthPath answers 200 "ok" without credentials, for liveness and
	// readiness probes. It does not touch Redis: a Redis outage is shown on
	// the dashboard, it is not a reason to restart it.
	HealthPath = "/healthz"
	// MetricsPath serves, without credentials, the count of failed and
	// throttled logins (loginguard.FailuresTotal) for Prometheus.
	MetricsPath = "/metrics"
	// ShutdownTimeout bounds the graceful shutdown: requests still running
	// after it are cut off.
	ShutdownTimeout = 5 * time.Second
	// readHeaderTimeout bounds reading a request's headers.
	readHeaderTimeout = 10 * time.Second
)

// Errors New returns for a configuration it refuses.
var (
	// ErrNoCredentials: neither Username and Password nor Open are set.
	ErrNoCredentials = errors.New("dashboard: no credentials: set Config.Username and Config.Password, or Config.Open to serve without authentication on a loopback address")
	// ErrOpenNotLoopback: Open is set but Addr is not a loopback address,
	// so anyone who can reach the port could delete tasks.
	ErrOpenNotLoopback = errors.New("dashboard: Config.Open serves without authentication, which is allowed only on a loopback address")
	// ErrOpenWithCredentials: Open is set together with credentials, so it
	// is not clear which was meant.
	ErrOpenWithCredentials = errors.New("dashboard: Config.Open and credentials are both set: keep one")
	// ErrBadAddr: Addr is not host:port.
	ErrBadAddr = errors.New("dashboard: Config.Addr is not host:port")
)

// Config configures a Dashboard.
type Config struct {
	// Addr is host:port to listen on. Default DefaultAddr. Port 0 picks a
	// free port.
	Addr string
	// Redis is the Redis that holds the queues. Required.
	Redis asynq.RedisConnOpt
	// RedisName names Redis in the logs; give the URL without its password
	// (redisconn.Conn.String). Optional.
	RedisName string
	// Username and Password are the Basic auth credentials every request
	// but HealthPath must carry. Both are required unless Open is set.
	Username string
	Password string
	// Open serves without authentication. Allowed only when Addr is a
	// loopback address (127.0.0.0/8, ::1 or localhost). Default false.
	Open bool
	// ReadOnly lets viewers look but not delete, run, archive, cancel or
	// pause: asynqmon hides those buttons and refuses every API call but
	// GET. Default false.
	ReadOnly bool
	// AppNames are the configured apps' names by SDKAppID (the apps
	// file's), shown in the campaigns' app column beside the SDKAppID.
	// Default: none; every app shows as its SDKAppID.
	AppNames map[uint64]string
	// Logger receives the dashboard's logs. Default: discard.
	Logger *slog.Logger
}

// Dashboard is asynqmon behind recallq's authentication. It is an
// http.Handler; ListenAndServe serves it.
type Dashboard struct {
	cfg     Config
	log     *slog.Logger
	mon     *asynqmon.HTTPHandler
	camps   *campaigns
	handler http.Handler
}

// New validates cfg and builds the dashboard; Redis is connected lazily.
// It returns ErrNoCredentials, ErrOpenNotLoopback, ErrOpenWithCredentials,
// ErrBadAddr or an error naming the bad field. The caller calls Close.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Redis == nil {
		return nil, errors.New("dashboard: Config.Redis is not set: give the Redis that holds the queues")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("%w: %q; give one such as %s", ErrBadAddr, cfg.Addr, DefaultAddr)
	}
	hasCreds := cfg.Username != "" || cfg.Password != ""
	switch {
	case cfg.Open && hasCreds:
		return nil, ErrOpenWithCredentials
	case cfg.Open && !IsLoopback(cfg.Addr):
		return nil, fmt.Errorf("%w; %q is not", ErrOpenNotLoopback, cfg.Addr)
	case !cfg.Open && (cfg.Username == "" || cfg.Password == ""):
		return nil, ErrNoCredentials
	}

	d := &Dashboard{cfg: cfg, log: cfg.Logger}
	d.mon = asynqmon.New(asynqmon.Options{
		RootPath:     "/",
		RedisConnOpt: cfg.Redis,
		ReadOnly:     cfg.ReadOnly,
	})

	// The console: refuse cross-origin writes (a page elsewhere must not
	// drive a logged-in browser to delete tasks), then authenticate.
	camps, err := newCampaigns(cfg)
	if err != nil {
		d.mon.Close()
		return nil, err
	}
	d.camps = camps
	var app http.Handler = http.NewCrossOriginProtection().Handler(withCampaigns(camps, selfContained(d.mon)))
	guard := loginguard.New(loginguard.Config{Door: "dashboard", Logger: cfg.Logger})
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(guard.Collector())
	if cfg.Open {
		app = loopbackHostOnly(app)
	} else {
		app = basicAuth(cfg.Username, cfg.Password, guard, app)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/", app)
	d.handler = securityHeaders(mux)
	return d, nil
}

// ServeHTTP serves HealthPath openly and everything else as the
// authenticated console.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.handler.ServeHTTP(w, r)
}

// Close closes the connections to Redis.
func (d *Dashboard) Close() error {
	err := d.mon.Close()
	if cerr := d.camps.close(); err == nil {
		err = cerr
	}
	return err
}

// ListenAndServe serves the dashboard on Config.Addr until ctx ends, then
// shuts down gracefully, letting running requests finish for up to
// ShutdownTimeout. Once it listens it calls ready, if not nil, with the
// base URL ("http://127.0.0.1:PORT"). It returns nil after a clean
// shutdown, or the error that stopped it from listening or serving.
func (d *Dashboard) ListenAndServe(ctx context.Context, ready func(url string)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", d.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dashboard: listen on %s: %w", d.cfg.Addr, err)
	}
	// A name such as localhost is checked again where it resolved to.
	if tcp, ok := ln.Addr().(*net.TCPAddr); d.cfg.Open && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return fmt.Errorf("%w; %s listens on %s", ErrOpenNotLoopback, d.cfg.Addr, ln.Addr())
	}
	srv := &http.Server{
		Handler:           d,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
	url := httpserve.BaseURL(ln.Addr())
	d.warnExposure(ctx, ln.Addr())
	auth := "basic"
	if d.cfg.Open {
		auth = "none"
		d.log.WarnContext(ctx, "dashboard: serving without authentication (--open), loopback only", "addr", ln.Addr().String())
	}
	d.log.InfoContext(ctx, "dashboard: listening", "addr", ln.Addr().String(), "url", url,
		"redis", d.cfg.RedisName, "auth", auth, "user", d.cfg.Username, "read_only", d.cfg.ReadOnly)

	if err := httpserve.Run(ctx, d.log, "dashboard", srv, ln, ShutdownTimeout, ready); err != nil {
		return err
	}
	d.log.InfoContext(ctx, "dashboard: stopped", "addr", ln.Addr().String())
	return nil
}

// IsLoopback reports whether addr (host:port) names a loopback address:
// an IP in 127.0.0.0/8 or ::1, or the name localhost. An empty host means
// every interface, which is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// securityHeaders keeps the console out of other sites' frames, its URLs
// out of Referer headers, and its pages from loading anything from another
// host.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
