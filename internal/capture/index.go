package capture

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Prefix starts every key of the index.
const Prefix = "recallq:cap:"

// Defaults of IndexConfig.
const (
	// DefaultRetention is how long a message stays queryable: Tencent's
	// default roaming time, after which its recall has little left to
	// remove.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultBucket is the span of one list. Each list expires Retention
	// after its bucket ends, so a message is kept between Retention and
	// Retention+Bucket; queries never return one older than Retention. A
	// list costs about 250 bytes of Redis besides its entries, so the
	// bucket is as long as trimming allows, to spread that cost thin.
	DefaultBucket = 24 * time.Hour
	// Shards is how many lists share an app's bucket, each holding the
	// messages of the senders that hash to it. Every entry names its
	// sender, so the cost of a message does not depend on how many its
	// sender sent (bench-capture: about 40 bytes for 11-byte UserIDs,
	// whether senders send one message a day or a hundred); a query reads
	// its sender's shard, 1/Shards of the app's messages in the window.
	// Fixed: the capture and every query must agree on it.
	Shards = 1024
	// DefaultBatch is the most messages one pipelined write carries.
	DefaultBatch = 512
	// DefaultWriters is how many pipelined writes may be in flight: two,
	// so that one batch fills while the other is on its way; more only
	// split the batches and cost system calls on both ends
	// (`recallq-lab bench-capture`, closed loop: 4 writers 20.0-24.9k/s,
	// 2 writers 23.9-29.4k/s, 1 writer 23.6-29.7k/s).
	DefaultWriters = 2
	// queryChunk is how many entries one LRANGE reads.
	queryChunk = 4096
)

// IndexConfig configures an Index.
type IndexConfig struct {
	// Redis holds the index. Required. Every key stands alone, so a
	// Cluster client works.
	Redis redis.UniversalClient
	// Retention: default DefaultRetention.
	Retention time.Duration
	// Bucket: default DefaultBucket; a whole number of seconds.
	Bucket time.Duration
	// Batch: default DefaultBatch.
	Batch int
	// Writers: default DefaultWriters.
	Writers int
	// Now is the clock of queries (what Retention cuts off). Default
	// time.Now.
	Now func() time.Time
}

// Index is the capture's index in Redis: for each app, bucket of time and
// shard of senders, a LIST of compact entries (the sender, then see
// appendEntry), written with RPUSH and EXPIREAT in pipelines, so trimming
// is Redis's own key expiry: no job ever scans the index.
//
//	recallq:cap:s:<sdkappid>:<bucket number>:<shard>   LIST of sender+entry
//
// The bucket number is MsgTime / Bucket (in seconds); the shard is the
// sender's FNV-1a hash modulo Shards. Queries also read the lists of the
// first release (one per sender, recallq:cap:<sdkappid>:<bucket>:<sender>,
// entries without the sender), which expire by themselves within the
// retention after an upgrade; nothing writes them any more.
type Index struct {
	rdb       redis.UniversalClient
	retention int64 // seconds
	bucket    int64 // seconds
	batch     int
	now       func() time.Time

	queue chan *write
	wg    sync.WaitGroup
	stop  chan struct{}
	once  sync.Once
}

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("capture: index closed")

// write is one message waiting for its pipeline.
type write struct {
	key   string
	entry []byte
	exp   int64 // EXPIREAT, Unix seconds
	done  chan error
}

// NewIndex applies the defaults and starts the writers. Close it when done.
func NewIndex(cfg IndexConfig) (*Index, error) {
	if cfg.Redis == nil {
		return nil, errors.New("capture: IndexConfig.Redis is required")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Bucket == 0 {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Writers <= 0 {
		cfg.Writers = DefaultWriters
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Retention < time.Second:
		return nil, fmt.Errorf("capture: Retention %v is under one second: use e.g. %v", cfg.Retention, DefaultRetention)
	case cfg.Bucket < time.Second || cfg.Bucket%time.Second != 0:
		return nil, fmt.Errorf("capture: Bucket %v is not a whole number of seconds: use e.g. %v", cfg.Bucket, DefaultBucket)
	}
	ix := &Index{
		rdb: cfg.Redis, retention: int64(cfg.Retention / time.Second), bucket: int64(cfg.Bucket / time.Second),
		batch: cfg.Batch, now: cfg.Now,
		queue: make(chan *write, cfg.Batch*cfg.Writers*2),
		stop:  make(chan struct{}),
	}
	for range cfg.Writers {
		ix.wg.Add(1)
		go ix.writer()
	}
	return ix, nil
}

// Retention is how long a message stays queryable.
func (ix *Index) Retention() time.Duration { return time.Duration(ix.retention) * time.Second }

// shardPrefix starts the keys of the sharded lists. Keys of the first
// release continue with the SDKAppID's digits, never with "s:".
const shardPrefix = Prefix + "s:"

// shardKey names the list of bucket n of app that holds sender's messages.
func shardKey(app uint64, n int64, sender string) string {
	b := make([]byte, 0, len(shardPrefix)+40)
	b = append(b, shardPrefix...)
	b = strconv.AppendUint(b, app, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(shardOf(sender)), 10)
	return string(b)
}

// shardOf is sender's shard: FNV-1a, 32 bits, modulo Shards.
func shardOf(sender string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(sender); i++ {
		h ^= uint32(sender[i])
		h *= 16777619
	}
	return h % Shards
}

// legacyKey names the first release's list of sender's messages in bucket
// n of app (read by queries only).
func legacyKey(app uint64, n int64, sender string) string {
	b := make([]byte, 0, len(Prefix)+32+len(sender))
	b = append(b, Prefix...)
	b = strconv.AppendUint(b, app, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, ':')
	b = append(b, sender...)
	return string(b)
}

// Add indexes m for app and returns once Redis has it, or with the error
// that kept it out (ctx's, ErrClosed or Redis's). A message whose bucket
// has already expired is not written.
func (ix *Index) Add(ctx context.Context, app uint64, m Message) error {
	n := floorDiv(m.Time, ix.bucket)
	start := n * ix.bucket
	e := appendString(make([]byte, 0, 28+len(m.From)+len(m.To)+len(m.GroupID)+len(m.TopicID)), m.From)
	w := &write{
		key:   shardKey(app, n, m.From),
		entry: appendEntry(e, m, start),
		exp:   start + ix.bucket + ix.retention,
		done:  make(chan error, 1),
	}
	select {
	case ix.queue <- w:
	case <-ix.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// writer takes what is queued, up to Batch messages, and writes it in one
// pipeline: an RPUSH per key (all of the key's entries at once) and one
// EXPIREAT per key. Every message of the batch learns the pipeline's
// outcome.
func (ix *Index) writer() {
	defer ix.wg.Done()
	batch := make([]*write, 0, ix.batch)
	for {
		batch = batch[:0]
		select {
		case w := <-ix.queue:
			batch = append(batch, w)
		case <-ix.stop:
			ix.drain()
			return
		}
	fill:
		for len(batch) < ix.batch {
			select {
			case w := <-ix.queue:
				batch = append(batch, w)
			default:
				break fill
			}
		}
		err := ix.flush(batch)
		for _, w := range batch {
			w.done <- err
		}
	}
}

// drain answers what is still queued at Close.
func (ix *Index) drain() {
	for {
		select {
		case w := <-ix.queue:
			w.done <- ErrClosed
		default:
			return
		}
	}
}

// flushTimeout bounds one pipeline.
const flushTimeout = 5 * time.Second

func (ix *Index) flush(batch []*write) error {
	type group struct {
		vals []any
		exp  int64
	}
	byKey := make(map[string]*group, len(batch))
	order := make([]string, 0, len(batch))
	for _, w := range batch {
		g, ok := byKey[w.key]
		if !ok {
			g = &group{exp: w.exp}
			byKey[w.key] = g
			order = append(order, w.key)
		}
		g.vals = append(g.vals, w.entry)
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	pipe := ix.rdb.Pipeline()
	for _, k := range order {
		g := byKey[k]
		pipe.RPush(ctx, k, g.vals...)
		pipe.ExpireAt(ctx, k, time.Unix(g.exp, 0))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("capture: write %d messages to the index: %w", len(batch), err)
	}
	return nil
}

// Close stops the writers; messages still queued get ErrClosed.
func (ix *Index) Close() error {
	ix.once.Do(func() { close(ix.stop) })
	ix.wg.Wait()
	return nil
}

// Query selects messages of one sender.
type Query struct {
	// SDKAppID is the app. Required.
	SDKAppID uint64
	// From is the sender. Required.
	From string
	// Since and Until bound MsgTime, both inclusive (Unix seconds are
	// compared). A zero Until means now. Since is raised to now -
	// Retention: older messages are not kept.
	Since, Until time.Time
	// To, if set, keeps only C2C messages to this recipient (and no group
	// messages).
	To string
}

// Each calls fn for every message of q, oldest bucket first, each
// message once (a callback Tencent delivered twice is reported once). It
// stops at fn's first error and returns it.
func (ix *Index) Each(ctx context.Context, q Query, fn func(Message) error) error {
	if q.SDKAppID == 0 || q.From == "" {
		return errors.New("capture: Query.SDKAppID and From are required")
	}
	now := ix.now().Unix()
	since, until := q.Since.Unix(), now
	if !q.Until.IsZero() {
		until = q.Until.Unix()
	}
	since = max(since, now-ix.retention)
	until = min(until, now+ix.bucket) // nothing is indexed further ahead than clock skew
	if since > until {
		return nil
	}
	seen := map[string]struct{}{}
	emit := func(n int64, entry []byte) error {
		m, err := decodeEntry(entry, q.From, n*ix.bucket)
		if err != nil {
			return fmt.Errorf("capture: index of %q, bucket %d: %w", q.From, n, err)
		}
		if m.Time < since || m.Time > until || (q.To != "" && (m.Kind != C2C || m.To != q.To)) {
			return nil
		}
		// An entry is unique within its bucket: it holds every field
		// of the message, a group message's TopicId too, so messages
		// of two topics (or of a topic and its community) with one
		// MsgSeq stay two.
		id := strconv.FormatInt(n, 36) + ":" + string(entry)
		if _, dup := seen[id]; dup {
			return nil
		}
		seen[id] = struct{}{}
		return fn(m)
	}
	for n := floorDiv(since, ix.bucket); n <= floorDiv(until, ix.bucket); n++ {
		// The shard's list holds other senders' messages too: keep the
		// entries that name q.From.
		err := ix.scan(ctx, shardKey(q.SDKAppID, n, q.From), q.From, func(v []byte) error {
			from, rest, err := readString(v)
			if err != nil {
				return fmt.Errorf("capture: index of %q, bucket %d: %w", q.From, n, err)
			}
			if from != q.From {
				return nil
			}
			return emit(n, rest)
		})
		if err == nil {
			err = ix.scan(ctx, legacyKey(q.SDKAppID, n, q.From), q.From, func(v []byte) error { return emit(n, v) })
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// scan calls fn for every element of the list at k, read in chunks.
func (ix *Index) scan(ctx context.Context, k, sender string, fn func([]byte) error) error {
	for off := int64(0); ; off += queryChunk {
		vals, err := ix.rdb.LRange(ctx, k, off, off+queryChunk-1).Result()
		if err != nil {
			return fmt.Errorf("capture: read the index of %q: %w", sender, err)
		}
		for _, v := range vals {
			if err := fn([]byte(v)); err != nil {
				return err
			}
		}
		if len(vals) < queryChunk {
			return nil
		}
	}
}
