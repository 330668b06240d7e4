package redistest

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStartSentinelSetMonitorsAReplicatedPrimary(t *testing.T) {
	set := StartSentinelSet(t, SentinelConfig{Password: "data-pw", SentinelPassword: "sentinel-pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := set.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if addr != set.Primary.Addr {
		t.Fatalf("sentinels name %s as the primary, want %s", addr, set.Primary.Addr)
	}
	if err := set.Primary.Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	replica := set.Replica.Client(t)
	err = poll(ctx, func() error {
		v, err := replica.Get(ctx, "k").Result()
		if err == nil && v != "v" {
			err = errors.New("replica has " + v)
		}
		return err
	})
	if err != nil {
		t.Fatalf("the write did not reach the replica: %v", err)
	}
}
