package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/recallq/recallq/internal/sleep"
)

// Lane is a class of calls with its own lookahead: an Urgent call queues
// behind at most the lookahead of the fleet, never behind its whole backlog
// of Bulk calls.
type Lane int

const (
	// Urgent is for calls someone is waiting on (a recall asked for now).
	Urgent Lane = iota
	// Bulk is for backlog work.
	Bulk
)

func (l Lane) String() string {
	switch l {
	case Urgent:
		return "urgent"
	case Bulk:
		return "bulk"
	}
	return fmt.Sprintf("Lane(%d)", int(l))
}

// Defaults of Config.
const (
	DefaultPrefix        = "recallq"
	DefaultRate          = 200.0
	DefaultAheadUrgent   = 8
	DefaultAheadBulk     = 2
	DefaultHorizon       = time.Second
	DefaultInitialSpread = 50 * time.Millisecond
	DefaultLateCutoff    = 5 * time.Millisecond
)

// stallThreshold is how late a tick of the stall watch must be to mark a
// stall (at least the cutoff): it tells a stopped process from jitter.
const stallThreshold = 20 * time.Millisecond

const (
	// stateTTL is how long a bucket's keys outlive its last use. An expired
	// schedule cannot be told from a lost one, so the first call after an
	// idle longer than this waits one Horizon; a day keeps that to the rare
	// long idle, and the keys are a few hundred bytes.
	stateTTL = 24 * time.Hour
	// publishEvery is how often each process publishes its spread and reads
	// the shared one; coldPublishEvery while no dispersion is known (a new
	// deployment, a flushed Redis), which paces at the InitialSpread worst
	// case: on a heavy-tailed network a whole second of that (189.6/s where
	// the network allows 178) went over the cap in about one start in 170
	// (a simulation of the model), a quarter of it in about one in 3,000.
	publishEvery     = time.Second
	coldPublishEvery = 250 * time.Millisecond
	// paceMemory is how long the fleet's last measured pacing outlives its
	// samples, so that a fleet starting again after idle paces from it, not
	// from the InitialSpread worst case. A network path's dispersion
	// changes slowly; once live samples exist they rule.
	paceMemory = 24 * time.Hour
	// matureSamples is how many live samples the fleet needs before G is
	// trusted: before, the first answers back are the fast ones, and 16
	// processes that paced from the G of their first few sent 200 calls in
	// the first second of a heavy-tailed network. Below it a fleet paces
	// from the dispersion it last measured, else by the worst case of its
	// samples' spread J, and below fewSamples at the InitialSpread worst
	// case.
	matureSamples = 100
	fewSamples    = 20
	// redisTimeout bounds the background and Close round trips.
	redisTimeout = time.Second
	// warnEvery rate-limits repeated warnings.
	warnEvery = time.Minute
)

// Errors.
var (
	// ErrClosed is returned by Wait once Close has been called.
	ErrClosed = errors.New("limiter: closed")
	// ErrInvalidConfig is wrapped by New's errors, which name the field.
	ErrInvalidConfig = errors.New("limiter: invalid config")
	// ErrUnknownLane is returned by Wait for a Lane other than Urgent or Bulk.
	ErrUnknownLane = errors.New("limiter: unknown lane")
	// ErrLate is returned by Permit.Admit when the call would go more than
	// Config.LateCutoff after its slot: the slot is lost, the call must ask
	// for another.
	ErrLate = errors.New("limiter: permit is past its slot")
)

// Config configures a Limiter. Zero values take the documented defaults.
type Config struct {
	// Redis holds the bucket; required. A plain, Sentinel failover or Cluster
	// client all work: every key of a bucket lives in one hash slot.
	Redis redis.UniversalClient
	// Prefix starts every key; default DefaultPrefix ("recallq"). It must
	// not contain '{' or '}'.
	Prefix string
	// App is the SDKAppID of the app whose calls the bucket caps; required.
	App uint64
	// API is the capped API, e.g. "admin_msgwithdraw" (tim.APIWithdraw);
	// required, without '{', '}' or ':'. Each (App, API) has its own bucket,
	// named by BucketName; keys are <Prefix>:{lim:<bucket>}:<name>.
	API string
	// Rate is the cap in calls per second, shared by every process of the
	// bucket; default DefaultRate (200).
	Rate float64
	// AheadUrgent and AheadBulk are how many slots this process may hold
	// reserved ahead of now per lane; defaults DefaultAheadUrgent (8) and
	// DefaultAheadBulk (2). More lets a process keep the bucket busy across
	// its own scheduling hiccups; less shortens the queue an urgent call
	// finds.
	AheadUrgent, AheadBulk int
	// Horizon is the least a lost schedule restarts ahead of Redis's now;
	// default DefaultHorizon (1s). The horizon in use follows the fleet's
	// lookahead above it (see Stats.Horizon).
	Horizon time.Duration
	// InitialSpread is the latency spread J assumed until a process of the
	// bucket has measured one; default DefaultInitialSpread (50ms). At most
	// 500ms.
	InitialSpread time.Duration
	// LateCutoff is how late after its slot a call may still go; default
	// DefaultLateCutoff (5ms). A grant whose answer from Redis may have come
	// later than this after its slot, or a permit whose call would go later
	// (Permit.Admit), is dropped: the slot is lost and the caller asks for
	// another. A lost slot never breaks the cap; a late call may, so the
	// pacing leaves room for calls up to this late (pacing.go): each
	// millisecond of it costs about 0.1% of the rate.
	LateCutoff time.Duration
	// Logger receives warnings and state changes; default discards.
	Logger *slog.Logger
	// Now is the local clock, used only to measure durations; default
	// time.Now.
	Now func() time.Time
}

// Permit is one granted slot.
type Permit struct {
	// Slot is the local time the call may go (Wait returns at or after it).
	Slot time.Time
	// Waited is how long Wait blocked, semaphore and sleep included.
	Waited time.Duration
	// RedisSlot is the slot in Redis's clock.
	RedisSlot time.Time

	sent      time.Time     // when Admit last let the call go (zero: never asked)
	redisNow  time.Time     // Redis's clock when the slot was granted
	uncertain time.Duration // how early the true slot may lie before Slot (the clock anchor's width)
	lim       *Limiter      // nil for a Permit made elsewhere (tests, other limiters)
}

// Admit reports whether the call may go at now (local clock, as
// Config.Now): it returns nil until Config.LateCutoff after the permit's
// slot, then an error wrapping ErrLate, and counts the drop
// (Stats.LateDrops). Call it just before the request is sent: a goroutine
// descheduled or a process stopped between Wait and the send would
// otherwise put the call into a second that already holds its share. A
// call made over net/http uses Permit.Go instead, which admits it and
// also cuts it while a new connection makes it late. A permit not made by
// a Limiter is always admitted.
//
// An admitted permit remembers now as its send: Observe measures the
// answer's time from it, so the lateness before the send (at most the
// cutoff, for which the pacing leaves room of its own) is not counted again
// in the latency spread.
func (p *Permit) Admit(now time.Time) error {
	if err := p.admit(now); err != nil || p.lim == nil {
		return err
	}
	p.lim.inflight.add(p.RedisSlot, now)
	return nil
}

// Unused reports that an admitted permit's call was not made after all
// (every task it was for left): it is no longer in flight.
func (p *Permit) Unused() {
	if p.lim != nil {
		p.lim.inflight.remove(p.RedisSlot)
	}
}

// admit is Admit's check, without counting the call as in flight (Wait's
// own check at its wake-up: the call goes later, if at all).
func (p *Permit) admit(now time.Time) error {
	if p.lim == nil {
		return nil
	}
	if late := now.Sub(p.Slot); late > p.lim.cfg.LateCutoff {
		p.lim.stats.lateDrops.Add(1)
		p.lim.noteDrop(p.RedisSlot)
		return fmt.Errorf("%w: the call would go %s after its slot, more than the cutoff %s", ErrLate, late, p.lim.cfg.LateCutoff)
	}
	p.sent = now
	return nil
}

// Stats are counters since New, for metrics and benchmarks.
type Stats struct {
	// Calls counts Waits that returned a permit.
	Calls int64
	// Failures counts Waits that returned an error (context, Close, Redis).
	Failures int64
	// Delayed counts permits that had to sleep for their slot.
	Delayed int64
	// WaitedTotal sums Permit.Waited.
	WaitedTotal time.Duration
	// RoundTrips counts every Redis round trip: Wait, SlowDown, spread
	// publishing, Close.
	RoundTrips int64
	// WaitRoundTrips counts the round trips of Wait: one per call, two when
	// Redis had to be sent the script.
	WaitRoundTrips int64
	// SlowDowns counts SlowDown calls that lowered the bucket's rate (and
	// paused it, at the full rate);
	// IsolatedStrikes those that did not (no other rate-limit answer in
	// the fleet within a second).
	SlowDowns, IsolatedStrikes int64
	// HeldStrikes counts SlowDown calls that came before the end of the
	// last pause: answers to calls granted before that slow-down took
	// effect, which neither pause again nor lower the rate again.
	HeldStrikes int64
	// Compensations counts late calls (Observe saw the answer come later
	// than the fleet's latency envelope) whose excess pushed the schedule
	// back.
	Compensations int64
	// LateDrops counts permits dropped because their grant answer or their
	// call came more than LateCutoff after the slot (in Wait, which then
	// asks again, or in Permit.Admit).
	LateDrops int64
	// LateGrantDrops and LateWakeDrops are the part of LateDrops that Wait
	// made: grants whose answer from Redis came too late, and sleeps that
	// woke too late. The rest were dropped by the caller's own check just
	// before it sent (Permit.Admit after Wait returned).
	LateGrantDrops, LateWakeDrops int64
	// LateConnDrops is the part of LateDrops cancelled while the HTTP
	// client waited for a connection (a dial, a TLS handshake) past the
	// cutoff (Permit.Go): nothing was sent, and the connection serves a
	// later call.
	LateConnDrops int64
	// StalledSamples counts Observe samples ignored because this process
	// was stopped (GC, CPU throttling, SIGSTOP) while the call was out: its
	// answer says nothing about the network, and must neither widen the
	// fleet's spread nor push the schedule back.
	StalledSamples int64
	// LateCutoff is Config.LateCutoff, for metrics.
	LateCutoff time.Duration
	// Horizon is how far ahead a lost schedule would restart now (it
	// follows the fleet's lookahead, at least Config.Horizon).
	Horizon time.Duration
	// Resets counts grants that found the schedule missing or from another
	// server and restarted it one Horizon ahead.
	Resets int64
	// BeyondHorizon counts grants queued more than Horizon beyond
	// max(now, pause end): the lookahead of the fleet exceeds Horizon, so a
	// loss of the schedule could put calls closer than the interval.
	BeyondHorizon int64
	// Spread is the fleet-wide latency spread J in use; LocalSpread is this
	// process's own quantile of its samples alone (0 without samples).
	Spread, LocalSpread time.Duration
	// Dispersion is the fleet's mean difference of two latencies, G, that
	// paces the calls (-1 while unknown: the interval is then
	// (1+InitialSpread)/Rate).
	Dispersion time.Duration
	// Interval is the current spacing, 1/r with r + 5*sqrt(r*G) = Rate,
	// before the rate scale.
	Interval time.Duration
	// Rate is the rate in force, calls per second: 1/Interval times the
	// bucket's rate scale, which rate-limit answers that keep coming lower
	// and time restores (aimd.go).
	Rate float64
}

// Limiter spaces calls of one bucket across all processes. It is safe for
// concurrent use.
type Limiter struct {
	cfg    Config
	bucket string // BucketName(cfg.App, cfg.API)
	log    *slog.Logger
	now    func() time.Time
	keys   keys
	id     string // this process's field in the spread hash
	local  *rate.Limiter
	sems   [2]chan struct{} // per lane: a full slot is a permit held

	interval    atomic.Int64 // ns
	spreadNS    atomic.Int64 // shared J, ns
	lateBound   atomic.Int64 // fleet p0.5 of lo + J, ns; 0: unknown (no compensation)
	localSpread atomic.Int64 // ns
	measured    atomic.Value // string: "J|G" µs adopted from live samples at the last publish, for the bucket to remember; "" none
	fleetProcs  atomic.Int64 // processes with live samples, as last read
	dispersion  atomic.Int64 // fleet's G, ns; -1: unknown (worst-case pacing)
	statistical atomic.Bool  // the interval is the statistical one (pacing.go), not the worst case
	scale       atomic.Int64 // the bucket's rate scale in millionths, as the last grant read it; 0: none yet
	aheadNS     atomic.Int64 // the furthest a grant lay ahead of Redis now lately, ns
	aheadAt     atomic.Int64 // when aheadNS was seen, unix ns of the local clock
	lastSlot    atomic.Int64 // RedisSlot of the permit Observe saw last, µs of Redis time; 0: none
	dropsMu     sync.Mutex
	drops       []int64 // slots dropped as late since the last grant, µs of Redis time (see noteDrop)
	window      *spreadWindow
	inflight    inflight // admitted calls not yet observed
	stalls      *stallWatch
	anchor      *clockAnchor  // places Redis's slots on the local clock
	spreadRead  chan struct{} // closed once the first publishSpread has ended

	grantRTT atomic.Int64 // moving average of a grant's round trip, ns (noteGrantRTT)

	stats struct {
		calls, failures, delayed, waited  atomic.Int64
		roundTrips, waitTrips, otherTrips atomic.Int64
		slowDowns, resets, beyondHorizon  atomic.Int64
		compensations                     atomic.Int64
		lateDrops, stalledSamples         atomic.Int64
		lateGrantDrops, lateWakeDrops     atomic.Int64
		lateConnDrops                     atomic.Int64
		isolatedStrikes, heldStrikes      atomic.Int64
		lastHorizonWarn, publishFailing   atomic.Int64
	}

	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the publishing goroutine

	// bg tracks the compensation round trips, which Observe starts in the
	// background; bgMu and closing keep a new one from starting once Close
	// waits for them.
	bgMu    sync.Mutex
	closing bool
	bg      sync.WaitGroup

	// afterGrant, when set (by tests, before any Wait), sees each permit as
	// soon as Redis has granted it, before the sleep to its slot.
	afterGrant func(Permit)
}

// New checks cfg, applies its defaults and starts the background goroutine
// that shares the latency spread. It returns an error wrapping
// ErrInvalidConfig that names the faulty field.
func New(cfg Config) (*Limiter, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.AheadUrgent == 0 {
		cfg.AheadUrgent = DefaultAheadUrgent
	}
	if cfg.AheadBulk == 0 {
		cfg.AheadBulk = DefaultAheadBulk
	}
	if cfg.Horizon == 0 {
		cfg.Horizon = DefaultHorizon
	}
	if cfg.InitialSpread == 0 {
		cfg.InitialSpread = DefaultInitialSpread
	}
	if cfg.LateCutoff == 0 {
		cfg.LateCutoff = DefaultLateCutoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	bucket := BucketName(cfg.App, cfg.API)

	l := &Limiter{
		cfg:        cfg,
		bucket:     bucket,
		log:        cfg.Logger.With("bucket", bucket),
		now:        cfg.Now,
		keys:       newKeys(cfg.Prefix, bucket),
		id:         processID(),
		window:     newSpreadWindow(),
		stalls:     newStallWatch(cfg.Now, max(cfg.LateCutoff, stallThreshold)),
		anchor:     newClockAnchor(cfg.Now()),
		spreadRead: make(chan struct{}),
		done:       make(chan struct{}),
		// Burst: the permits this process may legitimately ask for at
		// once, when it fills its lookahead after an idle spell.
		local: rate.NewLimiter(rate.Limit(cfg.Rate), cfg.AheadUrgent+cfg.AheadBulk),
	}
	l.sems[Urgent] = make(chan struct{}, cfg.AheadUrgent)
	l.sems[Bulk] = make(chan struct{}, cfg.AheadBulk)
	l.setSpread(cfg.InitialSpread, -1)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(2)
	go l.publishLoop()
	go func() {
		defer l.wg.Done()
		l.stalls.run(l.done)
	}()
	return l, nil
}

func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	switch {
	case c.Redis == nil:
		return bad("Config.Redis is nil: pass the client of the Redis that holds the shared bucket")
	case c.App == 0:
		return bad("Config.App is not set: give the SDKAppID of the app whose calls the bucket caps")
	case c.API == "":
		return bad(`Config.API is empty: name the capped API, e.g. "admin_msgwithdraw"`)
	case strings.ContainsAny(c.API, "{}:"):
		return bad("Config.API %q contains '{', '}' or ':': braces would break the Redis Cluster hash tag, a colon the bucket name", c.API)
	case strings.ContainsAny(c.Prefix, "{}"):
		return bad("Config.Prefix %q contains '{' or '}': they would break the Redis Cluster hash tag", c.Prefix)
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return bad("Config.Rate is %v: give the cap in calls per second, e.g. 200", c.Rate)
	case c.AheadUrgent < 0:
		return bad("Config.AheadUrgent is %d: it must be positive", c.AheadUrgent)
	case c.AheadBulk < 0:
		return bad("Config.AheadBulk is %d: it must be positive", c.AheadBulk)
	case c.Horizon < 0:
		return bad("Config.Horizon is %s: it must be positive", c.Horizon)
	case c.InitialSpread < 0 || c.InitialSpread > maxSpread:
		return bad("Config.InitialSpread is %s: it must lie in (0, %s]", c.InitialSpread, maxSpread)
	case c.LateCutoff < 0:
		return bad("Config.LateCutoff is %s: it must be positive", c.LateCutoff)
	}
	return nil
}

// processID names this process in the spread hash: host, pid and a random
// suffix, so two Limiters in one process (or a reused pid) do not collide.
func processID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Wait blocks until this call's slot and returns its permit. It costs one
// Redis round trip in the normal case. It returns ctx.Err() when ctx ends
// first (a slot already granted is then left unused: it costs only itself),
// ErrClosed after Close, ErrUnknownLane, or the Redis error, wrapped.
func (l *Limiter) Wait(ctx context.Context, lane Lane) (p Permit, err error) {
	start := l.now()
	if lane != Urgent && lane != Bulk {
		return Permit{}, fmt.Errorf("%w: %d: use Urgent or Bulk", ErrUnknownLane, int(lane))
	}
	defer func() {
		if err != nil {
			l.stats.failures.Add(1)
		}
	}()
	select {
	case <-l.done:
		return Permit{}, ErrClosed
	default:
	}

	// The local permit bounds this process's reservations ahead of now. A
	// buffered channel is FIFO enough: the runtime queues blocked senders
	// in order and hands a freed place to the first of them, so a newcomer
	// cannot overtake a goroutine already waiting.
	sem := l.sems[lane]
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return Permit{}, ctx.Err()
	case <-l.done:
		return Permit{}, ErrClosed
	}
	defer func() { <-sem }() // the call departs (or gives up): free the permit

	// The fleet's pacing, read once before this process's first grant.
	select {
	case <-l.spreadRead:
	case <-ctx.Done():
		return Permit{}, ctx.Err()
	case <-l.done:
		return Permit{}, ErrClosed
	}

	// Flood guard in front of Redis; in steady state it never delays.
	now := l.now()
	if r := l.local.ReserveN(now, 1); r.DelayFrom(now) > 0 {
		if err := l.sleep(ctx, r.DelayFrom(now)); err != nil {
			r.CancelAt(l.now())
			return Permit{}, err
		}
	}

	restart := false
	for {
		p, err = l.grant(ctx, restart)
		restart = false
		var jumped errClockJumped
		if errors.As(err, &jumped) {
			// The fleet holds slots placed in Redis's old clock, up to a
			// lookahead ahead; a schedule continued in the new one would
			// put calls on top of them. Drop this slot and restart.
			l.noteDrop(p.RedisSlot)
			l.log.InfoContext(ctx, "limiter saw Redis's clock jump forward: restarting the schedule one horizon ahead",
				"jump_at_least", jumped.forward, "horizon", l.horizon())
			restart = true
			continue
		}
		if err != nil {
			return Permit{}, err
		}
		if l.afterGrant != nil {
			l.afterGrant(p)
		}
		// The grant's answer may have come after its slot (a slow Redis
		// reply, this goroutine or process descheduled): the true slot lies
		// as early as Slot-rtt. Later than the cutoff, the slot is lost.
		if late := l.now().Sub(p.Slot.Add(-p.uncertain)); late > l.cfg.LateCutoff {
			l.stats.lateDrops.Add(1)
			l.stats.lateGrantDrops.Add(1)
			l.noteDrop(p.RedisSlot)
			l.log.DebugContext(ctx, "limiter dropped a slot granted too late", "late", late, "cutoff", l.cfg.LateCutoff)
			continue
		}
		if d := p.Slot.Sub(l.now()); d > 0 {
			l.stats.delayed.Add(1)
			if err := l.sleep(ctx, d); err != nil {
				return Permit{}, err
			}
		}
		// Woken too late (descheduled, stopped): the slot is lost.
		if p.admit(l.now()) == nil {
			break
		}
		l.stats.lateWakeDrops.Add(1)
	}
	p.Waited = l.now().Sub(start)
	l.stats.calls.Add(1)
	l.stats.waited.Add(int64(p.Waited))
	return p, nil
}

// grant asks Redis for the next slot: one round trip. With restart, the
// schedule is restarted one horizon ahead (Redis's clock jumped forward).
func (l *Limiter) grant(ctx context.Context, restart bool) (Permit, error) {
	interval := l.Interval()
	drops := l.takeDrops()
	sent := l.now()
	v, err := l.run(ctx, &l.stats.waitTrips, grantScript, []string{l.keys.gcra, l.keys.flow},
		ceilMicros(interval), ceilMicros(l.horizon()), (stateTTL + l.cfg.Horizon).Milliseconds(),
		aimdRegain.Seconds(), aimdProbe, aimdMargin, drops, ceilMicros(l.grantLead()), restartArg(restart))
	recv := l.now()
	l.noteGrantRTT(recv.Sub(sent))
	if err != nil {
		if ctx.Err() != nil {
			return Permit{}, ctx.Err()
		}
		return Permit{}, fmt.Errorf("limiter: reserve a slot of bucket %q: %w", l.bucket, err)
	}
	g, err := parseGrant(v)
	if err != nil {
		return Permit{}, fmt.Errorf("limiter: reserve a slot of bucket %q: %w", l.bucket, err)
	}
	l.noteGrant(ctx, g)

	// The slot goes where the clock anchor (anchor.go) places Redis's
	// instant: on the late side of what the recent grants tell, by at
	// most their fastest round trip, which Observe adds to the spread.
	slot, uncertain, forward := l.anchor.place(sent, recv, time.UnixMicro(g.now), time.UnixMicro(g.slot))
	if !g.reset && forward > l.cfg.LateCutoff {
		return Permit{RedisSlot: time.UnixMicro(g.slot)}, errClockJumped{forward}
	}
	return Permit{
		Slot:      slot,
		RedisSlot: time.UnixMicro(g.slot),
		redisNow:  time.UnixMicro(g.now),
		uncertain: uncertain,
		lim:       l,
	}, nil
}

// errClockJumped is grant's answer when the grant showed Redis's clock
// jumped forward by more than the lateness cutoff (at least forward).
type errClockJumped struct{ forward time.Duration }

func (e errClockJumped) Error() string {
	return fmt.Sprintf("limiter: Redis's clock jumped forward by at least %s", e.forward)
}

// restartArg is grantScript's ARGV[9].
func restartArg(restart bool) string {
	if restart {
		return "1"
	}
	return "0"
}

// maxGrantLead bounds how far past Redis's now a grant on an idle schedule
// is placed (grantLead).
const maxGrantLead = 250 * time.Millisecond

// noteGrantRTT folds one grant's round trip into the moving average
// (weight 1/8) that grantLead reads.
func (l *Limiter) noteGrantRTT(rtt time.Duration) {
	for {
		old := l.grantRTT.Load()
		next := int64(rtt)
		if old > 0 {
			next = old + (int64(rtt)-old)/8
		}
		if l.grantRTT.CompareAndSwap(old, max(next, 1)) {
			return
		}
	}
}

// grantLead is how far after Redis's now the next grant's slot lies at
// least: twice the average round trip, so that the answer reaches this
// process before its slot on an idle schedule, at most maxGrantLead.
func (l *Limiter) grantLead() time.Duration {
	return min(2*time.Duration(l.grantRTT.Load()), maxGrantLead)
}

// maxDrops bounds the dropped slots one grant carries.
const maxDrops = 64

// noteDrop notes a slot dropped as late, to be taken off the bucket's count
// of slots granted by this process's next grant (no round trip of its own):
// a slot that was never used got nothing through, and counted as granted it
// would make a strike's estimate of what got through too high (aimd.go).
func (l *Limiter) noteDrop(slot time.Time) {
	if slot.IsZero() {
		return
	}
	l.dropsMu.Lock()
	if len(l.drops) < maxDrops {
		l.drops = append(l.drops, slot.UnixMicro())
	}
	l.dropsMu.Unlock()
}

// takeDrops returns the slots noteDrop noted since the last call, as
// grantScript's ARGV[7], and forgets them: a grant that fails loses them
// (the estimate is best effort).
func (l *Limiter) takeDrops() string {
	l.dropsMu.Lock()
	defer l.dropsMu.Unlock()
	if len(l.drops) == 0 {
		return ""
	}
	var b strings.Builder
	for i, d := range l.drops {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	l.drops = l.drops[:0]
	return b.String()
}

// grantReply is the answer of grantScript, in µs of Redis time.
type grantReply struct {
	slot, now int64
	reset     bool
	queue     int64
	scale     int64 // rate scale in millionths (aimd.go)
}

func parseGrant(v any) (grantReply, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 5 {
		return grantReply{}, fmt.Errorf("unexpected script answer %v", v)
	}
	var n [5]int64
	for i := range a {
		if n[i], ok = a[i].(int64); !ok {
			return grantReply{}, fmt.Errorf("unexpected script answer %v", v)
		}
	}
	return grantReply{slot: n[0], now: n[1], reset: n[2] == 1, queue: n[3], scale: n[4]}, nil
}

func (l *Limiter) noteGrant(ctx context.Context, g grantReply) {
	if old := l.scale.Swap(g.scale); old != g.scale && (g.scale < 1e6 || old < 1e6) && old != 0 {
		l.log.DebugContext(ctx, "limiter rate scale changed (rate-limit answers while below the cap: a quota shared with other callers)",
			"scale", float64(g.scale)/1e6, "was", float64(old)/1e6)
	}
	horizon := l.horizon()
	now := l.now().UnixNano()
	if ahead := time.Duration(g.slot-g.now) * time.Microsecond; ahead >= time.Duration(l.aheadNS.Load()) || now-l.aheadAt.Load() > int64(aheadMemory) {
		l.aheadNS.Store(int64(ahead))
		l.aheadAt.Store(now)
	}
	if g.reset {
		l.stats.resets.Add(1)
		l.log.InfoContext(ctx, "limiter schedule was missing or written by another Redis server (first use, restart, FLUSHALL, failover, idle expiry): restarted one horizon ahead",
			"horizon", horizon)
	}
	if time.Duration(g.queue)*time.Microsecond > horizon {
		l.stats.beyondHorizon.Add(1)
		last := l.stats.lastHorizonWarn.Load()
		if now-last >= int64(warnEvery) && l.stats.lastHorizonWarn.CompareAndSwap(last, now) {
			l.log.WarnContext(ctx, "limiter granted a slot further ahead than its horizon: after a loss of the schedule calls could come closer than the interval",
				"ahead", time.Duration(g.queue)*time.Microsecond, "horizon", horizon)
		}
	}
}

// aheadMemory is how long the furthest lookahead seen is remembered.
const aheadMemory = 10 * time.Second

// horizon is how far ahead of Redis now a lost schedule restarts: past
// every slot granted before the loss. That is the fleet's lookahead, which
// grows with the processes, the interval and any pause in force, so the
// horizon follows it: at least Config.Horizon, the furthest this process
// saw the schedule ahead of Redis now in the last aheadMemory plus a
// quarter and one interval, and the lookahead every live process may hold,
// processes x (AheadUrgent+AheadBulk) x interval, plus one interval.
func (l *Limiter) horizon() time.Duration {
	iv := l.Interval()
	h := l.cfg.Horizon
	if l.now().UnixNano()-l.aheadAt.Load() <= int64(aheadMemory) {
		ahead := time.Duration(l.aheadNS.Load())
		h = max(h, ahead+ahead/4+iv)
	}
	if p := l.fleetProcs.Load(); p > 0 {
		h = max(h, time.Duration(p*int64(l.cfg.AheadUrgent+l.cfg.AheadBulk)+1)*iv)
	}
	return h
}

// sleep waits d on the local monotonic clock.
func (l *Limiter) sleep(ctx context.Context, d time.Duration) error {
	return sleep.ForOr(ctx, d, l.done, ErrClosed)
}

// Observe reports that the call made under p got its answer at done (local
// clock, as Config.Now). The samples set the latency spread, and with it the
// interval, of every process of the bucket. A call later than the fleet's
// latency envelope (its answer came more than J after the fleet's p0.5 of
// send-to-answer times; see Permit.Admit) pushes the shared schedule back by
// the excess, in the background, while the interval is the worst case
// (under the statistical interval the tail is in the margin already); see
// the package documentation. A zero Permit is ignored.
func (l *Limiter) Observe(p Permit, done time.Time) {
	if p.Slot.IsZero() {
		return
	}
	l.inflight.remove(p.RedisSlot)
	if !p.RedisSlot.IsZero() {
		l.lastSlot.Store(p.RedisSlot.UnixMicro())
	}
	if l.stalls.overlaps(p.Slot.Add(-p.uncertain), done) {
		l.stats.stalledSamples.Add(1)
		return
	}
	// From the send, not the slot: what came between them is the
	// lateness the cutoff bounds and the pacing's room covers. The slot's
	// uncertainty (the clock anchor's width) stays in.
	from := p.Slot
	if !p.sent.IsZero() {
		from = p.sent
	}
	lo := done.Sub(from)
	hi := lo + p.uncertain
	l.window.add(sample{at: l.now(), lo: lo, hi: hi})
	bound := time.Duration(l.lateBound.Load())
	if bound <= 0 {
		return // no fleet envelope yet
	}
	if l.statistical.Load() {
		// The statistical margin is set by the whole distribution of
		// latencies, its tail included: an answer beyond the envelope is
		// that tail, already paid for. Only the worst-case interval,
		// which assumes every arrival inside the envelope, needs the
		// schedule pushed back for one outside it.
		return
	}
	if excess := hi - bound; excess > 0 {
		// At most one slot: a late call adds at most one call to any
		// sliding second, and one slot makes room for it. An answer seconds
		// late (a slow server, a client timeout) says no more about when the
		// call arrived, and must not stall the fleet for seconds.
		l.compensate(min(excess, l.Interval()))
	}
}

// compensate pushes the schedule back by d in the background: tat =
// max(tat, now) + d, bounded by redisTimeout. It is best effort: a failed
// round trip only leaves the late call uncompensated.
func (l *Limiter) compensate(d time.Duration) {
	l.bgMu.Lock()
	defer l.bgMu.Unlock()
	if l.closing {
		return
	}
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		ctx, cancel := context.WithTimeout(l.ctx, redisTimeout)
		defer cancel()
		v, err := l.run(ctx, &l.stats.otherTrips, delayScript, []string{l.keys.gcra},
			ceilMicros(d), (stateTTL + l.cfg.Horizon).Milliseconds())
		if err != nil {
			l.log.DebugContext(ctx, "limiter could not push the schedule back after a late call", "excess", d, "error", err)
			return
		}
		if tat, _ := v.(int64); tat >= 0 { // -1: no schedule to push
			l.stats.compensations.Add(1)
		}
	}()
}

// strikeWindow: a "too many requests" answer with no other one in the
// fleet within this window before it is isolated (a late call, an outside
// caller's burst): it costs the caller one more call, not a pause of every
// process.
const strikeWindow = time.Second

// SlowDown reports a "too many requests" answer, best right after Observe
// reported the refused call: the slot of the call Observe saw last is where
// the bucket looks back from to tell how many calls got through (aimd.go). An isolated one (no other
// in the fleet within the last second) pauses nothing: the caller calls
// again with its next slot. One that comes before the last slow-down took
// effect (its hold, aimd.go) answers a call granted before it: it does
// nothing either. Otherwise it lowers the bucket's rate (aimd.go), and at
// the full rate it also pauses the whole bucket for d after the slots
// already granted: no process is granted a slot before max(tat, Redis now)
// + d, then the schedule runs at the lowered rate. A pause never shortens
// an existing one. It returns the Redis error, wrapped.
func (l *Limiter) SlowDown(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("limiter: slow down bucket %q for %s: the pause must be positive", l.bucket, d)
	}
	iv := l.Interval()
	v, err := l.run(ctx, &l.stats.otherTrips, slowDownScript, []string{l.keys.gcra, l.keys.flow},
		ceilMicros(d), (stateTTL + d).Milliseconds(), strikeWindow.Microseconds(),
		aimdDecrease, aimdRegain.Seconds(), aimdProbe, aimdMargin, aimdMinScale,
		ceilMicros(iv), ceilMicros(l.answerLag()), aimdDeepest, aimdLeastGrants, l.lastSlot.Load())
	if err != nil {
		return fmt.Errorf("limiter: slow down bucket %q: %w", l.bucket, err)
	}
	a, _ := v.([]any)
	if len(a) != 5 {
		return fmt.Errorf("limiter: slow down bucket %q: unexpected script answer %v", l.bucket, v)
	}
	var n [5]int64
	for i := range a {
		n[i], _ = a[i].(int64)
	}
	paused, until := n[0], n[1]
	switch paused {
	case 0:
		l.stats.isolatedStrikes.Add(1)
		l.log.DebugContext(ctx, "limiter: an isolated rate-limit answer, no pause")
		return nil
	case 2:
		l.stats.heldStrikes.Add(1)
		l.log.DebugContext(ctx, "limiter: a rate-limit answer to a call granted before the last slow-down took effect, no further pause")
		return nil
	}
	rate := func(millionths int64) float64 { return float64(millionths) / 1e6 / iv.Seconds() }
	attrs := []any{"rate", rate(n[2]), "ceiling", rate(n[3])}
	if n[4] >= 0 {
		attrs = append(attrs, "got_through", n[4])
	}
	l.stats.slowDowns.Add(1)
	if paused == 3 {
		l.log.InfoContext(ctx, "limiter lowered the bucket's rate: rate-limit answers keep coming below the full rate (a quota shared with other callers)", attrs...)
		return nil
	}
	l.log.InfoContext(ctx, "limiter paused the bucket after the slots already granted and lowered its rate",
		append(attrs, "pause", d, "until_redis", time.UnixMicro(until).UTC())...)
	return nil
}

// Interval returns the current spacing of slots: 1/r with r paced from the
// fleet's measured dispersion (see pacing.go), or (1+InitialSpread)/Rate
// until any process has samples.
func (l *Limiter) Interval() time.Duration {
	return time.Duration(l.interval.Load())
}

// setSpread adopts J; with no dispersion known (g < 0) the interval is
// the worst case (1+J)/Rate, otherwise 1/pacedRate(Rate, g), or the worst
// case when that is shorter: for latencies inside a narrow band (J below
// a few tens of ms) every delay lining up against us still costs less
// than the statistical margin, and the bound holds without any
// probability. A J at maxSpread is clamped, no bound, and not used so.
//
// Both leave room for calls that go up to LateCutoff after their slots,
// late together: (1+J+cutoff)/Rate, and (1+cutoff)/pacedRate(Rate, g).
func (l *Limiter) setSpread(j, g time.Duration) {
	j = clampSpread(j)
	l.spreadNS.Store(int64(j))
	late := l.cfg.LateCutoff.Seconds()
	worst := math.Ceil((1 + j.Seconds() + late) / l.cfg.Rate * 1e9)
	if g < 0 {
		l.dispersion.Store(-1)
		l.statistical.Store(false)
		l.interval.Store(int64(worst))
		return
	}
	l.dispersion.Store(int64(g))
	paced := math.Ceil((1 + late) * 1e9 / pacedRate(l.cfg.Rate, g))
	l.statistical.Store(j >= maxSpread || paced < worst)
	if j < maxSpread {
		paced = min(paced, worst)
	}
	l.interval.Store(int64(paced))
}

// publishLoop shares the spread until Close: at once, then every
// publishEvery (coldPublishEvery while no dispersion is known). Wait
// grants nothing before the first round has ended, so a process that
// starts while the fleet paces from a measured dispersion never grants at
// its own InitialSpread interval, faster than the fleet.
func (l *Limiter) publishLoop() {
	defer l.wg.Done()
	t := time.NewTimer(publishEvery)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-l.done:
				return
			case <-t.C:
			}
		}
		started := l.now()
		ctx, cancel := context.WithTimeout(l.ctx, redisTimeout)
		err := l.publishSpread(ctx)
		cancel()
		switch {
		case err != nil && l.stats.publishFailing.Swap(1) == 0:
			l.log.WarnContext(l.ctx, "limiter cannot share its latency spread: keeping the last shared one", "error", err)
		case err == nil && l.stats.publishFailing.Swap(0) == 1:
			l.log.InfoContext(l.ctx, "limiter shares its latency spread again")
		}
		every := publishEvery
		if l.dispersion.Load() < 0 {
			every = coldPublishEvery
		}
		t.Reset(max(every-l.now().Sub(started), 0))
		if first {
			close(l.spreadRead)
		}
	}
}

// publishSpread publishes this process's live sample count and the tails of
// its samples (the spreadTail smallest lo and largest hi), merges those of
// every live process in Redis and adopts the fleet-wide spread, p99.5(hi)
// minus p0.5(lo) over all their samples, with the late bound p0.5(lo) + J
// that Observe compensates beyond. When no process has samples it uses
// InitialSpread and compensates nothing. On a Redis error it keeps the shared
// spread it had, raised to its own if that is larger, and the late bound it
// had.
func (l *Limiter) publishSpread(ctx context.Context) error {
	now := l.now()
	local, _ := l.window.spread(now)
	l.localSpread.Store(int64(local))
	mine := l.window.tails(now, l.inflight.ages(now))
	remember, _ := l.measured.Load().(string)
	v, err := l.run(ctx, &l.stats.otherTrips, spreadScript, []string{l.keys.spread, l.keys.pace},
		l.id, mine.String(), spreadMaxAge.Microseconds(), (2 * spreadMaxAge).Milliseconds(),
		remember, paceMemory.Milliseconds())
	if err != nil {
		// Keep the shared pacing, made no faster by this process's own.
		g := time.Duration(l.dispersion.Load())
		if lg, ok := meanDifference([]sketch{mine.sketch}); ok && g >= 0 {
			g = max(g, lg)
		}
		l.setSpread(max(time.Duration(l.spreadNS.Load()), local), g)
		return fmt.Errorf("limiter: share latency spread of bucket %q: %w", l.bucket, err)
	}
	j, ref, procs, fleet, ok := parseSpread(v)
	l.fleetProcs.Store(procs)
	g := time.Duration(-1)
	l.measured.Store("")
	var samples int64
	for _, sk := range fleet {
		samples += sk.n
	}
	mj, mg, remembered := parsePace(v)
	switch {
	case ok && samples >= matureSamples:
		if fg, known := meanDifference(fleet); known {
			g = fg
			l.measured.Store(strconv.FormatInt(j.Microseconds(), 10) + "|" + strconv.FormatInt(g.Microseconds(), 10))
		}
	case remembered:
		// Too few live samples to trust (a cold start, the first answers
		// back are the fast ones) or none: the pacing the fleet last
		// measured.
		j, g = mj, mg
	case !ok || samples < fewSamples:
		j = l.cfg.InitialSpread
	default:
		// Some samples, none measured before: the worst case of what they
		// show (their spread J, with the calls still out at their age),
		// never the statistical pacing, whose G they understate.
	}
	if old := time.Duration(l.spreadNS.Load()); old != clampSpread(j) {
		l.log.DebugContext(ctx, "limiter spread changed", "spread", clampSpread(j), "was", old, "dispersion", g)
	}
	l.setSpread(j, g)
	var bound time.Duration
	if ok {
		// Never 0 for a known envelope: 0 means unknown.
		bound = max(ref+time.Duration(l.spreadNS.Load()), 1)
	}
	l.lateBound.Store(int64(bound))
	return nil
}

// parsePace reads the pacing remembered in spreadScript's answer: the
// fifth element, "J|G" in µs.
func parsePace(v any) (j, g time.Duration, ok bool) {
	a, _ := v.([]any)
	if len(a) < 5 {
		return 0, 0, false
	}
	s, _ := a[4].(string)
	js, gs, cut := strings.Cut(s, "|")
	jv, err1 := strconv.ParseInt(js, 10, 64)
	gv, err2 := strconv.ParseInt(gs, 10, 64)
	if !cut || err1 != nil || err2 != nil || jv < 0 || gv < 0 {
		return 0, 0, false
	}
	return time.Duration(jv) * time.Microsecond, time.Duration(gv) * time.Microsecond, true
}

// parseSpread reads spreadScript's answer {J µs, p0.5 lo µs, live
// processes, {n, sketch, n, sketch, ...}}; ok is false when no process has
// samples. A malformed sketch is left out.
func parseSpread(v any) (j, ref time.Duration, procs int64, sks []sketch, ok bool) {
	a, isSlice := v.([]any)
	if !isSlice || len(a) < 4 {
		return 0, 0, 0, nil, false
	}
	procs, _ = a[2].(int64)
	pairs, _ := a[3].([]any)
	for i := 0; i+1 < len(pairs); i += 2 {
		n, _ := pairs[i].(int64)
		q, _ := pairs[i+1].(string)
		if sk, good := parseSketch(n, q); good {
			sks = append(sks, sk)
		}
	}
	js, ok1 := a[0].(int64)
	rs, ok2 := a[1].(int64)
	if !ok1 || !ok2 || js < 0 {
		return 0, 0, procs, sks, false
	}
	return time.Duration(js) * time.Microsecond, time.Duration(rs) * time.Microsecond, procs, sks, true
}

// Stats returns the counters since New.
func (l *Limiter) Stats() Stats {
	s := &l.stats
	return Stats{
		Calls:           s.calls.Load(),
		Failures:        s.failures.Load(),
		Delayed:         s.delayed.Load(),
		WaitedTotal:     time.Duration(s.waited.Load()),
		RoundTrips:      s.roundTrips.Load(),
		WaitRoundTrips:  s.waitTrips.Load(),
		SlowDowns:       s.slowDowns.Load(),
		IsolatedStrikes: s.isolatedStrikes.Load(),
		HeldStrikes:     s.heldStrikes.Load(),
		Compensations:   s.compensations.Load(),
		LateDrops:       s.lateDrops.Load(),
		LateGrantDrops:  s.lateGrantDrops.Load(),
		LateWakeDrops:   s.lateWakeDrops.Load(),
		LateConnDrops:   s.lateConnDrops.Load(),
		StalledSamples:  s.stalledSamples.Load(),
		LateCutoff:      l.cfg.LateCutoff,
		Horizon:         l.horizon(),
		Resets:          s.resets.Load(),
		BeyondHorizon:   s.beyondHorizon.Load(),
		Spread:          time.Duration(l.spreadNS.Load()),
		LocalSpread:     time.Duration(l.localSpread.Load()),
		Interval:        l.Interval(),
		Dispersion:      time.Duration(l.dispersion.Load()),
		Rate:            l.rate(),
	}
}

// Close stops the background goroutine, makes pending and later Waits
// return ErrClosed, and withdraws this process's spread from Redis (best
// effort: it expires anyway). It does not close Config.Redis. It returns the
// Redis error of the withdrawal, wrapped.
func (l *Limiter) Close() error {
	l.closeOnce.Do(func() {
		l.bgMu.Lock()
		l.closing = true
		l.bgMu.Unlock()
		close(l.done)
		l.cancel()
		l.wg.Wait()
		l.bg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
		defer cancel()
		l.stats.roundTrips.Add(1)
		if err := l.cfg.Redis.HDel(ctx, l.keys.spread, l.id).Err(); err != nil {
			l.closeErr = fmt.Errorf("limiter: withdraw spread of bucket %q: %w", l.bucket, err)
		}
	})
	return l.closeErr
}

func ceilMicros(d time.Duration) int64 {
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}
