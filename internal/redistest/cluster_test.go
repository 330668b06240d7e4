package redistest

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartClusterSpreadsSlotsOverThreeMasters(t *testing.T) {
	c := StartCluster(t, ClusterConfig{Password: "cluster-pw"})
	ctx := context.Background()
	rdb := c.Client(t)
	for i := range 100 {
		if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		size, err := n.Client(t).DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 {
			t.Errorf("node %s holds no key of 100: slots not spread", n.Addr)
		}
	}
	anon := redis.NewClient(&redis.Options{Addr: c.Addrs[0], MaxRetries: -1})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !redis.HasErrorPrefix(err, "NOAUTH") {
		t.Fatalf("PING without the password: err = %v, want NOAUTH", err)
	}
}

func TestStartClusterOverTLS(t *testing.T) {
	c := StartCluster(t, ClusterConfig{TLS: true})
	ctx := context.Background()
	rdb := c.Client(t)
	for i := range 30 {
		if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	plain := redis.NewClient(&redis.Options{Addr: c.Addrs[0], MaxRetries: -1})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a cluster node answered plain text")
	}
}
