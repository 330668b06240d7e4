package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of SentinelConfig.
const (
	DefaultMasterName      = "mymaster"
	DefaultDownAfter       = time.Second
	DefaultFailoverTimeout = 3 * time.Second
)

// sentinelQuorum is how many of the three sentinels must agree that the
// primary is down.
const sentinelQuorum = 2

// sentinelSetupTimeout bounds the wait until the sentinels know the
// replica and each other.
const sentinelSetupTimeout = 20 * time.Second

// SentinelConfig configures StartSentinelSet. Zero values take the
// defaults.
type SentinelConfig struct {
	// MasterName is the name the sentinels monitor; default
	// DefaultMasterName ("mymaster").
	MasterName string
	// Password, when set, is required by the primary and the replica
	// (requirepass, masterauth, and the sentinels' auth-pass);
	// SentinelSet.URL carries it.
	Password string
	// SentinelPassword, when set, is required by the sentinels themselves
	// (their requirepass).
	SentinelPassword string
	// DownAfter is how long the primary must be silent before a sentinel
	// deems it down; default DefaultDownAfter (1s).
	DownAfter time.Duration
	// FailoverTimeout is the sentinels' failover-timeout; default
	// DefaultFailoverTimeout (3s).
	FailoverTimeout time.Duration
}

// SentinelSet is a running primary, its replica and three sentinels
// (quorum 2) on loopback.
type SentinelSet struct {
	// Primary and Replica are the servers as started: after a failover
	// Replica is the primary.
	Primary, Replica *Server
	// Sentinels are the three sentinels; SentinelAddrs their host:port.
	Sentinels     []*Server
	SentinelAddrs []string
	// MasterName is the name the sentinels monitor.
	MasterName string
	// URL is redis-sentinel://[:Password@]s1,s2,s3/0?master=MasterName
	// (package redisconn's form). It does not carry SentinelPassword.
	URL string

	cfg SentinelConfig
}

// StartSentinelSet starts a primary, a replica of it and three sentinels
// for t, waits until every sentinel knows the replica and the other
// sentinels (so that a failover can start as soon as the primary dies),
// and stops them when t ends. It never uses TEST_REDIS_URL.
func StartSentinelSet(t testing.TB, cfg SentinelConfig) *SentinelSet {
	t.Helper()
	s, err := LaunchSentinelSet(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// LaunchSentinelSet is StartSentinelSet outside of a test: its files live
// in dir, and the caller must call Stop.
func LaunchSentinelSet(dir string, cfg SentinelConfig) (*SentinelSet, error) {
	if cfg.MasterName == "" {
		cfg.MasterName = DefaultMasterName
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = DefaultDownAfter
	}
	if cfg.FailoverTimeout <= 0 {
		cfg.FailoverTimeout = DefaultFailoverTimeout
	}
	set := &SentinelSet{MasterName: cfg.MasterName, cfg: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), sentinelSetupTimeout)
	defer cancel()
	if err := set.start(ctx, dir); err != nil {
		set.Stop()
		return nil, fmt.Errorf("start sentinel set: %w (logs in %s)", err, dir)
	}
	return set, nil
}

func (set *SentinelSet) start(ctx context.Context, dir string) error {
	cfg := set.cfg
	primaryDir, err := mkdir(dir, "primary")
	if err != nil {
		return err
	}
	// A replica's full sync waits repl-diskless-sync-delay (5 s by
	// default) for more replicas to share it: none will.
	args := append(authArgs(cfg.Password), "--repl-diskless-sync-delay", "0")
	if set.Primary, err = Launch(primaryDir, args...); err != nil {
		return fmt.Errorf("primary: %w", err)
	}
	set.Primary.password = cfg.Password
	host, port, _ := net.SplitHostPort(set.Primary.Addr)

	replicaDir, err := mkdir(dir, "replica")
	if err != nil {
		return err
	}
	if set.Replica, err = Launch(replicaDir, append(args, "--replicaof", host, port)...); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	set.Replica.password = cfg.Password
	// Sentinels learn the replica from the primary's INFO: let the link
	// come up first.
	rdb := set.Replica.client()
	err = poll(ctx, func() error {
		info, err := rdb.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return errors.New("replica: link to the primary not up yet")
		}
		return nil
	})
	rdb.Close()
	if err != nil {
		return err
	}

	sentDir, err := mkdir(dir, "sentinels")
	if err != nil {
		return err
	}
	for range 3 {
		s, err := launch(sentDir, nil, func(s *Server, p int) ([]string, error) {
			conf := filepath.Join(s.dir, fmt.Sprintf("sentinel-%d.conf", p))
			if err := os.WriteFile(conf, []byte(set.sentinelConf(s.dir, p, host, port)), 0o600); err != nil {
				return nil, err
			}
			s.password = cfg.SentinelPassword
			return []string{conf, "--sentinel"}, nil
		})
		if err != nil {
			return fmt.Errorf("sentinel: %w", err)
		}
		set.Sentinels = append(set.Sentinels, s)
		set.SentinelAddrs = append(set.SentinelAddrs, s.Addr)
	}
	set.URL = "redis-sentinel://" + userinfo(cfg.Password) + strings.Join(set.SentinelAddrs, ",") +
		"/0?master=" + url.QueryEscape(cfg.MasterName)

	for _, s := range set.Sentinels {
		sc := set.sentinelClient(s)
		err := poll(ctx, func() error { return set.ready(ctx, sc) })
		sc.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", s.Addr, err)
		}
	}
	return nil
}

// sentinelConf is the configuration file of the sentinel on port.
func (set *SentinelSet) sentinelConf(dir string, port int, primaryHost, primaryPort string) string {
	cfg := set.cfg
	var b strings.Builder
	fmt.Fprintf(&b, "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n", port, dir,
		filepath.Join(dir, fmt.Sprintf("sentinel-%d.log", port)))
	if cfg.SentinelPassword != "" {
		fmt.Fprintf(&b, "requirepass %s\n", cfg.SentinelPassword)
	}
	fmt.Fprintf(&b, "sentinel monitor %s %s %s %d\n", cfg.MasterName, primaryHost, primaryPort, sentinelQuorum)
	if cfg.Password != "" {
		fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", cfg.MasterName, cfg.Password)
	}
	fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", cfg.MasterName, cfg.DownAfter.Milliseconds())
	fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", cfg.MasterName, cfg.FailoverTimeout.Milliseconds())
	fmt.Fprintf(&b, "sentinel parallel-syncs %s 1\n", cfg.MasterName)
	return b.String()
}

// ready reports whether the sentinel of sc sees a healthy primary, the
// replica with its link up, and the two other sentinels.
func (set *SentinelSet) ready(ctx context.Context, sc *redis.SentinelClient) error {
	m, err := sc.Master(ctx, set.MasterName).Result()
	if err != nil {
		return err
	}
	if m["flags"] != "master" || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
		return fmt.Errorf("not ready: flags=%s replicas=%s other sentinels=%s",
			m["flags"], m["num-slaves"], m["num-other-sentinels"])
	}
	rs, err := sc.Replicas(ctx, set.MasterName).Result()
	if err != nil {
		return err
	}
	if len(rs) != 1 || rs[0]["flags"] != "slave" || rs[0]["master-link-status"] != "ok" {
		return fmt.Errorf("replica not ready: %v", rs)
	}
	return nil
}

func (set *SentinelSet) sentinelClient(s *Server) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: s.Addr, Password: set.cfg.SentinelPassword,
		MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
}

// MasterAddr returns the primary's host:port as a majority of the live
// sentinels name it.
func (set *SentinelSet) MasterAddr(ctx context.Context) (string, error) {
	votes := map[string]int{}
	var errs []error
	for _, s := range set.Sentinels {
		sc := set.sentinelClient(s)
		a, err := sc.GetMasterAddrByName(ctx, set.MasterName).Result()
		sc.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: %w", s.Addr, err))
			continue
		}
		if len(a) == 2 {
			votes[net.JoinHostPort(a[0], a[1])]++
		}
	}
	for addr, n := range votes {
		if n >= sentinelQuorum {
			return addr, nil
		}
	}
	return "", fmt.Errorf("no primary named by %d sentinels: %v %w", sentinelQuorum, votes, errors.Join(errs...))
}

// WaitPrimary waits until a majority of the sentinels name addr as the
// primary and the server at addr says it is one (role:master), or ctx ends.
func (set *SentinelSet) WaitPrimary(ctx context.Context, addr string) error {
	srv := &Server{Addr: addr, password: set.cfg.Password}
	rdb := srv.client()
	defer rdb.Close()
	return poll(ctx, func() error {
		got, err := set.MasterAddr(ctx)
		if err != nil {
			return err
		}
		if got != addr {
			return fmt.Errorf("sentinels name %s, not %s", got, addr)
		}
		info, err := rdb.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:master\r\n") {
			return fmt.Errorf("%s is not a primary yet", addr)
		}
		return nil
	})
}

// SyncReplica pauses writes on the primary (CLIENT PAUSE WRITE for
// pause) and waits until the replica has reached the primary's replication
// offset, or ctx ends. Redis replicates asynchronously: a failover right
// after it loses no write the primary acknowledged.
func (set *SentinelSet) SyncReplica(ctx context.Context, pause time.Duration) error {
	primary, replica := set.Primary.client(), set.Replica.client()
	defer primary.Close()
	defer replica.Close()
	if err := primary.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "WRITE").Err(); err != nil {
		return fmt.Errorf("pause the primary's writes: %w", err)
	}
	want, err := replOffset(ctx, primary)
	if err != nil {
		return fmt.Errorf("the primary's replication offset: %w", err)
	}
	for {
		got, err := replOffset(ctx, replica)
		if err != nil {
			return fmt.Errorf("the replica's replication offset: %w", err)
		}
		if got >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the replica reached offset %d of the primary's %d: %w", got, want, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// replOffset is the replication offset a server has reached
// (master_repl_offset of INFO replication).
func replOffset(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no master_repl_offset in INFO replication")
}

// Stop kills every server of the set. It is safe to call more than once.
func (set *SentinelSet) Stop() {
	for _, s := range set.Sentinels {
		s.Stop()
	}
	for _, s := range []*Server{set.Replica, set.Primary} {
		if s != nil {
			s.Stop()
		}
	}
}
