package campaign

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// opTTL bounds how long a crashed holder keeps a campaign's op lock. A
// feeder batch, a pause or a cancel each finish far sooner.
const opTTL = 30 * time.Second

// newToken names a lock holder: host, pid and a random suffix, so an
// operator reading the key sees who holds it.
func newToken() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// tryLock takes key for token for ttl if nobody holds it.
func tryLock(ctx context.Context, rdb redis.UniversalClient, key, token string, ttl time.Duration) (bool, error) {
	err := rdb.SetArgs(ctx, key, token, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case err == redis.Nil: //nolint:errorlint // go-redis's "not set" is a value
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// renewLock and unlock, which run scripts, are in store.go.

// waitLock takes key, waiting up to maxWait for its holder.
func waitLock(ctx context.Context, rdb redis.UniversalClient, key, token string, ttl, maxWait time.Duration) error {
	deadline := time.Now().Add(maxWait)
	for {
		ok, err := tryLock(ctx, rdb, key, token, ttl)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			holder, _ := rdb.Get(ctx, key).Result()
			return fmt.Errorf("%w: %s holds it; try again later", ErrBusy, holder)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
