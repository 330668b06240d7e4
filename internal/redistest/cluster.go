package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterConfig configures StartCluster. The zero value is a cluster
// without a password.
type ClusterConfig struct {
	// Password, when set, is required by every node (requirepass and
	// masterauth); Cluster.URL carries it.
	Password string
	// TLS makes every node speak TLS only, clients and cluster bus alike,
	// with certificates of a new CA (Cluster.Certs); Cluster.URL is then
	// rediss-cluster://.
	TLS bool
	// Args are extra redis-server arguments for every node.
	Args []string
}

// Cluster is a running Redis Cluster of three masters without replicas,
// on loopback: node i serves a third of the 16384 hash slots.
type Cluster struct {
	// Nodes are the masters, in slot order.
	Nodes []*Server
	// Addrs are the nodes' host:port.
	Addrs []string
	// URL is redis-cluster://[:Password@]addr1,addr2,addr3 (package
	// redisconn's form; rediss-cluster:// with TLS).
	URL string
	// Certs, with ClusterConfig.TLS, are the CA and certificates of the
	// nodes and of a client; nil otherwise.
	Certs *Certs

	password string
	tls      *tls.Config
}

// clusterSetupTimeout bounds the wait for cluster_state:ok.
const clusterSetupTimeout = 20 * time.Second

// StartCluster starts a three-master Redis Cluster for t, waits until every
// node reports cluster_state:ok, and stops it when t ends. It never uses
// TEST_REDIS_URL.
func StartCluster(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	c, err := LaunchCluster(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// LaunchCluster starts a three-master Redis Cluster whose files live in
// dir and waits until every node reports cluster_state:ok. The caller must
// call Stop.
//
// The cluster is built the way redis-cli --cluster create builds it, from
// Go so that no redis-cli is needed: each node takes its slot range and a
// config epoch of its own, then the first node meets the others.
func LaunchCluster(dir string, cfg ClusterConfig) (*Cluster, error) {
	c := &Cluster{password: cfg.Password}
	scheme := "redis-cluster://"
	if cfg.TLS {
		certs, err := NewCerts(dir)
		if err != nil {
			return nil, err
		}
		if c.tls, err = certs.ClientTLS(); err != nil {
			return nil, err
		}
		c.Certs, scheme = certs, "rediss-cluster://"
	}
	for range 3 {
		s, err := launch(dir, c.tls, func(s *Server, port int) ([]string, error) {
			bus, err := FreePort()
			if err != nil {
				return nil, err
			}
			s.busPort = bus
			a := append([]string{"--port", fmt.Sprint(port)}, baseArgs(s.dir, port)...)
			if c.Certs != nil {
				a = append(append(c.Certs.ServerArgs(port), baseArgs(s.dir, port)...),
					"--tls-cluster", "yes", "--tls-replication", "yes")
			}
			a = append(a, "--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(s.dir, fmt.Sprintf("nodes-%d.conf", port)),
				"--cluster-port", fmt.Sprint(bus),
				"--cluster-node-timeout", "5000")
			return append(append(a, authArgs(cfg.Password)...), cfg.Args...), nil
		})
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("start cluster node: %w", err)
		}
		s.password = cfg.Password
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	c.URL = scheme + userinfo(cfg.Password) + strings.Join(c.Addrs, ",")
	ctx, cancel := context.WithTimeout(context.Background(), clusterSetupTimeout)
	defer cancel()
	if err := c.join(ctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("form the cluster: %w (logs in %s)", err, dir)
	}
	return c, nil
}

// join assigns the slots, introduces the nodes and waits for
// cluster_state:ok on every node.
func (c *Cluster) join(ctx context.Context) error {
	const slots = 16384
	n := len(c.Nodes)
	for i, s := range c.Nodes {
		rdb := s.client()
		lo, hi := i*slots/n, (i+1)*slots/n-1
		err := rdb.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err()
		if err == nil {
			err = rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err()
		}
		rdb.Close()
		if err != nil {
			return fmt.Errorf("node %s: %w", s.Addr, err)
		}
	}
	first := c.Nodes[0].client()
	defer first.Close()
	for _, s := range c.Nodes[1:] {
		_, port, _ := strings.Cut(s.Addr, ":")
		if err := first.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", port, s.busPort).Err(); err != nil {
			return fmt.Errorf("meet %s: %w", s.Addr, err)
		}
	}
	for _, s := range c.Nodes {
		rdb := s.client()
		err := poll(ctx, func() error {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			for _, want := range []string{"cluster_state:ok", fmt.Sprintf("cluster_known_nodes:%d", n),
				fmt.Sprintf("cluster_slots_ok:%d", slots)} {
				if !strings.Contains(info, want+"\r\n") {
					return fmt.Errorf("node %s: no %s yet", s.Addr, want)
				}
			}
			return nil
		})
		rdb.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Client returns a cluster client for c, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, Password: c.password, TLSConfig: c.tls})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Stop kills every node. It is safe to call more than once.
func (c *Cluster) Stop() {
	for _, s := range c.Nodes {
		s.Stop()
	}
}

// client is a plain client of s, without a test.
func (s *Server) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.password, TLSConfig: s.TLS,
		MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
}

// authArgs require password of clients and give it to replication.
func authArgs(password string) []string {
	if password == "" {
		return nil
	}
	return []string{"--requirepass", password, "--masterauth", password}
}

// userinfo is the userinfo part of a URL with password, "" without.
func userinfo(password string) string {
	if password == "" {
		return ""
	}
	return url.UserPassword("", password).String() + "@"
}

// poll calls f every 50ms until it returns nil or ctx ends; then it returns
// f's last error.
func poll(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// mkdir makes dir/name and returns it.
func mkdir(dir, name string) (string, error) {
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	return d, nil
}
