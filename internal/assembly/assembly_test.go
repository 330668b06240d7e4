package assembly

import (
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/worker"
)

// New refuses a Config it cannot build from, naming the field, before it
// opens anything.
func TestNewNamesTheMissingOrConflictingField(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	queue := asynq.RedisClientOpt{Addr: "127.0.0.1:1"}
	app := tim.Config{SDKAppID: 1400000000, SecretKey: "k"}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no redis", Config{Queue: queue, App: app}, "Config.Redis"},
		{"no queue", Config{Redis: rdb, App: app}, "Config.Queue"},
		{"no app", Config{Redis: rdb, Queue: queue}, "Config.App.SDKAppID"},
		{"handler's app set", Config{Redis: rdb, Queue: queue, App: app,
			Worker: worker.Config{Handler: worker.HandlerConfig{SDKAppID: 1}}}, "Config.Worker"},
		{"feeder's redis set", Config{Redis: rdb, Queue: queue, App: app,
			Feeder: campaign.FeederConfig{Redis: rdb}}, "Config.Feeder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(tt.cfg)
			if err == nil {
				w.Close()
				t.Fatalf("New succeeded, want an error naming %s", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want it to name %s", err, tt.want)
			}
		})
	}
}
