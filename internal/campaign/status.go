package campaign

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/tasks"
)

// Status is a campaign's progress.
type Status struct {
	Name       string    `json:"name"`
	SDKAppID   uint64    `json:"sdkappid"`
	State      State     `json:"state"`
	Created    time.Time `json:"created"`
	Finished   time.Time `json:"finished,omitzero"`
	Source     string    `json:"source"`
	Format     string    `json:"format"`
	ImportDone bool      `json:"import_done"`
	// Queued is every row imported into the campaign.
	Queued   int64 `json:"queued"`
	Rejected int64 `json:"rejected"`
	// Ends, as the workers recorded them.
	Recalled        int64            `json:"recalled"`
	AlreadyRecalled int64            `json:"already_recalled"`
	DeadLettered    int64            `json:"dead_lettered"`
	DeadByCode      map[string]int64 `json:"dead_lettered_by_code"`
	// Retrying: called, failed, waiting to be tried again.
	Retrying int64 `json:"retrying"`
	// Pending = Backlog + InQueue: not called yet (InQueue includes the
	// few being called right now).
	Pending int64 `json:"pending"`
	Backlog int64 `json:"backlog"`
	InQueue int64 `json:"in_queue"`
	// Duplicates: rows whose message was queued already (twice in the
	// file, or by another campaign); counted there.
	Duplicates int64 `json:"duplicates"`
	// Cancelled: rows removed by cancel before they were called (or
	// before their retry).
	Cancelled int64 `json:"cancelled"`
	// Unaccounted: tasks that left asynq without their end being recorded.
	Unaccounted int64 `json:"unaccounted"`
	// Deleted: tasks deleted by hand from asynq (asynqmon, the asynq CLI)
	// before they ended; not called (again).
	Deleted int64 `json:"deleted"`
	// QueuePaused: asynq's bulk queue is paused (asynqmon, the asynq CLI),
	// so no campaign is fed or called.
	QueuePaused bool `json:"queue_paused"`
	// Waiting, when set, says why a running campaign does not move and what
	// to do about it.
	Waiting string `json:"waiting,omitempty"`
	// Rate is the calls per second the ETA assumes, RateSource where it
	// comes from; ETA is Remaining/Rate.
	Rate       float64 `json:"rate"`
	RateSource string  `json:"rate_source"`
	ETASeconds float64 `json:"eta_seconds"`
}

// Ended is the rows whose fate is settled.
func (s Status) Ended() int64 {
	return s.Recalled + s.AlreadyRecalled + s.DeadLettered + s.Duplicates + s.Cancelled + s.Unaccounted + s.Deleted
}

// Remaining is the rows still to be called or retried.
func (s Status) Remaining() int64 { return s.Pending + s.Retrying }

// ETA is the estimated time to the end.
func (s Status) ETA() time.Duration { return time.Duration(s.ETASeconds * float64(time.Second)) }

// Status reads one campaign's progress; ErrNotFound when there is none.
func (m *Manager) Status(ctx context.Context, name string) (Status, error) {
	if err := ValidateName(name); err != nil {
		return Status{}, err
	}
	all, err := m.statuses(ctx, []string{name})
	if err != nil {
		return Status{}, err
	}
	if len(all) == 0 {
		return Status{}, fmt.Errorf("%w %q: `recallq campaign list` shows them", ErrNotFound, name)
	}
	return all[0], nil
}

// List reads every campaign's progress, newest first.
func (m *Manager) List(ctx context.Context) ([]Status, error) {
	names, err := m.rdb.SMembers(ctx, indexKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	all, err := m.statuses(ctx, names)
	sort.Slice(all, func(i, j int) bool {
		if !all[i].Created.Equal(all[j].Created) {
			return all[i].Created.After(all[j].Created)
		}
		return all[i].Name < all[j].Name
	})
	return all, err
}

func (m *Manager) statuses(ctx context.Context, names []string) ([]Status, error) {
	type cmds struct {
		meta                   *redis.SliceCmd
		counts                 *redis.MapStringStringCmd
		backlog, win, retrying *redis.IntCmd
	}
	pipe := m.rdb.Pipeline()
	cs := make([]cmds, len(names))
	for i, n := range names {
		k := keysFor(n)
		cs[i].meta = pipe.HMGet(ctx, k.meta, metaFields...)
		cs[i].counts = pipe.HGetAll(ctx, k.counts)
		cs[i].backlog = pipe.LLen(ctx, k.backlog)
		cs[i].win = pipe.HLen(ctx, k.window)
		cs[i].retrying = pipe.SCard(ctx, k.retrying)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil { //nolint:errorlint // value
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	var out []Status
	for i, n := range names {
		md, err := parseMeta(n, cs[i].meta.Val())
		if err != nil {
			continue
		}
		counts := map[string]int64{}
		for k, v := range cs[i].counts.Val() {
			counts[k], _ = strconv.ParseInt(v, 10, 64)
		}
		s := Status{
			Name: n, SDKAppID: md.sdkAppID, State: md.state, Created: md.created, Finished: md.finished,
			Source: md.source, Format: md.format, ImportDone: md.importDone,
			Queued: md.importRows, Rejected: md.rejected,
			Recalled: counts[fieldRecalled], AlreadyRecalled: counts[fieldAlreadyRecalled], DeadLettered: counts[fieldDeadLettered],
			DeadByCode: map[string]int64{},
			Duplicates: counts[fieldDuplicates], Cancelled: counts[fieldCancelled], Unaccounted: counts[fieldUnaccounted],
			Deleted: counts[fieldDeleted],
			Backlog: cs[i].backlog.Val(), Retrying: cs[i].retrying.Val(),
		}
		for k, v := range counts {
			if code, ok := strings.CutPrefix(k, fieldDeadPrefix); ok {
				s.DeadByCode[code] = v
			}
		}
		s.InQueue = max(0, cs[i].win.Val()-s.Retrying)
		s.Pending = s.Backlog + s.InQueue
		out = append(out, s)
	}
	m.fillETA(ctx, out)
	if err := m.fillWaiting(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// fillWaiting says why running campaigns with work left do not move: the
// bulk queue is paused in asynq, or no worker of the app is running.
func (m *Manager) fillWaiting(ctx context.Context, all []Status) error {
	if len(all) == 0 {
		return nil
	}
	paused := map[uint64]bool{}
	feeding := map[uint64]bool{}
	for i := range all {
		s := &all[i]
		p, ok := paused[s.SDKAppID]
		if !ok {
			var err error
			if p, err = bulkPaused(ctx, m.rdb, s.SDKAppID); err != nil {
				return fmt.Errorf("read the bulk queue's state: %w", err)
			}
			paused[s.SDKAppID] = p
		}
		s.QueuePaused = p
		if s.State != StateRunning || s.Remaining() == 0 {
			continue
		}
		if p {
			q := tasks.AppQueue(tasks.QueueBulk, s.SDKAppID)
			s.Waiting = fmt.Sprintf("asynq's queue %s is paused (from asynqmon or `asynq queue pause`): nothing is fed or called until it is unpaused there (or `asynq queue unpause %s`)", q, q)
			continue
		}
		live, ok := feeding[s.SDKAppID]
		if !ok {
			n, err := m.rdb.Exists(ctx, feedKeysFor(s.SDKAppID).lock).Result()
			if err != nil {
				return fmt.Errorf("look for the feeder: %w", err)
			}
			live = n == 1
			feeding[s.SDKAppID] = live
		}
		if !live {
			s.Waiting = fmt.Sprintf("no worker of app %d is running, so nothing is fed: start `recallq worker` with TIM_SDKAPPID=%d, or with the app in its TIM_APPS_FILE", s.SDKAppID, s.SDKAppID)
		}
	}
	return nil
}

// fillETA estimates each campaign's end: the shared rate (the limiter's,
// as the active feeder published it, else the configured one) divided
// among the app's running campaigns that still have work.
func (m *Manager) fillETA(ctx context.Context, all []Status) {
	busy := map[uint64]int{}
	if views, err := snapshot(ctx, m.rdb); err == nil {
		for _, v := range views {
			if v.m.state == StateRunning && v.backlog+v.window > 0 {
				busy[v.m.sdkAppID]++
			}
		}
	}
	rates := map[uint64]float64{}
	for i := range all {
		s := &all[i]
		r, ok := rates[s.SDKAppID]
		if !ok {
			r, _ = m.rdb.Get(ctx, feedKeysFor(s.SDKAppID).rate).Float64()
			rates[s.SDKAppID] = r
		}
		s.Rate, s.RateSource = m.cfg.Rate, "RECALL_RATE"
		if r > 0 {
			s.Rate, s.RateSource = r, "the shared limiter"
		}
		if s.State != StateRunning {
			continue
		}
		if n := busy[s.SDKAppID]; n > 1 {
			s.Rate /= float64(n)
			s.RateSource += fmt.Sprintf(", shared by %d running campaigns", n)
		}
		s.ETASeconds = float64(s.Remaining()) / s.Rate
	}
}
