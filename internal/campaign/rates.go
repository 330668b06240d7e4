package campaign

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// sampleRate notes a running campaign's ended count at now, keeping the
// last rateSamples samples (newest first).
func sampleRate(ctx context.Context, rdb redis.UniversalClient, name string, now time.Time, ended int64) error {
	k := keysFor(name).rates
	pipe := rdb.TxPipeline()
	pipe.LPush(ctx, k, strconv.FormatInt(now.UnixMilli(), 10)+" "+strconv.FormatInt(ended, 10))
	pipe.LTrim(ctx, k, 0, rateSamples-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("campaign %s: note its rate: %w", name, err)
	}
	return nil
}

// RatePoint is the campaign's rate over the interval that ends at Time.
type RatePoint struct {
	Time      time.Time `json:"time"`
	PerSecond float64   `json:"per_second"`
}

// Rates returns the campaign's recent rate (recalls ended per second), one
// point per interval between the feeder's samples, oldest first: about the
// last ten minutes while it runs. Errors: ErrNotFound, the Redis error.
func (m *Manager) Rates(ctx context.Context, name string) ([]RatePoint, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	raw, err := m.rdb.LRange(ctx, keysFor(name).rates, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("campaign %s: read its rate: %w", name, err)
	}
	type sample struct {
		at    int64
		ended int64
	}
	var ss []sample
	for i := len(raw) - 1; i >= 0; i-- {
		a, b, ok := strings.Cut(raw[i], " ")
		at, err1 := strconv.ParseInt(a, 10, 64)
		ended, err2 := strconv.ParseInt(b, 10, 64)
		if ok && err1 == nil && err2 == nil {
			ss = append(ss, sample{at, ended})
		}
	}
	var out []RatePoint
	for i := 1; i < len(ss); i++ {
		dt := float64(ss[i].at-ss[i-1].at) / 1000
		if dt <= 0 {
			continue
		}
		out = append(out, RatePoint{Time: time.UnixMilli(ss[i].at).UTC(), PerSecond: max(0, float64(ss[i].ended-ss[i-1].ended)/dt)})
	}
	return out, nil
}
