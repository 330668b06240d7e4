package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/tim"
)

// Batching group recalls.
//
// group_msg_recall's cap counts calls, not messages, and one call takes up
// to tim.MaxGroupRecallSeqs MsgSeqs of one group (or topic). A group recall
// task holds one seq; the handlers of tasks of the same group, topic and
// lane that wait at the same time join one batch. The batch lingers a
// little (GroupLinger, GroupUrgentLinger) or until it is full, then asks
// the group bucket for ONE slot; it takes more members while it waits for
// the slot, and is sealed when the slot comes: one call for all of them.
// Each handler then settles its own task by its own seq's result, so
// retries, dead letters, results, campaign counts and metrics stay per
// task. What a call says about the app rather than a seq (a rate limit, a
// configuration error, a good answer) reaches the shared limiter and this
// process's breaker of group_msg_recall once per call, not once per seq.

// Defaults of the group batching.
const (
	// DefaultGroupLinger is how long a bulk batch waits for more seqs of
	// its group before it asks for a slot (it takes more while it waits for
	// the slot too). At the cap a batch fills while it waits for its slot
	// anyway; the linger fills the first calls of a campaign and those of
	// a bucket with room to spare.
	DefaultGroupLinger = 20 * time.Millisecond
	// DefaultGroupUrgentLinger is the same for the urgent lane: a single
	// recall someone waits on lingers only long enough to meet the other
	// seqs of the same request (the CLI and the intake queue them together).
	DefaultGroupUrgentLinger = 2 * time.Millisecond
)

// GroupAPI is the group recall call of the Tencent client (*tim.Client).
type GroupAPI interface {
	GroupRecall(ctx context.Context, groupID string, seqs []uint64, topicID string) (tim.GroupRecallResponse, error)
}

// GroupCall describes one group_msg_recall call, for metrics.
type GroupCall struct {
	// Seqs is how many MsgSeqs (tasks) the call carried.
	Seqs int
	// Code is the call's ErrorCode, NoAnswer when no answer was read.
	Code int
	// Latency is from the call's slot to its answer.
	Latency time.Duration
	// RateLimited is the code of the call's rate-limited answer (the
	// call's own or a seq's), 0 when it was not rate limited: the one
	// shared slow-down of the call, however many seqs it carried.
	RateLimited int
	// ConfigError is whether the call said the app's configuration is
	// wrong (its code, a seq's, the UserSig refused again with a fresh
	// one, a transport fault of the configuration): the one strike of the
	// breaker of the call, however many seqs it carried.
	ConfigError bool
}

// batchKey is what the seqs of one call share; the app is the handler's.
type batchKey struct {
	group, topic string
	urgent       bool
}

// member is one task's seq in a batch.
type member struct {
	seq          uint64
	probe        int64            // the breaker's probe number, 0 when not a probe
	sigRefreshed bool             // this task has called once with a fresh UserSig already
	connCuts     limiter.ConnCuts // this task's batches in a row cut for want of a connection
	joined       time.Time
	out          chan batchAnswer // buffered: the runner never blocks
}

// batchAnswer is what one member gets back from its batch.
type batchAnswer struct {
	// called is false when no call was made: err says why (shutdown, the
	// circuit opened, Redis unreachable).
	called bool
	// err is the transport error of a call that got no answer.
	err error
	// resp is the call's answer; seq this member's part of it.
	resp tim.Response
	seq  tim.SeqResult
	// o is the row that decides this seq (meaningful when err is nil).
	o       Outcome
	seqs    int // how many seqs the call carried
	permit  Permit
	started time.Time // when the call went
	done    time.Time // when its answer came
}

// batch is one future group_msg_recall call.
type batch struct {
	key     batchKey
	created time.Time
	members []*member // guarded by batcher.mu
	sealed  bool      // no more members: the call is going
	changed chan struct{}
	emptied chan struct{} // closed when the last member left before the call
}

// batcher packs the seqs of waiting group recall tasks into calls.
type batcher struct {
	h    *Handler
	mu   sync.Mutex
	open map[batchKey]*batch // the batch each key's next seq joins
}

func newBatcher(h *Handler) *batcher { return &batcher{h: h, open: map[batchKey]*batch{}} }

// join adds m to the open batch of k, starting one (and its runner) when
// there is none, it is full or it holds m's seq already.
func (c *batcher) join(k batchKey, m *member) *batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.open[k]
	if b != nil && b.has(m.seq) {
		b = nil // the same seq twice (a task run twice at once): a call of its own
	}
	if b == nil {
		b = &batch{key: k, created: c.h.cfg.Now(), changed: make(chan struct{}, 1), emptied: make(chan struct{})}
		if c.open[k] == nil {
			c.open[k] = b
		}
		go c.run(b)
	}
	b.members = append(b.members, m)
	if len(b.members) >= tim.MaxGroupRecallSeqs && c.open[k] == b {
		delete(c.open, k) // full: the next seq starts another
	}
	signal(b.changed)
	return b
}

func (b *batch) has(seq uint64) bool {
	for _, m := range b.members {
		if m.seq == seq {
			return true
		}
	}
	return false
}

// leave takes m out of b if the call has not gone yet; false means it has
// (or is going), and m's answer will come.
func (c *batcher) leave(b *batch, m *member) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.sealed {
		return false
	}
	for i, x := range b.members {
		if x == m {
			b.members = append(b.members[:i], b.members[i+1:]...)
			break
		}
	}
	if len(b.members) == 0 {
		b.sealed = true
		if c.open[b.key] == b {
			delete(c.open, b.key)
		}
		close(b.emptied)
	}
	signal(b.changed)
	return true
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// snapshot returns the members' count and whether one is the breaker's
// probe.
func (c *batcher) snapshot(b *batch) (n int, probe int64, sealed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range b.members {
		if m.probe != 0 {
			probe = m.probe
		}
	}
	return len(b.members), probe, b.sealed
}

// mostCut returns the cuts in a row of b's most-cut member: the batch's
// call goes as that member's own would (limiter.ConnCuts.Go).
func (c *batcher) mostCut(b *batch) limiter.ConnCuts {
	c.mu.Lock()
	defer c.mu.Unlock()
	var most limiter.ConnCuts
	for _, m := range b.members {
		most = max(most, m.connCuts)
	}
	return most
}

// seal ends b's membership: the call goes with the members it has.
func (c *batcher) seal(b *batch) []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.sealed {
		return nil
	}
	b.sealed = true
	if c.open[b.key] == b {
		delete(c.open, b.key)
	}
	return append([]*member(nil), b.members...)
}

// run lingers, waits for the group bucket's slot, makes the call and
// hands each member its answer.
func (c *batcher) run(b *batch) {
	h := c.h
	linger := h.cfg.GroupLinger
	lane := LaneBulk
	if b.key.urgent {
		linger, lane = h.cfg.GroupUrgentLinger, LaneUrgent
	}
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for lingering := true; lingering; {
		n, _, sealed := c.snapshot(b)
		if sealed {
			return // everyone left
		}
		if n >= tim.MaxGroupRecallSeqs {
			break
		}
		select {
		case <-b.changed:
		case <-timer.C:
			lingering = false
		}
	}
	for {
		_, probe, sealed := c.snapshot(b)
		if sealed {
			return
		}
		permit, err := c.wait(b, lane, probe)
		if err != nil {
			c.deliver(c.seal(b), batchAnswer{err: err})
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		cuts := c.mostCut(b)
		call, err := cuts.Go(ctx, permit, h.cfg.Now)
		if err != nil {
			cancel()
			h.log.Debug("slot missed, asking for another", "group_id", b.key.group, "err", err)
			continue
		}
		members := c.seal(b)
		if len(members) == 0 {
			cancel()
			permit.Unused()
			return // everyone left; the slot is lost, which never breaks the cap
		}
		c.call(ctx, b.key, members, call)
		cancel()
		return
	}
}

// wait asks the group bucket for a slot. It gives up when the worker
// starts stopping, when this process's circuit of group_msg_recall opens
// (unless the batch carries the probe) or when every member left.
func (c *batcher) wait(b *batch, lane Lane, probe int64) (Permit, error) {
	h := c.h
	var tripped <-chan struct{}
	if probe == 0 {
		tripped = h.group.breaker.Tripped()
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-h.cfg.Stopping: // nil when unset: never
			cancel(ErrStopping)
		case <-tripped:
			cancel(ErrCircuitOpen)
		case <-b.emptied:
			cancel(context.Canceled)
		case <-stop:
		}
	}()
	p, err := h.cfg.GroupLimiter.Wait(ctx, lane)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return p, cause
		}
	}
	return p, err
}

// callTimeout bounds a batch's call beyond the client's own timeout (the
// call serves several tasks, so no one task's context is its own).
const callTimeout = 30 * time.Second

// call makes the batch's one call and settles what concerns the app once:
// the limiter's observation and slow-down, the group_msg_recall breaker,
// the last good answer. Each member then gets its own seq's answer.
func (c *batcher) call(ctx context.Context, k batchKey, members []*member, call *limiter.Call) {
	h := c.h
	seqs := make([]uint64, len(members))
	probe := int64(0)
	sigAgain := false
	for i, m := range members {
		seqs[i] = m.seq
		if m.probe != 0 {
			probe = m.probe
		}
		sigAgain = sigAgain || m.sigRefreshed
	}
	started := h.cfg.Now()
	resp, callErr := h.cfg.GroupAPI.GroupRecall(call.Context(), k.group, seqs, k.topic)
	done := h.cfg.Now()
	permit, answered, endErr := call.End()
	switch {
	case errors.Is(endErr, limiter.ErrLate):
		// No connection to Tencent by the cutoff: nothing was sent. Each
		// member joins a new batch, for a new slot.
		h.log.Debug("slot missed waiting for a connection, asking for another", "group_id", k.group, "err", endErr)
		c.deliver(members, batchAnswer{err: endErr})
		return
	case endErr != nil:
		callErr = endErr // the connection failed: that is the call's error
	default:
		h.cfg.GroupLimiter.Observe(permit, answered)
	}
	log := h.log.With("group_id", k.group, "seqs", len(seqs))

	base := batchAnswer{called: true, resp: resp.Response, seqs: len(seqs), permit: permit, started: started, done: done}
	gc := GroupCall{Seqs: len(seqs), Code: resp.ErrorCode, Latency: done.Sub(permit.Slot)}
	if callErr != nil {
		base.err, gc.Code = callErr, NoAnswer
		if o, bad := ClassifyTransport(callErr); bad {
			h.group.breaker.failure(ctx, log, o, probe)
			gc.ConfigError = true
		}
	}
	answers := make([]batchAnswer, len(members))
	config, good, sigStale := Outcome{}, false, false
	for i := range members {
		a := base
		if i < len(resp.Seqs) && resp.Seqs[i].MsgSeq == seqs[i] {
			a.seq = resp.Seqs[i]
		} else {
			a.seq = tim.SeqResult{MsgSeq: seqs[i]}
		}
		if callErr == nil {
			a.o = GroupSeqOutcome(resp.ErrorCode, a.seq)
			switch a.o.Class {
			case Configuration:
				config = a.o
			case SigStale:
				if sigAgain {
					config = refusedAgain(a.o)
				}
				sigStale = true
			case Done, DeadLetter:
				good = true
			case RateLimited:
				if gc.RateLimited == 0 {
					gc.RateLimited = a.o.Code
				}
			}
		}
		answers[i] = a
	}
	switch {
	case callErr != nil:
	case config.Class == Configuration:
		h.group.breaker.failure(ctx, log, config, probe)
		gc.ConfigError = true
	case sigStale:
		// A first refusal of the UserSig: neutral, as for a one-to-one
		// call (Handler.decide); the members call again with a fresh one,
		// the probe among them, and that answer decides.
	default:
		h.group.breaker.success(ctx, log)
	}
	if good {
		h.group.lastGood.Store(done.UnixNano())
	}
	if gc.RateLimited != 0 {
		if err := h.cfg.GroupLimiter.SlowDown(ctx, h.cfg.SlowDown); err != nil {
			log.Warn("could not share the slow-down", "err", err)
		}
	}
	if h.cfg.OnGroupCall != nil {
		h.cfg.OnGroupCall(gc)
	}
	for i, m := range members {
		m.out <- answers[i]
	}
}

// deliver hands a to every member.
func (c *batcher) deliver(members []*member, a batchAnswer) {
	for _, m := range members {
		m.out <- a
	}
}
