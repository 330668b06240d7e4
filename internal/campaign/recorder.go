package campaign

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/recallq/recallq/worker"
)

// Defaults of RecorderConfig.
const (
	// DefaultRecordTimeout bounds one write of a task's end.
	DefaultRecordTimeout = 2 * time.Second
	// DefaultRecordAttempts is how many times a failed write is tried.
	DefaultRecordAttempts = 3
)

// maxDetail bounds the transport error kept in an audit row.
const maxDetail = 200

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	// Redis holds the campaigns. Required.
	Redis redis.UniversalClient
	// Timeout bounds one write. Default DefaultRecordTimeout.
	Timeout time.Duration
	// Attempts: default DefaultRecordAttempts.
	Attempts int
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Now stamps audit rows. Default time.Now.
	Now func() time.Time
}

// Recorder keeps each campaign's counts and dead-letter audit as its tasks
// end. It is a worker.Recorder: add it to HandlerConfig.Recorder (with
// worker.Recorders when there are others).
//
// It writes synchronously, before the handler returns to asynq, each event
// of a campaign task that ends or waits for a retry; events of other tasks
// and calls repeated in place cost nothing. Events that come while a write
// is on its way wait for it to end and then go together, one script call
// per campaign (a group commit): the ten tasks of one group_msg_recall call
// settle at once, and cost two round trips rather than ten. Nothing waits
// on purpose, so a lone event costs one round trip, as before; and nothing
// is ever buffered past the handler's return, so no stop, graceful or not,
// loses a count: a worker killed between the write and asynq's
// acknowledgement runs the task again, and the second end is not counted
// (see the package comment).
type Recorder struct {
	cfg  RecorderConfig
	warn rate.Sometimes

	mu      sync.Mutex
	queue   []*pendingEnd // events waiting for the next write
	writing bool          // a write is on its way; its writer hands over to queue[0]
}

// maxRecordBatch bounds the events of one script call.
const maxRecordBatch = 128

// pendingEnd is one event waiting for the write that carries it.
type pendingEnd struct {
	name string
	ev   endEvent
	done chan endResult // buffered: one message, ever
}

// endResult is what a waiting event learns: its write's error, or that it
// writes the next group itself.
type endResult struct {
	err  error
	lead bool
}

// NewRecorder applies the defaults.
func NewRecorder(cfg RecorderConfig) *Recorder {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRecordTimeout
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultRecordAttempts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Recorder{cfg: cfg, warn: rate.Sometimes{First: 1, Interval: 10 * time.Second}}
}

// Record implements worker.Recorder.
func (r *Recorder) Record(ev worker.Event) {
	name := ev.Recall.Campaign
	if name == "" || ValidateName(name) != nil {
		return
	}
	fate, ok := fateRecords[ev.Fate]
	if !ok { // called again at once: nothing changes
		return
	}
	var audit, rerun string
	auditRow := func(detail string) string { return encodeAudit(r.cfg.Now(), eventRow(ev), ev.Code, detail) }
	switch fate {
	case fieldRecalled, fieldAlreadyRecalled:
		rerun = auditRow(rerunDetail(fate))
	case fieldDeadLettered:
		detail := ""
		if ev.Err != nil {
			detail = ev.Err.Error()
		}
		audit = auditRow(detail)
	}
	p := &pendingEnd{name: name, done: make(chan endResult, 1),
		ev: endEvent{id: ev.TaskID, fate: fate, code: ev.Code, audit: audit, rerun: rerun}}
	if err := r.write(p); err != nil {
		r.warn.Do(func() {
			r.cfg.Logger.Warn("campaign: could not record a task's end; the feeder's reconciliation will count it as unaccounted",
				"campaign", name, "task_id", ev.TaskID, "fate", ev.Fate, "error", err)
		})
	}
}

// write records p, with whatever events queue up while a write is on its
// way: the first event finds no write going and writes at once; the ones
// that come meanwhile wait, and the writer, when done, hands the next write
// to the first of them, which takes them all.
func (r *Recorder) write(p *pendingEnd) error {
	r.mu.Lock()
	r.queue = append(r.queue, p)
	if r.writing {
		r.mu.Unlock()
		if res := <-p.done; !res.lead {
			return res.err
		}
		r.mu.Lock()
	} else {
		r.writing = true
	}
	group := r.queue
	r.queue = nil
	r.mu.Unlock()

	errs := r.writeGroup(group)
	var mine error
	for i, q := range group {
		if q == p {
			mine = errs[i]
		} else {
			q.done <- endResult{err: errs[i]}
		}
	}
	r.mu.Lock()
	if len(r.queue) > 0 {
		r.queue[0].done <- endResult{lead: true}
	} else {
		r.writing = false
	}
	r.mu.Unlock()
	return mine
}

// writeGroup writes the events of group, one script call per campaign
// (and per maxRecordBatch events), each tried up to Attempts times; errs[i]
// is the error of group[i].
func (r *Recorder) writeGroup(group []*pendingEnd) []error {
	errs := make([]error, len(group))
	byCampaign := map[string][]int{}
	var names []string
	for i, p := range group {
		if byCampaign[p.name] == nil {
			names = append(names, p.name)
		}
		byCampaign[p.name] = append(byCampaign[p.name], i)
	}
	for _, name := range names {
		idx, k := byCampaign[name], keysFor(name)
		for len(idx) > 0 {
			n := min(len(idx), maxRecordBatch)
			events := make([]endEvent, n)
			for j, i := range idx[:n] {
				events[j] = group[i].ev
			}
			var err error
			watch := false
			for attempt := 0; attempt < r.cfg.Attempts; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
				_, watch, err = recordEnds(ctx, r.cfg.Redis, k, events)
				cancel()
				if err == nil {
					// A write tried again may follow one that reopened the
					// campaign but whose answer was lost: put it back in
					// the active set all the same (the feeder takes out
					// one it has nothing to watch in).
					watch = watch || attempt > 0
					break
				}
			}
			for _, i := range idx[:n] {
				errs[i] = err
			}
			if watch {
				r.reactivate(name)
			}
			idx = idx[n:]
		}
	}
	return errs
}

// reactivate puts the campaign name, with a dead letter run again by hand
// back in its window, in the active set, so that the feeder watches the
// task in asynq and, when the campaign was done (running again now), marks
// it done again once the task has ended.
func (r *Recorder) reactivate(name string) {
	var err error
	for attempt := 0; attempt < r.cfg.Attempts; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
		err = activate(ctx, r.cfg.Redis, name)
		cancel()
		if err == nil {
			return
		}
	}
	r.cfg.Logger.Warn("campaign: a dead letter run again is back in the campaign's tasks, but the campaign could not be put back among the active campaigns; "+
		"its counts stay right while the task runs its course, but one deleted or archived by hand is not seen, and a done campaign is not marked done again: "+
		"for one that is running again, run `recallq campaign resume "+name+"`", "campaign", name, "error", err)
}

var _ worker.Recorder = (*Recorder)(nil)

// auditRow is one dead letter of the audit.
type auditRow struct {
	at     time.Time
	row    row
	code   string
	detail string
}

// encodeAudit is the audit row of the message r at at: its kind (as a
// stored row's, codec.go), then the time, r's three fields, the code and
// the detail, cut to maxDetail.
func encodeAudit(at time.Time, r row, code int, detail string) string {
	a, b, c := r.fields()
	return string(appendFields(appendKind(nil, r.kind), strconv.FormatInt(at.UnixMilli(), 10),
		a, b, c, strconv.Itoa(code), clip(detail)))
}

func decodeAudit(s string) (auditRow, error) {
	k, rest, err := cutKind([]byte(s))
	if err != nil {
		return auditRow{}, err
	}
	f, err := decodeFields(rest, 6)
	if err != nil {
		return auditRow{}, err
	}
	ms, _ := strconv.ParseInt(f[0], 10, 64)
	return auditRow{at: time.UnixMilli(ms).UTC(), row: rowOf(k, f[1], f[2], f[3]), code: f[4], detail: f[5]}, nil
}
