package campaign

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is a campaign's state.
type State string

// States.
const (
	// StateRunning: the feeder hands the campaign's rows to the workers
	// (also while the import is still going on).
	StateRunning State = "running"
	// StatePaused: nothing of the campaign is queued in asynq; its rows
	// wait in the backlog.
	StatePaused State = "paused"
	// StateCancelled: the rows not yet called were removed. Final.
	StateCancelled State = "cancelled"
	// StateDone: every row was called (or was a duplicate). An import
	// that adds rows (the same `campaign start` run again with rows
	// appended) makes it running again.
	StateDone State = "done"
)

// meta is a campaign's record.
type meta struct {
	name        string
	sdkAppID    uint64
	created     time.Time
	source      string
	format      string
	state       State
	requestedBy string
	reason      string
	importRows  int64
	importLine  int64
	importCRC   uint32
	importDone  bool
	rejected    int64
	fed         int64
	feeding     int64
	imported    time.Time
	finished    time.Time
	audit       int64 // 2: dead letters are indexed in dead_ids
}

// readMeta reads a campaign's record; ErrNotFound when there is none.
func readMeta(ctx context.Context, rdb redis.UniversalClient, name string) (meta, error) {
	cmd := rdb.HMGet(ctx, keysFor(name).meta, metaFields...)
	if err := cmd.Err(); err != nil {
		return meta{}, fmt.Errorf("campaign %s: read: %w", name, err)
	}
	return parseMeta(name, cmd.Val())
}

func parseMeta(name string, v []any) (meta, error) {
	s := func(i int) string {
		if x, ok := v[i].(string); ok {
			return x
		}
		return ""
	}
	if s(0) == "" {
		return meta{}, fmt.Errorf("%w %q: `recallq campaign list` shows them", ErrNotFound, name)
	}
	n := func(i int) int64 { x, _ := strconv.ParseInt(s(i), 10, 64); return x }
	t := func(i int) time.Time { x, _ := time.Parse(time.RFC3339, s(i)); return x }
	app, _ := strconv.ParseUint(s(1), 10, 64)
	crc, _ := strconv.ParseUint(s(10), 10, 32)
	return meta{
		name: s(0), sdkAppID: app, created: t(2), source: s(3), format: s(4), state: State(s(5)),
		requestedBy: s(6), reason: s(7), importRows: n(8), importLine: n(9), importCRC: uint32(crc),
		importDone: s(11) == "1", rejected: n(12), fed: n(13), feeding: n(14), imported: t(15), finished: t(16), audit: n(17),
	}, nil
}
