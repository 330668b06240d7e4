package campaign

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
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
// It writes synchronously, one script call (one round trip) per event of a
// campaign task that ends or waits for a retry, before the handler returns
// to asynq; events of other tasks and calls repeated in place cost nothing.
// At the app's cap of 200 calls/s that is at most 200 round trips a second
// across all workers, each well under a millisecond beside a call of tens of
// milliseconds; in exchange nothing is ever buffered, so no stop, graceful
// or not, loses a count: a worker killed between the write and asynq's
// acknowledgement runs the task again, and the second end is not counted
// (see the package comment).
type Recorder struct {
	cfg  RecorderConfig
	warn rate.Sometimes
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
		rerun = auditRow(detailRerunPrefix + strings.ReplaceAll(fate, "_", " "))
	case fieldDeadLettered:
		detail := ""
		if ev.Err != nil {
			detail = ev.Err.Error()
		}
		audit = auditRow(detail)
	}
	k := keysFor(name)
	var err error
	for attempt := 0; attempt < r.cfg.Attempts; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
		_, err = recordEnd(ctx, r.cfg.Redis, k, ev.TaskID, fate, ev.Code, audit, rerun)
		cancel()
		if err == nil {
			return
		}
	}
	r.warn.Do(func() {
		r.cfg.Logger.Warn("campaign: could not record a task's end; the feeder's reconciliation will count it as unaccounted",
			"campaign", name, "task_id", ev.TaskID, "fate", ev.Fate, "error", err)
	})
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
