package campaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/recallq/recallq/internal/fanout"
	"github.com/recallq/recallq/internal/sleep"
	"github.com/recallq/recallq/tasks"
)

// Defaults of FeederConfig.
const (
	// DefaultWindow is how many tasks of all campaigns together may wait in
	// asynq's bulk queue not yet attempted: 10 s at the cap of 200/s. Enough
	// that the workers never starve between two feeder passes, few enough
	// that a pause pulls back seconds of work, not hours.
	DefaultWindow = 2000
	// DefaultMaxInFlight bounds every task handed to asynq and not ended,
	// retries included, so an outage that fails every call does not move
	// the whole backlog into asynq's retry set.
	DefaultMaxInFlight = 20000
	// DefaultFeedBatch is the most rows one batch moves.
	DefaultFeedBatch = 500
	// feedEnqueueWidth is how many tasks a batch queues at once.
	feedEnqueueWidth = 16
	// DefaultFeedInterval is how long an idle feeder waits before it looks again.
	DefaultFeedInterval = 200 * time.Millisecond
	// DefaultLockTTL is how long the feeder lock outlives its holder: a
	// killed worker hands feeding to another within this time.
	DefaultLockTTL = 10 * time.Second
	// DefaultSyncInterval is how often each campaign's tasks in asynq are
	// checked for what asynq's own tools did to them (sync.go): deleted
	// or archived by hand, or ended without a recorded end.
	DefaultSyncInterval = time.Second
	// DefaultRateSample is how often the feeder notes each running
	// campaign's progress, for the dashboard's rate chart.
	DefaultRateSample = 5 * time.Second
)

// rateSamples is how many samples a campaign keeps (10 minutes at 5 s).
const rateSamples = 120

// FeederConfig configures a Feeder.
type FeederConfig struct {
	// Redis holds the campaigns. Required.
	Redis redis.UniversalClient
	// Queue is asynq's connection, for queuing and inspecting tasks. Required.
	Queue asynq.RedisConnOpt
	// SDKAppID: the feeder feeds only this app's campaigns. Required.
	SDKAppID uint64
	// Window: default DefaultWindow.
	Window int
	// MaxInFlight: default DefaultMaxInFlight.
	MaxInFlight int
	// Batch: default DefaultFeedBatch.
	Batch int
	// Interval: default DefaultFeedInterval.
	Interval time.Duration
	// LockTTL: default DefaultLockTTL.
	LockTTL time.Duration
	// SyncInterval: default DefaultSyncInterval.
	SyncInterval time.Duration
	// RateSample: default DefaultRateSample.
	RateSample time.Duration
	// Task sets the tasks' retry budget and retention (its Queue is
	// always tasks.QueueBulk). Zero values take the tasks package defaults.
	Task tasks.Options
	// Rate, when set, reports the shared limiter's current rate in calls
	// per second; the feeder publishes it so that `campaign status` can
	// give an ETA from it. Optional.
	Rate func() float64
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Now stamps a campaign's end and times reconciliation. Default time.Now.
	Now func() time.Time
}

// Feeder moves campaign rows from their backlogs into asynq's bulk queue,
// a window at a time. Run it in every worker process: a lock in Redis
// keeps one feeder per app active, and a killed holder's lock expires
// after LockTTL, so feeding moves to another process.
type Feeder struct {
	cfg      FeederConfig
	log      *slog.Logger
	rdb      redis.UniversalClient
	client   *asynq.Client
	insp     *asynq.Inspector
	fk       feedKeys
	token    string
	leader   atomic.Bool
	warn     rate.Sometimes
	passes   atomic.Int64
	synced   map[string]time.Time // when each campaign's window was last synced
	looked   time.Time            // when the bulk queues were last looked at for dead letters run again
	lookedUp map[string]string    // "QUEUE/ID" of the pending tasks without pending_since looked up already: their campaign (rerunLooks)
	sample   time.Time            // when the rates were last sampled
	paused   bool                 // the bulk queue was paused at the last pass
}

// NewFeeder applies the defaults and validates cfg.
func NewFeeder(cfg FeederConfig) (*Feeder, error) {
	switch {
	case cfg.Redis == nil:
		return nil, errors.New("campaign: FeederConfig.Redis is not set")
	case cfg.Queue == nil:
		return nil, errors.New("campaign: FeederConfig.Queue is not set")
	case cfg.SDKAppID == 0:
		return nil, errors.New("campaign: FeederConfig.SDKAppID is not set")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxInFlight < cfg.Window {
		cfg.MaxInFlight = cfg.Window
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultFeedBatch
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultFeedInterval
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = DefaultLockTTL
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.RateSample <= 0 {
		cfg.RateSample = DefaultRateSample
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Task.Queue = tasks.QueueBulk
	return &Feeder{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "campaign-feeder"),
		rdb:      cfg.Redis,
		client:   asynq.NewClient(cfg.Queue),
		insp:     asynq.NewInspector(cfg.Queue),
		fk:       feedKeysFor(cfg.SDKAppID),
		token:    newToken(),
		warn:     rate.Sometimes{First: 1, Interval: 30 * time.Second},
		synced:   map[string]time.Time{},
		lookedUp: map[string]string{},
	}, nil
}

// Leader reports whether this feeder holds the app's feeder lock.
func (f *Feeder) Leader() bool { return f.leader.Load() }

// Close closes the feeder's asynq connections. Call it after Run returns.
func (f *Feeder) Close() error {
	err := f.client.Close()
	if ierr := f.insp.Close(); err == nil {
		err = ierr
	}
	return err
}

// Run feeds until ctx is done, then releases the lock so that another
// process takes over at once. It returns nil.
func (f *Feeder) Run(ctx context.Context) error {
	defer func() {
		if f.leader.Swap(false) {
			unlock(f.rdb, f.fk.lock, f.token)
			f.log.Info("campaign feeder stopped; lock released")
		}
	}()
	var renewed time.Time
	for ctx.Err() == nil {
		if !f.leader.Load() {
			ok, err := tryLock(ctx, f.rdb, f.fk.lock, f.token, f.cfg.LockTTL)
			if err != nil {
				f.warnf(ctx, "campaign feeder cannot reach Redis", err)
			}
			if !ok {
				_ = sleep.For(ctx, min(f.cfg.LockTTL/4, time.Second))
				continue
			}
			f.leader.Store(true)
			renewed = time.Now()
			f.log.InfoContext(ctx, "campaign feeder active", "sdkappid", f.cfg.SDKAppID)
		} else if time.Since(renewed) >= f.cfg.LockTTL/3 {
			ok, err := renewLock(ctx, f.rdb, f.fk.lock, f.token, f.cfg.LockTTL)
			if err != nil && ctx.Err() == nil {
				f.warnf(ctx, "campaign feeder cannot renew its lock", err)
			}
			if !ok {
				if err == nil {
					f.leader.Store(false)
					f.log.WarnContext(ctx, "campaign feeder lost its lock; another process feeds now")
					continue
				}
				if time.Since(renewed) > f.cfg.LockTTL/2 {
					f.leader.Store(false) // it may have expired: stand down until it is won again
					continue
				}
			} else {
				renewed = time.Now()
			}
		}
		pctx, cancel := context.WithTimeout(ctx, f.cfg.LockTTL/2)
		more, err := f.pass(pctx)
		cancel()
		f.passes.Add(1)
		if err != nil && ctx.Err() == nil {
			f.warnf(ctx, "campaign feeder pass failed; trying again", err)
		}
		if !more || err != nil {
			_ = sleep.For(ctx, f.cfg.Interval)
		}
	}
	return nil
}

func (f *Feeder) warnf(ctx context.Context, msg string, err error) {
	f.warn.Do(func() { f.log.WarnContext(ctx, msg, "error", err) })
}

// view is what one pass knows of a campaign.
type view struct {
	name                             string
	m                                meta
	backlog, window, retrying, parkd int64
	ended                            int64
}

// snapshot reads the state of every active campaign in one pipeline.
func snapshot(ctx context.Context, rdb redis.UniversalClient) ([]view, error) {
	names, err := rdb.SMembers(ctx, activeKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	type cmds struct {
		meta              *redis.SliceCmd
		counts            *redis.SliceCmd
		backlog, win, par *redis.IntCmd
		retry             *redis.IntCmd
	}
	cs := make([]cmds, len(names))
	pipe := rdb.Pipeline()
	for i, n := range names {
		k := keysFor(n)
		cs[i] = cmds{
			meta:    pipe.HMGet(ctx, k.meta, metaFields...),
			counts:  pipe.HMGet(ctx, k.counts, fieldRecalled, fieldAlreadyRecalled, fieldDeadLettered),
			backlog: pipe.LLen(ctx, k.backlog),
			win:     pipe.HLen(ctx, k.window),
			par:     pipe.HLen(ctx, k.parked),
			retry:   pipe.SCard(ctx, k.retrying),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil { //nolint:errorlint // value
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	out := make([]view, 0, len(names))
	for i, n := range names {
		m, err := parseMeta(n, cs[i].meta.Val())
		if err != nil {
			continue // indexed but not (yet, or any more) recorded
		}
		var ended int64
		for _, v := range cs[i].counts.Val() {
			if s, ok := v.(string); ok {
				x, _ := strconv.ParseInt(s, 10, 64)
				ended += x
			}
		}
		out = append(out, view{name: n, m: m, backlog: cs[i].backlog.Val(), window: cs[i].win.Val(),
			retrying: cs[i].retry.Val(), parkd: cs[i].par.Val(), ended: ended})
	}
	return out, nil
}

// pass looks at every campaign once and feeds those that have room. more
// reports that a campaign had more to feed than one batch.
func (f *Feeder) pass(ctx context.Context) (more bool, err error) {
	if f.cfg.Rate != nil && f.passes.Load()%5 == 0 {
		if r := f.cfg.Rate(); r > 0 {
			_ = f.rdb.Set(ctx, f.fk.rate, strconv.FormatFloat(r, 'f', 1, 64), 5*time.Second).Err()
		}
	}
	if err := f.maybeFindReruns(ctx); err != nil {
		return false, err
	}
	views, err := snapshot(ctx, f.rdb)
	if err != nil {
		return false, err
	}
	paused, err := bulkPaused(ctx, f.rdb, f.cfg.SDKAppID)
	if err != nil {
		return false, err
	}
	if paused != f.paused {
		f.paused = paused
		if paused {
			f.log.InfoContext(ctx, "asynq's bulk queue is paused: campaigns are not fed until it is unpaused", "queue", tasks.AppQueue(tasks.QueueBulk, f.cfg.SDKAppID))
		} else {
			f.log.InfoContext(ctx, "asynq's bulk queue is unpaused: feeding again", "queue", tasks.AppQueue(tasks.QueueBulk, f.cfg.SDKAppID))
		}
	}
	now := f.cfg.Now()
	sampleRates := now.Sub(f.sample) >= f.cfg.RateSample
	if sampleRates {
		f.sample = now
	}
	var feedable []view
	for _, v := range views {
		if v.m.sdkAppID != f.cfg.SDKAppID {
			continue
		}
		if v.parkd > 0 && v.m.state != StateDone {
			if err := f.withOp(ctx, v.name, func() error { return recoverParked(ctx, f.rdb, f.insp, v.name) }); err != nil {
				return false, err
			}
		}
		// A cancelled campaign's tasks still being called when cancel
		// stopped waiting (Cancel), or a dead letter run again by hand
		// (recordScript).
		watched := v.m.state == StateCancelled && v.window > 0
		if (v.m.state == StateDone || v.m.state == StateCancelled) && !watched {
			// Left over from a cancel or a mark that died before this
			// step, or a cancelled campaign whose watched tasks have ended.
			if err := leaveActive(ctx, f.rdb, v.name); err != nil {
				return false, err
			}
		}
		// Not while a batch cut short by a crash waits to be replayed, or
		// a pause's rows are parked: their tasks may be missing from asynq
		// for a reason that is not an operator's.
		if v.window > 0 && v.m.feeding == 0 && v.parkd == 0 && (v.m.state == StateRunning || v.m.state == StatePaused || watched) {
			if err := f.maybeSync(ctx, v); err != nil {
				return false, err
			}
		}
		if v.m.state != StateRunning {
			if !watched { // a watched one is synced every SyncInterval, not every pass
				delete(f.synced, v.name)
			}
			continue
		}
		if sampleRates {
			if err := sampleRate(ctx, f.rdb, v.name, now, v.ended); err != nil {
				return false, err
			}
		}
		if v.backlog > 0 {
			if !paused {
				feedable = append(feedable, v)
			}
			continue
		}
		if v.m.importDone && v.window == 0 {
			if err := markDone(ctx, f.rdb, v.name, f.cfg.Now()); err != nil {
				return false, err
			}
			delete(f.synced, v.name)
		}
	}
	if len(feedable) == 0 {
		return false, nil
	}
	share := max(1, f.cfg.Window/len(feedable))
	maxShare := max(1, f.cfg.MaxInFlight/len(feedable))
	for _, v := range feedable {
		waiting := v.window - v.retrying // queued or running
		room := min(int64(share)-waiting, int64(maxShare)-v.window, int64(f.cfg.Batch))
		if room <= 0 {
			continue
		}
		n, err := f.feed(ctx, v, int(room))
		if err != nil {
			return false, err
		}
		if n == int(room) && int64(n) < v.backlog {
			more = true
		}
	}
	return more, nil
}

// withOp runs fn holding the campaign's op lock; when another holds it, it
// skips fn (the next pass tries again).
func (f *Feeder) withOp(ctx context.Context, name string, fn func() error) error {
	k := keysFor(name)
	ok, err := tryLock(ctx, f.rdb, k.op, f.token, opTTL)
	if err != nil || !ok {
		return err
	}
	defer unlock(f.rdb, k.op, f.token)
	return fn()
}

// feed moves up to room rows of one campaign into asynq.
//
// Order makes it crash-safe: the rows stay in the backlog until every one
// of them is queued; each task enters the window before it is queued, so
// its end always finds it there. A crash in between replays the batch;
// asynq refuses the tasks already queued (same task ID), and those are
// not counted as duplicates.
func (f *Feeder) feed(ctx context.Context, v view, room int) (int, error) {
	k := keysFor(v.name)
	ok, err := tryLock(ctx, f.rdb, k.op, f.token, opTTL)
	if err != nil || !ok {
		return 0, err // a pause or cancel is at work; next pass
	}
	defer unlock(f.rdb, k.op, f.token)

	rows, replay, running, err := claimBatch(ctx, f.rdb, k, room)
	if err != nil {
		return 0, fmt.Errorf("campaign %s: claim rows: %w", v.name, err)
	}
	if !running {
		return 0, nil // paused or cancelled meanwhile
	}
	if len(rows) == 0 {
		return 0, nil
	}
	type item struct {
		id, row string
		task    *asynq.Task
		added   *redis.BoolCmd
	}
	items := make([]item, 0, len(rows))
	unusable := 0
	base := tasks.Recall{SDKAppID: f.cfg.SDKAppID, Campaign: v.name, RequestedBy: v.m.requestedBy, Reason: v.m.reason}
	for _, s := range rows {
		r, err := decodeRow(s)
		if err == nil {
			var t *asynq.Task
			var id string
			if t, id, err = r.task(base, f.cfg.Task); err == nil {
				items = append(items, item{id: id, row: s, task: t})
				continue
			}
		}
		unusable++ // validated at import: only a corrupted backlog gets here
		f.log.ErrorContext(ctx, "campaign row cannot become a task; counted as unaccounted", "campaign", v.name, "error", err)
	}
	pipe := f.rdb.Pipeline()
	for i := range items {
		items[i].added = pipe.HSetNX(ctx, k.window, items[i].id, items[i].row)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("campaign %s: open the window: %w", v.name, err)
	}
	// One round trip per task: queued feedEnqueueWidth at a time, or a
	// group campaign (ten seqs a call, 2,000 tasks/s at the cap) would be
	// fed slower than it is called.
	// A row twice in one batch is queued once, by its first copy (the one
	// whose window entry this batch added): the later copies are conflicts
	// without asking, as they would be one after another.
	errs := make([]error, len(items))
	var send []int
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		if seen[it.id] {
			errs[i] = asynq.ErrTaskIDConflict
			continue
		}
		seen[it.id] = true
		send = append(send, i)
	}
	if err := fanout.Each(ctx, len(send), feedEnqueueWidth, func(ctx context.Context, j int) error {
		i := send[j]
		_, errs[i] = f.client.EnqueueContext(ctx, items[i].task)
		return nil
	}); err != nil {
		// Stopped before every task was tried: the batch stays claimed and
		// the next pass replays it.
		return 0, fmt.Errorf("campaign %s: queue a batch: %w", v.name, err)
	}
	dups := 0
	var drop []any
	for i, it := range items {
		err := errs[i]
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict):
			// Queued already: by an earlier copy of this batch (replay),
			// by a duplicate row of this campaign, or by another campaign
			// (asynq task IDs are unique per queue, so an urgent recall of
			// the same message does not collide). Only the window entry this
			// batch added goes; the task's end is counted where it belongs.
			if it.added.Val() {
				drop = append(drop, it.id)
			}
			if !replay {
				dups++
			}
		case err != nil:
			// The batch stays claimed; the next pass replays it.
			return 0, fmt.Errorf("campaign %s: queue %s: %w", v.name, it.id, err)
		}
	}
	if err := commitBatch(ctx, f.rdb, k, len(rows), dups, unusable, drop); err != nil {
		return 0, fmt.Errorf("campaign %s: commit a batch: %w", v.name, err)
	}
	return len(rows), nil
}

// markDone marks a running campaign done once nothing of it is left, and
// takes it out of the active set.
func markDone(ctx context.Context, rdb redis.UniversalClient, name string, now time.Time) error {
	done, err := finishIfEmpty(ctx, rdb, keysFor(name), now)
	if err != nil {
		return fmt.Errorf("campaign %s: mark done: %w", name, err)
	}
	if done {
		if err := leaveActive(ctx, rdb, name); err != nil {
			return fmt.Errorf("campaign %s: mark done: %w", name, err)
		}
	}
	return nil
}

// leaveActive takes a done or cancelled campaign out of the active set,
// but for a cancelled one with tasks in its window (still being called
// when Cancel stopped waiting, or a dead letter run again by hand), which
// the feeder watches until they end. An import may reopen a done campaign
// (importBatchScript), and a dead letter run again by hand may reopen it
// or come back to a cancelled campaign's window (recordScript), and add it
// back just before the SREM; so the campaign is read again after it, and
// one that is no longer done, or is cancelled with tasks in its window,
// goes back in.
func leaveActive(ctx context.Context, rdb redis.UniversalClient, name string) error {
	if err := rdb.SRem(ctx, activeKey, name).Err(); err != nil {
		return err
	}
	k := keysFor(name)
	pipe := rdb.Pipeline()
	state := pipe.HGet(ctx, k.meta, metaState)
	win := pipe.HLen(ctx, k.window)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if st := State(state.Val()); st == StateRunning || st == StatePaused || (st == StateCancelled && win.Val() > 0) {
		return rdb.SAdd(ctx, activeKey, name).Err()
	}
	return nil
}

// maybeFindReruns runs findQueuedReruns every SyncInterval, before the
// pass reads the active campaigns (a done campaign it reopens is among
// them), looking at a window's worth of each bulk queue's head.
func (f *Feeder) maybeFindReruns(ctx context.Context) error {
	now := f.cfg.Now()
	if now.Sub(f.looked) < f.cfg.SyncInterval {
		return nil
	}
	f.looked = now
	n, err := findQueuedReruns(ctx, f.rdb, f.insp, f.cfg.SDKAppID, f.cfg.Window, f.lookedUp)
	if n > 0 {
		f.log.InfoContext(ctx, "dead letters run again by hand in asynq are queued; taken back into their campaigns", "tasks", n)
	}
	return err
}

// maybeSync runs syncWindow on the campaign every SyncInterval.
func (f *Feeder) maybeSync(ctx context.Context, v view) error {
	now := f.cfg.Now()
	if now.Sub(f.synced[v.name]) < f.cfg.SyncInterval {
		return nil
	}
	f.synced[v.name] = now
	return f.withOp(ctx, v.name, func() error {
		n, err := syncWindow(ctx, f.rdb, f.insp, v.name, v.m.sdkAppID)
		if n > 0 {
			f.log.InfoContext(ctx, "campaign tasks changed by hand in asynq (or ended without a record); counted", "campaign", v.name, "tasks", n)
		}
		return err
	})
}
