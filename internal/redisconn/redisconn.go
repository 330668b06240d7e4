// Package redisconn turns a REDIS_URL into the connections recallq needs:
// asynq's connection option for the queues and a go-redis client for the
// limiter and campaign state. Every error and every printed form of a URL
// leaves the password out.
//
// # URL forms
//
//	redis://[[user]:password@]host:port[/db]     one server
//	rediss://[[user]:password@]host:port[/db]    one server over TLS
//	redis-sentinel://[[user]:password@]host1:port1,host2:port2[/db]?master=NAME
//	rediss-sentinel://...                        the same over TLS
//	redis-cluster://[[user]:password@]host1:port1,host2:port2
//	rediss-cluster://...                         the same over TLS
//
// A redis:// or rediss:// URL also takes go-redis's query options
// (dial_timeout, pool_size, ...); asynq's option carries the timeouts and
// pool_size of them. A sentinel URL names the sentinels (port
// 26379 when left out) and the monitored primary (master=); the user and
// password are those of the primary and its replicas, like in a redis://
// URL. Sentinels that require a password of their own get it from
// Options.SentinelPassword (REDIS_SENTINEL_PASSWORD). This differs from
// asynq's ParseRedisURI, which sends the URL's password to the sentinels
// only and so cannot reach a primary that has one. A cluster URL names some
// of the cluster's nodes (port 6379 when left out); the rest are found from
// them. A cluster has database 0 only.
//
// # TLS with a private CA
//
// A TLS URL verifies the server's certificate against the system's roots.
// Options.CAFile (REDIS_CA_FILE) trusts the CAs of a PEM bundle instead;
// Options.CertFile and KeyFile (REDIS_CERT_FILE, REDIS_KEY_FILE) present a
// client certificate, which redis-server asks for by default
// (tls-auth-clients yes). Options.InsecureSkipVerify
// (REDIS_TLS_INSECURE_SKIP_VERIFY=true) accepts any certificate: for a
// trial only, never in production, where anyone on the path could then read
// the password and the queues.
//
// ParseEnv reads these settings from the environment; Parse uses none of
// them; ParseWith takes them from the caller, who may read them with
// OptionsFrom.
//
// # Riding out a failover
//
// Clients retry as go-redis does by default (about 2 s against a server
// that is gone). Conn.WithRetries(FailoverRetries) makes a command last
// through a Sentinel failover or a restart instead; a worker needs that,
// because of how asynq acknowledges a finished task (see FailoverRetries).
package redisconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DefaultURL is the Redis used when REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// Default ports of the hosts of a sentinel or cluster URL that name none.
const (
	DefaultSentinelPort = "26379"
	DefaultClusterPort  = "6379"
)

// Environment variables read by OptionsFromEnv, OptionsFrom and ParseEnv.
const (
	EnvCAFile             = "REDIS_CA_FILE"
	EnvCertFile           = "REDIS_CERT_FILE"
	EnvKeyFile            = "REDIS_KEY_FILE"
	EnvInsecureSkipVerify = "REDIS_TLS_INSECURE_SKIP_VERIFY"
	EnvSentinelUsername   = "REDIS_SENTINEL_USERNAME"
	EnvSentinelPassword   = "REDIS_SENTINEL_PASSWORD"
)

// Errors.
var (
	// ErrBadURL is wrapped by every error about the URL itself.
	ErrBadURL = errors.New("bad Redis URL")
	// ErrBadOptions is wrapped by every error about Options: an unreadable
	// CA or certificate file, or a setting that does not fit the URL.
	ErrBadOptions = errors.New("bad Redis connection option")
)

// Kind is the deployment a URL names.
type Kind int

const (
	// Standalone is one server: redis:// or rediss://.
	Standalone Kind = iota
	// Sentinel is a primary found through sentinels: redis-sentinel://.
	Sentinel
	// Cluster is a Redis Cluster: redis-cluster://.
	Cluster
)

func (k Kind) String() string {
	switch k {
	case Standalone:
		return "standalone"
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Options are the connection settings that do not fit in a URL. The zero
// value adds nothing to the URL.
type Options struct {
	// CAFile is a PEM bundle of the certificate authorities a TLS URL
	// trusts, in place of the system's roots. Env REDIS_CA_FILE. Default:
	// the system's roots. Only with a TLS URL.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for a
	// server that requires one (tls-auth-clients yes, redis-server's
	// default). Both or neither. Env REDIS_CERT_FILE and REDIS_KEY_FILE.
	// Only with a TLS URL.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate. For a trial only,
	// never in production: anyone on the path could read the password and
	// the queues. Env REDIS_TLS_INSECURE_SKIP_VERIFY=true. Only with a TLS
	// URL.
	InsecureSkipVerify bool
	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// of a sentinel URL, when they have a password (requirepass) of their
	// own; the URL's user and password are the primary's. Env
	// REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD. Only with a
	// sentinel URL.
	SentinelUsername, SentinelPassword string
}

// OptionsFromEnv reads Options from the environment variables named in
// their fields: OptionsFrom(os.Getenv).
func OptionsFromEnv() (Options, error) { return OptionsFrom(os.Getenv) }

// OptionsFrom reads Options from the variables named in their fields, as
// getenv gives them: a program that takes its environment as a function
// (the lab's worker processes) reads the settings the product's commands
// read, the same way. It returns an error wrapping ErrBadOptions when
// REDIS_TLS_INSECURE_SKIP_VERIFY is neither empty, "true" nor "false".
func OptionsFrom(getenv func(string) string) (Options, error) {
	o := Options{
		CAFile:           getenv(EnvCAFile),
		CertFile:         getenv(EnvCertFile),
		KeyFile:          getenv(EnvKeyFile),
		SentinelUsername: getenv(EnvSentinelUsername),
		SentinelPassword: getenv(EnvSentinelPassword),
	}
	switch v := getenv(EnvInsecureSkipVerify); v {
	case "", "false":
	case "true":
		o.InsecureSkipVerify = true
	default:
		return Options{}, fmt.Errorf("%w: %s=%q: use true (trial only, never in production) or leave it unset",
			ErrBadOptions, EnvInsecureSkipVerify, v)
	}
	return o, nil
}

// Conn is a parsed Redis URL with its Options applied.
type Conn struct {
	kind     Kind
	opt      *redis.Options         // Standalone
	failover *redis.FailoverOptions // Sentinel
	cluster  *redis.ClusterOptions  // Cluster
	retries  *Retries               // nil: go-redis's defaults, or the URL's
	redacted string
}

// Retries is how a client retries a command that failed for a reason worth
// retrying (connection refused or reset, LOADING, READONLY, MASTERDOWN,
// CLUSTERDOWN, TRYAGAIN): go-redis's MaxRetries (MaxRedirects for a
// cluster), MinRetryBackoff and MaxRetryBackoff. A refused connection costs
// each try go-redis's five dial attempts 100 ms apart as well.
type Retries struct {
	// Max is how many times a command is tried again.
	Max int
	// MinBackoff and MaxBackoff bound the wait before each new try, which
	// grows exponentially, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// ReadTimeout, when not zero, is how long a read waits for a Redis
	// that has the command and does not answer (a stall: a fork for a
	// snapshot, a slow script, a paused process) before the command is
	// tried again on another connection; a read_timeout in the URL wins.
	// A command tried again after a timeout can run twice: the first stays
	// queued in the stalled Redis and runs when it wakes (a Lua INCR sent
	// during a 10 s stall ran twice at go-redis's 5 s). When that command
	// is asynq's dequeue, the first run moves a task to active for no
	// worker, and it waits for asynq's lease recovery, one to two minutes,
	// and spends one of its retries there (on its last attempt: archived,
	// though not its fault). A caller's deadline still bounds its own call
	// (the clients respect it, see Client); only the calls without one,
	// asynq's background loops among them, wait this long.
	ReadTimeout time.Duration
}

// FailoverRetries ride out a failover or a restart: a command keeps trying
// for about 15 s before it returns its error (measured against a server
// that refuses connections: 15-16 s, against 1.7 s with go-redis's defaults
// of 3 retries 10 ms to 1 s apart). A Sentinel failover fits in that when
// the sentinels' down-after-milliseconds is 10 s or less.
//
// asynq's worker needs them. It moves a finished task out of "active"
// with one Redis call, bounded by the task's lease; when that call fails,
// asynq v0.26 queues it for a retry that cannot succeed (the retry reuses
// the call's context, already cancelled), so the task stays active until
// its lease expires and asynq's recoverer runs it again, one to two
// minutes later. With FailoverRetries the call itself lasts through a
// failover and lands on the new primary.
//
// They are not the default: a caller that must answer fast while Redis is
// down (an HTTP intake answering 503) keeps go-redis's.
//
// Their ReadTimeout, 15 s, lets a stall of that long pass without a
// command run twice, and is well inside asynq's 30 s lease, which its
// heartbeat must extend every 5 s. Against a Redis that holds connections
// and never answers, a command without a deadline (asynq's background
// loops, a campaign feeder's pass) then tries for up to ten times that; a
// call with a deadline ends with it.
var FailoverRetries = Retries{Max: 9, MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second, ReadTimeout: 15 * time.Second}

// apply sets a client's retry options to r's: its retries (MaxRetries, or
// a cluster's MaxRedirects), their backoff, and its read timeout unless
// the URL set one. A nil r leaves go-redis's defaults, or the URL's.
func (r *Retries) apply(retries *int, minBackoff, maxBackoff, readTimeout *time.Duration) {
	if r == nil {
		return
	}
	*retries, *minBackoff, *maxBackoff = r.Max, r.MinBackoff, r.MaxBackoff
	if *readTimeout == 0 {
		*readTimeout = r.ReadTimeout
	}
}

// WithRetries returns a copy of c whose clients, go-redis's (Client) and
// asynq's (AsynqOpt), retry as r says.
func (c *Conn) WithRetries(r Retries) *Conn {
	d := *c
	d.retries = &r
	return &d
}

// Parse parses a Redis URL (see the package comment for the forms) without
// Options. The error wraps ErrBadURL and never contains the password.
func Parse(rawURL string) (*Conn, error) { return ParseWith(rawURL, Options{}) }

// ParseEnv parses a Redis URL with the Options of the environment
// (OptionsFromEnv): what a program configured by REDIS_URL calls.
func ParseEnv(rawURL string) (*Conn, error) {
	o, err := OptionsFromEnv()
	if err != nil {
		return nil, err
	}
	return ParseWith(rawURL, o)
}

// ParseWith parses a Redis URL (see the package comment for the forms) and
// applies o. An empty URL means DefaultURL. A bad URL returns an error
// wrapping ErrBadURL, bad Options one wrapping ErrBadOptions (and the file
// system's error for a file that cannot be read); neither contains the
// password.
func ParseWith(rawURL string, o Options) (*Conn, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	u, err := splitURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &Conn{redacted: u.redacted()}
	// Every error below comes from parsing u.placeholder(), which holds no
	// secret: the real URL is parsed only once that one has parsed.
	var tlsCfg **tls.Config
	switch u.scheme {
	case "redis", "rediss":
		if _, err := redis.ParseURL(u.placeholder()); err != nil {
			return nil, fmt.Errorf("%w %q: %s", ErrBadURL, c.redacted, Redact(err.Error()))
		}
		opt, err := redis.ParseURL(u.clean())
		if err != nil {
			return nil, fmt.Errorf("%w %q: the URL does not parse", ErrBadURL, c.redacted)
		}
		c.kind, c.opt, tlsCfg = Standalone, opt, &opt.TLSConfig
	case "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster":
		if err := (&Conn{}).parseMulti(u.placeholder()); err != nil {
			return nil, fmt.Errorf("%w %q: %s", ErrBadURL, c.redacted, Redact(err.Error()))
		}
		if err := c.parseMulti(u.clean()); err != nil {
			return nil, fmt.Errorf("%w %q: the URL does not parse", ErrBadURL, c.redacted)
		}
		if c.kind == Sentinel {
			tlsCfg = &c.failover.TLSConfig
		} else {
			tlsCfg = &c.cluster.TLSConfig
		}
	}
	if err := c.apply(o, tlsCfg); err != nil {
		return nil, err
	}
	return c, nil
}

// parseMulti parses a sentinel or cluster URL: several hosts, no go-redis
// query options.
func (c *Conn) parseMulti(rawURL string) error {
	// net/url refuses a host list with an IPv6 literal after the first
	// host: cut the list out and let it parse the rest.
	scheme, rest, _ := strings.Cut(rawURL, "://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	hosts := rest[at+1 : end]
	u, err := url.Parse(scheme + "://" + rest[:at+1] + "hosts" + rest[end:])
	if err != nil {
		return err
	}
	kind, defPort := Sentinel, DefaultSentinelPort
	if strings.HasSuffix(scheme, "-cluster") {
		kind, defPort = Cluster, DefaultClusterPort
	}
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return errors.New("an empty host: list the hosts as host1:port1,host2:port2")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil { // no port: all of h is the host, in brackets for IPv6
			host, port = h, defPort
			if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
				host = h[1 : len(h)-1]
			}
		}
		if host == "" || strings.ContainsAny(host, "[]") || (err != nil && host == h && strings.Contains(h, ":")) {
			return fmt.Errorf("host %q: write host:port, an IPv6 address in brackets ([::1]:%s)", h, defPort)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("host %q: the port must be a number from 1 to 65535", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	var username, password string
	if u.User != nil {
		username = u.User.Username()
		password, _ = u.User.Password()
	}
	db := 0
	if p := strings.Trim(u.Path, "/"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return fmt.Errorf("database %q: the path is the database number, e.g. /0", p)
		}
		db = n
	}
	var tlsCfg *tls.Config
	if strings.HasPrefix(scheme, "rediss") {
		// No ServerName: crypto/tls takes each node's own host name.
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	q := u.Query()
	c.kind = kind
	switch kind {
	case Sentinel:
		master := q.Get("master")
		q.Del("master")
		if master == "" {
			return errors.New("the primary's name is missing: add ?master=NAME, the name the sentinels monitor")
		}
		c.failover = &redis.FailoverOptions{
			MasterName:    master,
			SentinelAddrs: addrs,
			Username:      username,
			Password:      password,
			DB:            db,
			TLSConfig:     tlsCfg,
		}
	case Cluster:
		if db != 0 {
			return fmt.Errorf("database %d: a Redis Cluster has database 0 only; drop the path", db)
		}
		c.cluster = &redis.ClusterOptions{
			Addrs:     addrs,
			Username:  username,
			Password:  password,
			TLSConfig: tlsCfg,
		}
	}
	if len(q) > 0 {
		names := make([]string, 0, len(q))
		for k := range q {
			names = append(names, k)
		}
		slices.Sort(names)
		return fmt.Errorf("unknown query option %s: a %s URL takes %s", strings.Join(names, ", "), kind,
			map[Kind]string{Sentinel: "master= only", Cluster: "none"}[kind])
	}
	return nil
}

// apply applies o to the parsed URL; tlsCfg points at its TLS config (nil
// when the URL is not TLS).
func (c *Conn) apply(o Options, tlsCfg **tls.Config) error {
	if o.SentinelUsername != "" || o.SentinelPassword != "" {
		if c.kind != Sentinel {
			return fmt.Errorf("%w: a sentinel user or password (%s, %s) is set but %q is not a sentinel URL: unset it",
				ErrBadOptions, EnvSentinelUsername, EnvSentinelPassword, c.redacted)
		}
		c.failover.SentinelUsername, c.failover.SentinelPassword = o.SentinelUsername, o.SentinelPassword
	}
	if o.CAFile == "" && o.CertFile == "" && o.KeyFile == "" && !o.InsecureSkipVerify {
		return nil
	}
	if *tlsCfg == nil {
		return fmt.Errorf("%w: TLS settings (%s, %s, %s, %s) are set but %q does not use TLS: "+
			"use rediss:// (rediss-sentinel://, rediss-cluster://), or unset them",
			ErrBadOptions, EnvCAFile, EnvCertFile, EnvKeyFile, EnvInsecureSkipVerify, c.redacted)
	}
	cfg := (*tlsCfg).Clone()
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return fmt.Errorf("%w: CA file (%s): %w", ErrBadOptions, EnvCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: CA file (%s) %s holds no PEM certificate: give the CA bundle that signed the server's certificate",
				ErrBadOptions, EnvCAFile, o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return fmt.Errorf("%w: a client certificate needs both %s and %s", ErrBadOptions, EnvCertFile, EnvKeyFile)
	}
	if o.CertFile != "" {
		// The key file's content never reaches the error: crypto/tls's
		// errors describe the PEM blocks, not their bytes.
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return fmt.Errorf("%w: client certificate (%s, %s): %w", ErrBadOptions, EnvCertFile, EnvKeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	*tlsCfg = cfg
	return nil
}

// Kind is the deployment the URL names.
func (c *Conn) Kind() Kind { return c.kind }

// String is the URL without its password, for logs.
func (c *Conn) String() string { return c.redacted }

// Options returns a copy of the go-redis options of a Standalone URL, and
// nil for Sentinel and Cluster.
func (c *Conn) Options() *redis.Options {
	if c.opt == nil {
		return nil
	}
	o := *c.opt
	return &o
}

// Client returns a new go-redis client: a plain client for a Standalone
// URL, a failover client (which follows the sentinels to the current
// primary) for Sentinel, a cluster client for Cluster. The caller closes it.
//
// Every client respects the deadline of the context a call is made with
// (go-redis's ContextTimeoutEnabled): without it go-redis reads with its
// ReadTimeout whatever the context says, so a call to a Redis that holds
// the connection and never answers (a hung primary, a dead network path)
// outlived a limiter's one-second round trip, a shutdown's bound or a
// task's deadline by ReadTimeout on every try, and a client WithRetries
// tries ten times.
func (c *Conn) Client() redis.UniversalClient {
	r := c.retries
	switch c.kind {
	case Sentinel:
		o := *c.failover
		o.SentinelAddrs = slices.Clone(o.SentinelAddrs)
		o.ContextTimeoutEnabled = true
		r.apply(&o.MaxRetries, &o.MinRetryBackoff, &o.MaxRetryBackoff, &o.ReadTimeout)
		return redis.NewFailoverClient(&o)
	case Cluster:
		o := *c.cluster
		o.Addrs = slices.Clone(o.Addrs)
		o.ContextTimeoutEnabled = true
		r.apply(&o.MaxRedirects, &o.MinRetryBackoff, &o.MaxRetryBackoff, &o.ReadTimeout)
		return redis.NewClusterClient(&o)
	}
	o := c.Options()
	o.ContextTimeoutEnabled = true
	r.apply(&o.MaxRetries, &o.MinRetryBackoff, &o.MaxRetryBackoff, &o.ReadTimeout)
	return redis.NewClient(o)
}

// AsynqOpt returns asynq's connection option for the same deployment: one
// whose clients are those of Client. asynq's own options
// (RedisClientOpt, RedisFailoverClientOpt, RedisClusterClientOpt) cannot
// carry everything Client sets: the retries of WithRetries, the URL's
// go-redis query options, and a client that respects the caller's context
// deadline (see Client).
func (c *Conn) AsynqOpt() asynq.RedisConnOpt { return clientOpt{c} }

// clientOpt is an asynq.RedisConnOpt that makes c's go-redis client.
type clientOpt struct{ c *Conn }

// MakeRedisClient returns a new redis.UniversalClient, as asynq requires.
func (o clientOpt) MakeRedisClient() any { return o.c.Client() }

// Redact replaces the password of any URL in s with "xxxxx". s may be a URL
// or a text that quotes URLs (an error message).
func Redact(s string) string {
	u, err := url.Parse(s)
	if err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		return s
	}
	// Not a clean URL: in the authority after each "://" (up to the next
	// '/', '?' or '#', which an unescaped password cannot hold), cut
	// everything up to its last '@'. A password may hold spaces and quotes,
	// so they do not end the authority: in doubt, cut more.
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/?#")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndex(s[:end], "@"); at >= 0 {
			b.WriteString("xxxxx")
			s = s[at:]
		}
	}
}
