package campaign

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
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
	paused, err := bulkPaused(ctx, m.rdb)
	if err != nil {
		return fmt.Errorf("read the bulk queue's state: %w", err)
	}
	feeding := map[uint64]bool{}
	for i := range all {
		s := &all[i]
		s.QueuePaused = paused
		if s.State != StateRunning || s.Remaining() == 0 {
			continue
		}
		if paused {
			s.Waiting = fmt.Sprintf("asynq's queue %s is paused (from asynqmon or `asynq queue pause`): nothing is fed or called until it is unpaused there (or `asynq queue unpause %s`)",
				tasks.QueueBulk, tasks.QueueBulk)
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
			s.Waiting = fmt.Sprintf("no worker of app %d is running, so nothing is fed: start `recallq worker` with TIM_SDKAPPID=%d", s.SDKAppID, s.SDKAppID)
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

// PauseResult says what pause did.
type PauseResult struct {
	// Returned: tasks taken out of asynq (queued or waiting for a retry)
	// and put back at the head of the backlog.
	Returned int
	// Running: tasks being called when the pause came; they end normally.
	Running int
	// AlreadyPaused: the campaign was paused before.
	AlreadyPaused bool
}

// Pause stops feeding the campaign and takes every task of it that no
// worker has taken yet out of asynq, back to the head of its backlog. The
// Running ones (taken by a worker: being called, or waiting in the worker
// for a slot of the limiter; at most the workers' concurrency plus what they
// take during the sweep) are called and end normally; after them nothing
// of the campaign is called until Resume. Errors: ErrNotFound, ErrState
// (cancelled or done), ErrBusy, the Redis error; wrapped.
func (m *Manager) Pause(ctx context.Context, name string) (PauseResult, error) {
	moved, prev, err := m.setState(ctx, name, StatePaused, StateRunning, StatePaused)
	if err != nil {
		return PauseResult{}, err
	}
	if !moved {
		return PauseResult{}, fmt.Errorf("campaign %s: %w: it is %s", name, ErrState, prev)
	}
	res := PauseResult{AlreadyPaused: prev == StatePaused}
	k := keysFor(name)
	token := newToken()
	if err := waitLock(ctx, m.rdb, k.op, token, opTTL, m.cfg.OpWait); err != nil {
		return res, fmt.Errorf("campaign %s: paused, but its tasks in asynq could not be pulled back yet: %w", name, err)
	}
	defer unlock(m.rdb, k.op, token)
	if err := recoverParked(ctx, m.rdb, m.insp, name); err != nil {
		return res, err
	}
	// A batch cut short by a crashed feeder is still at the head of the
	// backlog: its tasks are only deleted, the rows are there already.
	md, err := readMeta(ctx, m.rdb, name)
	if err != nil {
		return res, err
	}
	inBacklog := map[string]bool{}
	if md.feeding > 0 {
		rows, err := m.rdb.LRange(ctx, k.backlog, 0, md.feeding-1).Result()
		if err != nil {
			return res, fmt.Errorf("campaign %s: read the backlog: %w", name, err)
		}
		for _, s := range rows {
			if id, ok := taskIDOf(md, s); ok {
				inBacklog[id] = true
			}
		}
	}
	win, err := m.rdb.HGetAll(ctx, k.window).Result()
	if err != nil {
		return res, fmt.Errorf("campaign %s: read the window: %w", name, err)
	}
	park := map[string]any{}
	for id, row := range win {
		if !inBacklog[id] {
			park[id] = row
		}
	}
	if len(park) > 0 {
		// Parked first: a pause that dies after deleting a task but before
		// putting its row back leaves the row here, and the next pause,
		// cancel or feeder pass puts it back.
		if err := m.rdb.HSet(ctx, k.parked, park).Err(); err != nil {
			return res, fmt.Errorf("campaign %s: park the window: %w", name, err)
		}
	}
	var deleted, kept []any
	for id := range win {
		err := m.insp.DeleteTask(tasks.QueueBulk, id)
		switch {
		case err == nil, errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			if inBacklog[id] {
				if err := m.rdb.HDel(ctx, k.window, id).Err(); err != nil {
					return res, fmt.Errorf("campaign %s: %w", name, err)
				}
				continue
			}
			deleted = append(deleted, id)
		default: // active: it ends on its own
			res.Running++
			if !inBacklog[id] {
				kept = append(kept, id)
			}
		}
	}
	n, err := unpark(ctx, m.rdb, name, deleted, kept)
	res.Returned = n
	return res, err
}

// recoverParked finishes a pause that died midway: a parked task that is
// gone from asynq has its row put back; one still there stays.
func recoverParked(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, name string) error {
	ids, err := rdb.HKeys(ctx, keysFor(name).parked).Result()
	if err != nil || len(ids) == 0 {
		return err
	}
	var gone, there []any
	for _, id := range ids {
		_, err := insp.GetTaskInfo(tasks.QueueBulk, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			gone = append(gone, id)
		case err != nil:
			return fmt.Errorf("campaign %s: look up parked task %s: %w", name, id, err)
		default:
			there = append(there, id)
		}
	}
	_, err = unpark(ctx, rdb, name, gone, there)
	return err
}

// taskIDOf is the task ID a stored row becomes.
func taskIDOf(md meta, s string) (string, bool) {
	r, err := decodeRow(s)
	if err != nil {
		return "", false
	}
	return tasks.Recall{SDKAppID: md.sdkAppID, FromAccount: r.from, ToAccount: r.to, MsgKey: r.msgKey}.TaskID(), true
}

// Resume feeds a paused campaign again. Errors: ErrNotFound, ErrState
// (cancelled or done); wrapped. Resuming a running campaign does nothing.
func (m *Manager) Resume(ctx context.Context, name string) (wasPaused bool, err error) {
	moved, prev, err := m.setState(ctx, name, StateRunning, StatePaused, StateRunning)
	if err != nil {
		return false, err
	}
	if !moved {
		return false, fmt.Errorf("campaign %s: %w: it is %s", name, ErrState, prev)
	}
	return prev == StatePaused, nil
}

// CancelResult says what cancel removed.
type CancelResult struct {
	// Backlog: rows removed before they were handed to asynq.
	Backlog int64
	// Queued: tasks removed from asynq's queue before they were called.
	Queued int
	// Retrying: tasks removed while waiting for a retry (called once or
	// more, failed, not to be called again).
	Retrying int
	// Ended: tasks that were being called and ended while cancel waited.
	Ended int
	// StillRunning: tasks still being called when cancel stopped waiting;
	// they end normally and are counted.
	StillRunning int
	// AlreadyCancelled: the campaign was cancelled before.
	AlreadyCancelled bool
}

// Removed is every row that will not be called (again) because of cancel.
func (r CancelResult) Removed() int64 { return r.Backlog + int64(r.Queued) + int64(r.Retrying) }

// Cancel removes every row of the campaign that has not been called:
// its backlog and its tasks queued in asynq, and the retries of tasks that
// failed. Tasks being called end normally (cancel waits up to CancelWait
// for them, then removes their retries too). It can be run again; a second
// run removes what the first could not. Errors: ErrNotFound, ErrState (the
// campaign is done), ErrBusy, the Redis error; wrapped.
func (m *Manager) Cancel(ctx context.Context, name string) (CancelResult, error) {
	moved, prev, err := m.setState(ctx, name, StateCancelled, StateRunning, StatePaused, StateCancelled)
	if err != nil {
		return CancelResult{}, err
	}
	if !moved {
		return CancelResult{}, fmt.Errorf("campaign %s: %w: it is %s, nothing is left to cancel", name, ErrState, prev)
	}
	res := CancelResult{AlreadyCancelled: prev == StateCancelled}
	k := keysFor(name)
	token := newToken()
	if err := waitLock(ctx, m.rdb, k.op, token, opTTL, m.cfg.OpWait); err != nil {
		return res, fmt.Errorf("campaign %s: cancelled (no more rows are fed), but its queued tasks could not be removed yet: %w", name, err)
	}
	defer unlock(m.rdb, k.op, token)
	if err := recoverParked(ctx, m.rdb, m.insp, name); err != nil {
		return res, err
	}
	n, err := dropBacklog(ctx, m.rdb, k)
	if err != nil {
		return res, fmt.Errorf("campaign %s: drop the backlog: %w", name, err)
	}
	res.Backlog = n
	ids, err := m.rdb.HKeys(ctx, k.window).Result()
	if err != nil {
		return res, fmt.Errorf("campaign %s: read the window: %w", name, err)
	}
	running, err := m.removeTasks(ctx, name, ids, &res)
	if err != nil {
		return res, err
	}
	deadline := time.Now().Add(m.cfg.CancelWait)
	for len(running) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var still []string
		for _, id := range running {
			in, err := m.rdb.HExists(ctx, k.window, id).Result()
			if err != nil {
				return res, fmt.Errorf("campaign %s: %w", name, err)
			}
			if !in {
				res.Ended++ // its end was recorded
				continue
			}
			still = append(still, id)
		}
		if running, err = m.removeTasks(ctx, name, still, &res); err != nil {
			return res, err
		}
	}
	res.StillRunning = len(running)
	if err := m.rdb.SRem(ctx, activeKey, name).Err(); err != nil {
		return res, fmt.Errorf("campaign %s: %w", name, err)
	}
	return res, nil
}

// removeTasks deletes the tasks from asynq's bulk queue and counts them as
// cancelled; it returns those that are being called.
func (m *Manager) removeTasks(ctx context.Context, name string, ids []string, res *CancelResult) (running []string, err error) {
	k := keysFor(name)
	for _, id := range ids {
		err := m.insp.DeleteTask(tasks.QueueBulk, id)
		switch {
		case err == nil, errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		default:
			running = append(running, id) // active
			continue
		}
		v, err := countCancelled(ctx, m.rdb, k, id)
		if err != nil {
			return nil, fmt.Errorf("campaign %s: count a cancelled task: %w", name, err)
		}
		switch v {
		case cancelWasQueued:
			res.Queued++
		case cancelWasRetrying:
			res.Retrying++
		}
	}
	return running, nil
}

// CodeMeaning is what a dead letter's code means, for people: the outcome
// table's meaning, or what no answer (worker.NoAnswer) was.
func CodeMeaning(code int) string {
	if code == worker.NoAnswer {
		return "no answer (network error, timeout or HTTP error)"
	}
	return worker.Classify(code).Meaning
}

// ExportHeader is the header of `campaign export`. The first three columns
// are those of a campaign file: fix what made them fail and the export can
// be imported again as a campaign of its own.
var ExportHeader = []string{colFrom, colTo, colMsgKey, "code", "meaning", "detail", "time"}

// exportChunk is how many audit rows one round trip reads.
const exportChunk = 1000

// Export writes every dead letter of the campaign as CSV to w, in the
// order they happened, and returns how many. Every cell is safe to open in
// a spreadsheet (see neutralise). It reads recallq's own audit,
// which keeps every row however many (asynq's archive keeps at most 10,000
// tasks and trims the rest). A dead letter that was run again by hand and
// then ended otherwise is not one any more, and is left out; ExportHistory
// writes it too.
func (m *Manager) Export(ctx context.Context, name string, w io.Writer) (int, error) {
	return m.export(ctx, name, w, false)
}

// ExportHistory writes the whole audit: every dead letter, also those run
// again later, and a row for each such re-run that ended otherwise (code
// 0 or 20023, the detail saying so).
func (m *Manager) ExportHistory(ctx context.Context, name string, w io.Writer) (int, error) {
	return m.export(ctx, name, w, true)
}

func (m *Manager) export(ctx context.Context, name string, w io.Writer, all bool) (int, error) {
	md, err := readMeta(ctx, m.rdb, name)
	if err != nil {
		return 0, err
	}
	// Campaigns created before the dead letters were indexed list all.
	all = all || md.audit < auditIndexed
	k := keysFor(name)
	cw := csv.NewWriter(w)
	if err := cw.Write(ExportHeader); err != nil {
		return 0, err
	}
	n := 0
	for start := int64(0); ; start += exportChunk {
		rows, err := m.rdb.LRange(ctx, k.dead, start, start+exportChunk-1).Result()
		if err != nil {
			return n, fmt.Errorf("campaign %s: read the audit: %w", name, err)
		}
		var current []*redis.StringCmd
		if !all {
			pipe := m.rdb.Pipeline()
			for _, s := range rows {
				a, err := decodeAudit(s)
				if err != nil {
					return n, fmt.Errorf("campaign %s: audit row %d: %w", name, n+1, err)
				}
				id := tasks.Recall{SDKAppID: md.sdkAppID, FromAccount: a.from, ToAccount: a.to, MsgKey: a.msgKey}.TaskID()
				current = append(current, pipe.HGet(ctx, k.deadIDs, id))
			}
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return n, fmt.Errorf("campaign %s: read the dead letters: %w", name, err)
			}
		}
		for i, s := range rows {
			a, err := decodeAudit(s)
			if err != nil {
				return n, fmt.Errorf("campaign %s: audit row %d: %w", name, n+1, err)
			}
			if !all && !isCurrentDead(current[i].Val(), start+int64(i)) {
				continue
			}
			code, _ := strconv.Atoi(a.code)
			if err := cw.Write(neutraliseAll([]string{a.from, a.to, a.msgKey, a.code, CodeMeaning(code), a.detail, a.at.Format(time.RFC3339Nano)})); err != nil {
				return n, err
			}
			n++
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, err
		}
		if len(rows) < exportChunk {
			return n, nil
		}
	}
}

// isCurrentDead reports whether the dead_ids entry d ("CODE INDEX ROW")
// names the audit row at index: the task is a dead letter now, and this is
// the row of its latest dead-lettering.
func isCurrentDead(d string, index int64) bool {
	_, rest, ok := strings.Cut(d, " ")
	if !ok {
		return false
	}
	idx, _, ok := strings.Cut(rest, " ")
	return ok && idx == strconv.FormatInt(index, 10)
}
