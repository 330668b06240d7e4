package campaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Defaults of ManagerConfig.
const (
	// DefaultRate is the rate ETAs assume when no feeder has published the
	// shared limiter's: Tencent's cap.
	DefaultRate = 200.0
	// DefaultCancelWait is how long cancel waits for tasks that were
	// running to end, to remove their retries too.
	DefaultCancelWait = 15 * time.Second
	// DefaultOpWait is how long pause and cancel wait for a feeder batch
	// (or another pause or cancel) to finish.
	DefaultOpWait = opTTL + 5*time.Second
)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Redis holds the campaigns. Required.
	Redis redis.UniversalClient
	// Queue is asynq's connection. Required.
	Queue asynq.RedisConnOpt
	// Rate is the configured RECALL_RATE, for ETAs when no feeder has
	// published the limiter's own. Default DefaultRate.
	Rate float64
	// CancelWait: default DefaultCancelWait.
	CancelWait time.Duration
	// OpWait: default DefaultOpWait.
	OpWait time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Manager reads and steers campaigns: status, list, pause, resume, cancel
// and the dead-letter export.
type Manager struct {
	cfg  ManagerConfig
	rdb  redis.UniversalClient
	insp *asynq.Inspector
}

// NewManager applies the defaults.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Redis == nil || cfg.Queue == nil {
		return nil, errors.New("campaign: ManagerConfig.Redis and Queue are required")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.CancelWait <= 0 {
		cfg.CancelWait = DefaultCancelWait
	}
	if cfg.OpWait <= 0 {
		cfg.OpWait = DefaultOpWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, rdb: cfg.Redis, insp: asynq.NewInspector(cfg.Queue)}, nil
}

// Close closes the Manager's asynq connection.
func (m *Manager) Close() error { return m.insp.Close() }

// setState moves the campaign to the state to if it is in one of from, and
// returns the state it was in. Errors: ErrBadName, ErrNotFound, the Redis
// error; wrapped.
func (m *Manager) setState(ctx context.Context, name string, to State, from ...State) (moved bool, prev State, err error) {
	if err := ValidateName(name); err != nil {
		return false, "", err
	}
	moved, cur, err := moveState(ctx, m.rdb, keysFor(name), to, from)
	if err != nil {
		return false, "", fmt.Errorf("campaign %s: set state: %w", name, err)
	}
	if cur == "" {
		return false, "", fmt.Errorf("%w %q: `recallq campaign list` shows them", ErrNotFound, name)
	}
	return moved, cur, nil
}
