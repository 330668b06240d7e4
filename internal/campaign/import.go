package campaign

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/tasks"
)

// Defaults of ImportConfig.
const (
	// DefaultImportBatch is how many rows one round trip pushes, together
	// with the checkpoint that makes a re-run skip them.
	DefaultImportBatch = 1000
	// DefaultProgressEvery is how often Progress is called.
	DefaultProgressEvery = 200 * time.Millisecond
)

// Input is a campaign file opened for reading, its format decided.
type Input struct {
	// Format is the format the input is read as.
	Format Format
	// FormatHow says how the format was decided, e.g. "by its extension .csv".
	FormatHow string
	// Source names the input: a path, or "-" for stdin.
	Source string

	counter *countingReader
	records recordReader
}

// OpenInput decides the format of r (see FormatAuto) and reads the CSV
// header. It returns an error wrapping ErrBadInput when the input cannot
// be a campaign file.
func OpenInput(r io.Reader, source string, f Format) (*Input, error) {
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	format, how, err := detectFormat(br, source, f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	rr, err := newRecordReader(br, format)
	if err != nil {
		return nil, err
	}
	return &Input{Format: format, FormatHow: how, Source: source, counter: cr, records: rr}, nil
}

// BytesRead is how many bytes of the input have been read so far.
func (in *Input) BytesRead() int64 { return in.counter.n.Load() }

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// ImportConfig configures Import.
type ImportConfig struct {
	// Redis holds the campaigns. Required.
	Redis redis.UniversalClient
	// Name names the campaign; see ValidateName. Required.
	Name string
	// SDKAppID is the app whose messages are recalled. Required.
	SDKAppID uint64
	// RequestedBy and Reason are kept with every task of the campaign.
	// Optional; a re-run keeps those of the first run.
	RequestedBy, Reason string
	// Rejects receives each record that is not queued, in input order.
	// Optional. An error from it stops the import.
	Rejects func(Reject) error
	// Progress is called every ProgressEvery and once at the end. Optional.
	Progress func(ImportProgress)
	// ProgressEvery: default DefaultProgressEvery.
	ProgressEvery time.Duration
	// BatchSize: default DefaultImportBatch.
	BatchSize int
	// Now is the clock of the campaign's creation time. Default time.Now.
	Now func() time.Time
}

// ImportProgress is how far an import is.
type ImportProgress struct {
	// Lines of the input read so far: the header, blank lines and every
	// line of every record. Each is part of a row (new or already queued),
	// of a reject, or blank: an import accounts for every line it read.
	Lines int64
	// Records read so far (rows and rejects).
	Records int64
	// New rows pushed to the backlog by this run (durable).
	New int64
	// Already: rows an earlier run had pushed, skipped.
	Already int64
	// Rejected records.
	Rejected int64
	// Bytes of input read.
	Bytes int64
}

// ImportResult says what an import did.
type ImportResult struct {
	ImportProgress
	// Created: this run created the campaign.
	Created bool
	// Resumed: an earlier, interrupted run had pushed rows; they were
	// skipped (Already) and only the rest was pushed.
	Resumed bool
	// Total is the number of rows in the campaign.
	Total int64
	// Reopened: the campaign was done, and the new rows of this run made
	// it running again (rows appended to its file, the same start run
	// again); it is done again once they have ended.
	Reopened bool
}

// Import reads in and appends its valid rows to the campaign's backlog,
// creating the campaign if needed. Memory stays flat whatever the input's
// size: rows are streamed in batches, each pushed with a checkpoint in one
// script call. A re-run after a crash reads the input again, skips the rows
// the checkpoint covers (checking that they are the same rows) and pushes
// the rest, so every row is queued exactly once. So does a re-run with
// rows appended to the input: a done campaign is running again for the
// new rows (Reopened), and done again once they have ended.
//
// Errors: ErrBadName, ErrOtherApp, ErrState (the campaign was cancelled),
// ErrInputChanged, ErrConcurrentImport, a Rejects error, the input's read
// error, the Redis error, or ctx's error; all wrapped. What was pushed
// before an error stays pushed and checkpointed.
func Import(ctx context.Context, cfg ImportConfig, in *Input) (ImportResult, error) {
	if err := ValidateName(cfg.Name); err != nil {
		return ImportResult{}, err
	}
	if cfg.Redis == nil || cfg.SDKAppID == 0 {
		return ImportResult{}, errors.New("campaign: ImportConfig.Redis and SDKAppID are required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultImportBatch
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = DefaultProgressEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := keysFor(cfg.Name)
	rec, created, err := createCampaign(ctx, cfg, k, in)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Created: created, Resumed: rec.importRows > 0 && !rec.importDone}
	if err := importable(cfg.Name, rec, cfg.SDKAppID); err != nil {
		return res, err
	}
	if err := cfg.Redis.SAdd(ctx, indexKey, cfg.Name).Err(); err != nil {
		return res, fmt.Errorf("campaign %s: add to the index: %w", cfg.Name, err)
	}
	if rec.state != StateDone {
		if err := activate(ctx, cfg.Redis, cfg.Name); err != nil {
			return res, err
		}
	}

	im := &importer{cfg: cfg, k: k, in: in, rec: rec}
	err = im.run(ctx)
	res.ImportProgress = im.progress()
	res.Total = res.Already + res.New
	res.Reopened = im.reopened
	return res, err
}

// CheckImport says, before any input is read, whether Import into the
// campaign name of app sdkAppID would be refused at once: ErrOtherApp (it
// belongs to another app) or ErrState (it was cancelled), wrapped, as
// Import returns them. A campaign that does not exist yet can be imported
// into (nil). Import checks again itself.
func CheckImport(ctx context.Context, rdb redis.UniversalClient, name string, sdkAppID uint64) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	rec, err := readMeta(ctx, rdb, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return importable(name, rec, sdkAppID)
}

// importable refuses an import into rec, the campaign name's record, of
// another app than its own or after it was cancelled.
func importable(name string, rec meta, sdkAppID uint64) error {
	if rec.sdkAppID != sdkAppID {
		return fmt.Errorf("campaign %s: %w %d, not %d: pick another name", name, ErrOtherApp, rec.sdkAppID, sdkAppID)
	}
	if rec.state == StateCancelled {
		return fmt.Errorf("campaign %s: %w: it was cancelled; start a new campaign under another name", name, ErrState)
	}
	return nil
}

// activate puts the campaign in the active set, where the feeder looks.
func activate(ctx context.Context, rdb redis.UniversalClient, name string) error {
	if err := rdb.SAdd(ctx, activeKey, name).Err(); err != nil {
		return fmt.Errorf("campaign %s: add to the active campaigns: %w", name, err)
	}
	return nil
}

// createCampaign creates the campaign's record unless it exists, and
// returns it.
func createCampaign(ctx context.Context, cfg ImportConfig, k keys, in *Input) (meta, bool, error) {
	created, err := createMeta(ctx, cfg.Redis, k, cfg.Name, cfg.SDKAppID, cfg.Now(), in.Source, in.Format, cfg.RequestedBy, cfg.Reason)
	if err != nil {
		return meta{}, false, fmt.Errorf("campaign %s: create: %w", cfg.Name, err)
	}
	m, err := readMeta(ctx, cfg.Redis, cfg.Name)
	if err != nil {
		return meta{}, false, err
	}
	return m, created, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type importer struct {
	cfg ImportConfig
	k   keys
	in  *Input
	rec meta

	lines, records, fresh, already, rejected atomic.Int64
	reopened                                 bool // a push reopened the done campaign
}

type batch struct {
	rows     []any // ARGV tail: encoded rows
	lastLine int
	crc      uint32
	rejected int64
}

func (im *importer) progress() ImportProgress {
	return ImportProgress{Lines: im.lines.Load(), Records: im.records.Load(), New: im.fresh.Load(), Already: im.already.Load(),
		Rejected: im.rejected.Load(), Bytes: im.in.BytesRead()}
}

func (im *importer) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan batch, 2) // parsing runs one or two batches ahead of Redis
	readErr := make(chan error, 1)
	go func() {
		err := im.read(ctx, batches)
		close(batches)
		readErr <- err
	}()

	stopProgress := im.reportProgress(ctx)
	defer stopProgress()

	rows := im.rec.importRows
	var pushErr error
	for b := range batches {
		if pushErr != nil {
			continue // drain so the reader ends
		}
		next := rows + int64(len(b.rows))
		v, err := pushImportBatch(ctx, im.cfg.Redis, im.k, rows, next, b.lastLine, b.crc, b.rejected, b.rows)
		if err == nil {
			err = im.scriptErr(v)
		}
		if err != nil {
			pushErr = fmt.Errorf("campaign %s: push rows: %w", im.cfg.Name, err)
			cancel(pushErr)
			continue
		}
		rows = next
		im.fresh.Add(int64(len(b.rows)))
		if v[1] == string(StateDone) {
			// The push made the done campaign running again. Into the
			// active set after the push, never before: the feeder takes
			// a done campaign out, then reads its state again.
			im.reopened = true
			if err := activate(ctx, im.cfg.Redis, im.cfg.Name); err != nil {
				pushErr = fmt.Errorf("%w: the new rows are kept; run the same command again so that they are fed", err)
				cancel(pushErr)
			}
		}
	}
	if err := <-readErr; pushErr == nil && err != nil {
		return err
	}
	if pushErr != nil {
		return pushErr
	}
	v, err := finishImport(ctx, im.cfg.Redis, im.k, rows, im.rejected.Load(), im.cfg.Now())
	if err == nil {
		err = im.scriptErr(v)
	}
	if err != nil {
		return fmt.Errorf("campaign %s: finish the import: %w", im.cfg.Name, err)
	}
	return nil
}

func (im *importer) scriptErr(v []string) error {
	if len(v) != 2 {
		return fmt.Errorf("unexpected script answer %q", v)
	}
	switch v[0] {
	case answerOK:
		return nil
	case answerState:
		return fmt.Errorf("%w: the campaign is %s (cancelled while importing?)", ErrState, v[1])
	case answerMoved:
		return fmt.Errorf("%w: the checkpoint moved to %s rows under this run: let the other `campaign start %s` finish, then run again", ErrConcurrentImport, v[1], im.cfg.Name)
	}
	return fmt.Errorf("unexpected script answer %q", v)
}

// reportProgress calls Progress every ProgressEvery until stopped, then once more.
func (im *importer) reportProgress(ctx context.Context) func() {
	if im.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(im.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				im.cfg.Progress(im.progress())
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		im.cfg.Progress(im.progress())
	}
}

// read parses and validates records, skips the rows an earlier run pushed
// (checking they are the same), reports rejects and sends batches.
func (im *importer) read(ctx context.Context, out chan<- batch) error {
	ck := im.rec
	var crc uint32 // over every accepted row, in order
	var seen int64 // accepted rows so far
	verified := ck.importRows == 0
	verify := func() error {
		if seen != ck.importRows || crc != ck.importCRC {
			return fmt.Errorf("campaign %s: %w: the first run had queued %d rows up to line %d, this input has %d there (or other rows): give the same input, or use another --name",
				im.cfg.Name, ErrInputChanged, ck.importRows, ck.importLine, seen)
		}
		verified = true
		return nil
	}
	base := tasks.Recall{SDKAppID: im.cfg.SDKAppID, Campaign: im.cfg.Name, RequestedBy: ck.requestedBy, Reason: ck.reason}
	b := batch{rows: make([]any, 0, im.cfg.BatchSize)}
	var buf []byte
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		r, err := im.in.records.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// Queue what was read before the input failed, then stop.
			if verified && len(b.rows) > 0 {
				b.crc, b.rejected = crc, im.rejected.Load()
				select {
				case out <- b:
				case <-ctx.Done():
				}
			}
			return fmt.Errorf("read %s: %w: nothing after line %d was read; fix the input and run the same command again", im.in.Source, err, im.lines.Load())
		}
		im.lines.Store(int64(r.last))
		if r.blank {
			continue
		}
		im.records.Add(1)
		if !r.check(base) {
			im.rejected.Add(1)
			if im.cfg.Rejects != nil {
				if err := im.cfg.Rejects(rejectOf(r)); err != nil {
					return err
				}
			}
			continue
		}
		buf = r.row.appendTo(buf[:0])
		if !verified && int64(r.line) > ck.importLine {
			if err := verify(); err != nil {
				return err
			}
		}
		crc = crc32.Update(crc, castagnoli, buf)
		seen++
		if !verified {
			im.already.Add(1)
			continue
		}
		b.rows = append(b.rows, string(buf))
		b.lastLine = r.line
		if len(b.rows) == im.cfg.BatchSize {
			b.crc, b.rejected = crc, im.rejected.Load()
			select {
			case out <- b:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			b = batch{rows: make([]any, 0, im.cfg.BatchSize)}
		}
	}
	if !verified {
		if err := verify(); err != nil {
			return err
		}
	}
	if len(b.rows) > 0 {
		b.crc, b.rejected = crc, im.rejected.Load()
		select {
		case out <- b:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// check validates a record read as a row (unless reading it already
// rejected it) as the task it becomes with base's app, notes and campaign;
// it reports whether the row is queued, else its reject says why not.
func (r *record) check(base tasks.Recall) bool {
	if r.reject == "" {
		var err error
		r.row, err = r.row.validate(base)
		r.reject = rejectReason(err)
	}
	return r.reject == ""
}

// RowsCheck is what ImportRows would do with rows.
type RowsCheck struct {
	// C2C and Group: the one-to-one and group messages it would queue.
	C2C, Group int
	// Rejected: the rows it would refuse.
	Rejected int
}

// CheckRows validates rows as ImportRows does, and queues nothing: cfg's
// Rejects (optional) receives each row the import would refuse, and its
// error stops the check. Only SDKAppID, Name, RequestedBy, Reason and
// Rejects of cfg are used. It is --dry-run's count of a query campaign.
func CheckRows(cfg ImportConfig, rows []Row) (RowsCheck, error) {
	var c RowsCheck
	base := tasks.Recall{SDKAppID: cfg.SDKAppID, Campaign: cfg.Name, RequestedBy: cfg.RequestedBy, Reason: cfg.Reason}
	rr := &rowReader{rows: rows}
	for {
		r, err := rr.next()
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		switch {
		case !r.check(base):
			c.Rejected++
			if cfg.Rejects != nil {
				if err := cfg.Rejects(rejectOf(r)); err != nil {
					return c, err
				}
			}
		case r.row.kind == kindGroup:
			c.Group++
		default:
			c.C2C++
		}
	}
}

// rejectReason turns a validation error into a reject's reason: the field
// and what to do.
func rejectReason(err error) string {
	if err == nil {
		return ""
	}
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		return fe.Field + ": " + fe.Reason
	}
	return err.Error()
}
