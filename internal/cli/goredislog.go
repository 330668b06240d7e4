package cli

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

var quietOnce sync.Once

// quietGoRedis stops go-redis from writing its own unstructured lines
// ("pool.go:770: redis: connection pool: failed to dial...") to the
// process's stderr, in no log format the operator chose, before the error
// that the command reports anyway, once, in its own words.
func quietGoRedis() {
	quietOnce.Do(func() { redis.SetLogger(discardLogger{}) })
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
