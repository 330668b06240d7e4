// Package loginguard throttles failed logins per client address, for the
// doors that take a secret over HTTP (the intake's bearer tokens, the
// dashboard's password). Each address has a bucket of Burst wrong guesses that
// refills one every Refill; once it is empty, the address gets 429 with
// Retry-After, before its credentials are even looked at, until a failure
// has refilled. Success costs nothing. Each failure is logged (without
// what was presented) and counted, by door and result, in a Prometheus
// counter.
//
// The address is the connection's peer (http.Request.RemoteAddr); an IPv6
// address counts by its /64, which one host usually holds whole. Behind a
// proxy every client shares the proxy's address: X-Forwarded-For is not
// read, since any client can write it.
package loginguard

import (
	"context"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	// DefaultBurst is how many failures an address may make in a row.
	DefaultBurst = 10
	// DefaultRefill is how often an address gets one more failure back:
	// 10 a minute, far below what guessing a secret needs.
	DefaultRefill = 6 * time.Second
	// DefaultMaxAddrs bounds the addresses remembered. Past it, addresses
	// whose bucket is full again are forgotten, then, if that is not
	// enough, all of them.
	DefaultMaxAddrs = 10000
)

// FailuresTotal is the counter of failed and throttled logins, by door
// (Config.Door) and result ("failed": wrong credentials;
// "throttled": refused with 429 before they were checked).
const FailuresTotal = "recallq_login_failures_total"

// Config configures a Guard.
type Config struct {
	// Door names what the guard protects, in logs and the counter's label:
	// "intake" or "dashboard". Required.
	Door string
	// Burst: default DefaultBurst.
	Burst int
	// Refill: default DefaultRefill.
	Refill time.Duration
	// MaxAddrs: default DefaultMaxAddrs.
	MaxAddrs int
	// Logger receives one warning per failure. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Guard throttles one door's failed logins. Its methods are safe for
// concurrent use.
type Guard struct {
	cfg     Config
	counter *prometheus.CounterVec

	mu    sync.Mutex
	addrs map[netip.Prefix]*rate.Limiter
}

// New returns a Guard with cfg's defaults applied.
func New(cfg Config) *Guard {
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Refill <= 0 {
		cfg.Refill = DefaultRefill
	}
	if cfg.MaxAddrs <= 0 {
		cfg.MaxAddrs = DefaultMaxAddrs
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{
		cfg: cfg,
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        FailuresTotal,
			Help:        "Logins refused: failed (wrong credentials) or throttled (429 after too many failures from one address).",
			ConstLabels: prometheus.Labels{"door": cfg.Door},
		}, []string{"result"}),
		addrs: map[netip.Prefix]*rate.Limiter{},
	}
}

// Collector is the guard's counter, for a Prometheus registry.
func (g *Guard) Collector() prometheus.Collector { return g.counter }

// Allow reports whether r's address may try its credentials now. When it
// may not, it returns false and how long until it may (whole seconds, at
// least one, for a Retry-After header), and counts and logs the refusal;
// the caller answers 429.
func (g *Guard) Allow(r *http.Request) (retryAfter time.Duration, ok bool) {
	key, ok := clientKey(r)
	if !ok {
		return 0, true
	}
	now := g.cfg.Now()
	g.mu.Lock()
	var wait time.Duration
	if lim := g.addrs[key]; lim != nil {
		if tokens := lim.TokensAt(now); tokens < 1 {
			wait = time.Duration((1 - tokens) * float64(g.cfg.Refill))
		}
	}
	g.mu.Unlock()
	if wait == 0 {
		return 0, true
	}
	wait = time.Duration(max(1, math.Ceil(wait.Seconds()))) * time.Second
	g.counter.WithLabelValues("throttled").Inc()
	g.cfg.Logger.DebugContext(r.Context(), g.cfg.Door+": login throttled", "remote", show(key), "retry_after", wait)
	return wait, false
}

// Refuse answers 429 with Retry-After in plain text: for a door whose other
// answers are plain text too.
func Refuse(w http.ResponseWriter, retryAfter time.Duration) {
	secs := strconv.Itoa(int(retryAfter / time.Second))
	w.Header().Set("Retry-After", secs)
	http.Error(w, "429 Too Many Requests: too many failed logins from your address; retry after "+secs+
		" s with the right credentials", http.StatusTooManyRequests)
}

// Failed records a failed login from r's address: why says what was wrong
// ("wrong user or password", "unknown bearer token"), never what was
// presented. Call it for a wrong guess only: a browser first asks without
// credentials, and is not guessing.
func (g *Guard) Failed(r *http.Request, why string) {
	g.counter.WithLabelValues("failed").Inc()
	key, ok := clientKey(r)
	if !ok {
		g.cfg.Logger.WarnContext(r.Context(), g.cfg.Door+": login failed", "reason", why, "remote", r.RemoteAddr)
		return
	}
	now := g.cfg.Now()
	g.mu.Lock()
	lim := g.addrs[key]
	if lim == nil {
		g.makeRoom(now)
		lim = rate.NewLimiter(rate.Every(g.cfg.Refill), g.cfg.Burst)
		g.addrs[key] = lim
	}
	lim.AllowN(now, 1)
	throttled := lim.TokensAt(now) < 1
	g.mu.Unlock()
	attrs := []any{"reason", why, "remote", show(key)}
	if throttled {
		attrs = append(attrs, "throttled", true, "burst", g.cfg.Burst, "refill", g.cfg.Refill)
	}
	g.cfg.Logger.WarnContext(context.WithoutCancel(r.Context()), g.cfg.Door+": login failed", attrs...)
}

// makeRoom forgets addresses when there are too many: those whose bucket
// has refilled first, all of them if that is not enough. g.mu is held.
func (g *Guard) makeRoom(now time.Time) {
	if len(g.addrs) < g.cfg.MaxAddrs {
		return
	}
	for k, lim := range g.addrs {
		if lim.TokensAt(now) >= float64(g.cfg.Burst) {
			delete(g.addrs, k)
		}
	}
	if len(g.addrs) >= g.cfg.MaxAddrs {
		clear(g.addrs)
	}
}

// clientKey is r's peer address: the address itself for IPv4, its /64 for
// IPv6.
func clientKey(r *http.Request) (netip.Prefix, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// show is how a key appears in the log: the address, or the IPv6 /64.
func show(p netip.Prefix) string {
	if p.Addr().Is4() {
		return p.Addr().String()
	}
	return p.String()
}
