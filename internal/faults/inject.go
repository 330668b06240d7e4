package faults

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/sleep"
)

// Fault names, as --faults and the table's first column give them.
const (
	// FaultNone is the fault-free run every other run is compared with.
	FaultNone = "baseline"
	// FaultKill SIGKILLs one worker process every Options.KillEvery while
	// the campaign has tasks pending, and starts a replacement
	// Options.RestartAfter later.
	FaultKill = "sigkill-workers"
	// FaultRedis stops redis-server with Options.RedisSignal, keeps it down
	// for Options.RedisDown and starts it again on the same port with the
	// same directory, so it loads its append-only file.
	FaultRedis = "redis-restart"
	// FaultRedisHang stops redis-server with SIGSTOP for Options.RedisHang,
	// then continues it: its connections stay open and nothing answers, as
	// a hung primary or a dead network path does, where a restart refuses
	// connections at once.
	FaultRedisHang = "redis-hang"
	// FaultAPIDown makes the API unreachable (connection refused) for
	// Options.RefuseFor, then fail every recall with the API's internal
	// error for Options.Code91000For: 91000 from admin_msgwithdraw, 10002
	// from group_msg_recall (the simulator's FailRate at 1; a message that
	// does not exist or was recalled still answers so).
	FaultAPIDown = "api-down"
	// FaultAPISlow makes the API answer after Options.SlowLatency (beyond
	// the client's 5 s timeout) for Options.SlowFor.
	FaultAPISlow = "api-slow"
	// FaultCredentials makes the API answer Options.CredentialsCode (70009:
	// UserSig verification failed, as for a wrong TIM_SECRET_KEY) to every
	// call for Options.CredentialsFor, then accept calls again.
	FaultCredentials = "bad-credentials"
)

// Modes of FaultAPISlow.
const (
	// SlowAnswer: the server is slow. The simulator decides each call on
	// arrival (it counts against the cap, the message is recalled) and
	// answers Options.SlowLatency later (imsim Faults.AnswerDelay): a
	// client that gave up never learns its recall happened.
	SlowAnswer = "answer"
	// SlowNetwork: the way there is slow. Each call sleeps
	// Options.SlowLatency before it reaches the simulator (imsim latency);
	// the client gives up first, so the call never arrives.
	SlowNetwork = "network"
)

// AllFaults are the faults a suite runs by default, in order.
var AllFaults = []string{FaultKill, FaultRedis, FaultRedisHang, FaultAPIDown, FaultAPISlow, FaultCredentials}

// look is one look at the campaign's queue.
type look struct {
	now    time.Time
	done   int              // completed + archived
	queued int              // the campaign's tasks
	info   *asynq.QueueInfo // nil when Redis did not answer
}

// injector does one fault to a run. step runs after every look at the
// queue; it starts the fault once Options.FaultAt of the tasks are
// finished, moves it along and ends it. over reports that the fault is
// over: the drain is not over before it.
type injector interface {
	step(ctx context.Context, r *run, l look) error
	over() bool
}

// newInjector returns the injector of the named fault.
func newInjector(name string) (injector, error) {
	switch name {
	case FaultNone:
		return noFault{}, nil
	case FaultKill:
		return &killFault{}, nil
	case FaultRedis:
		return &redisFault{}, nil
	case FaultRedisHang:
		return &redisHangFault{}, nil
	case FaultAPIDown:
		return &apiDownFault{}, nil
	case FaultAPISlow:
		return &apiSlowFault{}, nil
	case FaultCredentials:
		return &credentialsFault{}, nil
	}
	return nil, fmt.Errorf("unknown fault %q: use %s", name, strings.Join(AllFaults, ", "))
}

// due reports whether the fault should start: FaultAt of the tasks are
// finished (completed or archived).
func due(r *run, l look) bool {
	return l.info != nil && float64(l.done) >= r.s.o.FaultAt*float64(l.queued)
}

type noFault struct{}

func (noFault) step(context.Context, *run, look) error { return nil }
func (noFault) over() bool                             { return true }

// killFault: SIGKILL a worker every KillEvery while tasks are pending.
type killFault struct {
	started, stopped bool
	next             time.Time
	kills            int
	restarts         []restartDue
}

// restartDue is a replacement to start in a worker slot.
type restartDue struct {
	slot int
	at   time.Time
}

func (k *killFault) step(ctx context.Context, r *run, l look) error {
	o := r.s.o
	// Replacements that are due.
	rest := k.restarts[:0]
	for _, rd := range k.restarts {
		if l.now.Before(rd.at) {
			rest = append(rest, rd)
			continue
		}
		w, err := r.startWorker(rd.slot)
		if err != nil {
			return err
		}
		r.event("started %s (pid %d) in place of the killed worker", w.Name(), w.PID())
	}
	k.restarts = rest

	if !k.started && due(r, l) {
		k.started, k.next = true, l.now
	}
	if !k.started || k.stopped || l.now.Before(k.next) || l.info == nil {
		return nil
	}
	if l.info.Pending == 0 {
		k.stopped = true
		r.event("no task pending any more: stopped killing after %d kills", k.kills)
		return nil
	}
	slot := k.kills % len(r.workers)
	w := r.workers[slot]
	active := l.info.Active
	w.Signal(syscall.SIGKILL)
	w.Wait(5 * time.Second)
	r.killed[w] = true
	k.kills++
	k.next = l.now.Add(o.KillEvery)
	k.restarts = append(k.restarts, restartDue{slot: slot, at: l.now.Add(o.RestartAfter)})
	r.event("SIGKILL %s (pid %d), kill %d, with %d/%d finished and %d active in all workers", w.Name(), w.PID(), k.kills, l.done, l.queued, active)
	return nil
}

func (k *killFault) over() bool { return k.stopped && len(k.restarts) == 0 }

// redisBack follows a run once Redis is back from a fault, until tasks
// finish again.
type redisBack struct {
	back       bool
	backAt     time.Time
	doneAtBack int
	resumed    bool
}

// isBack notes that Redis is back at look l.
func (b *redisBack) isBack(l look) { b.back, b.backAt, b.doneAtBack = true, time.Now(), l.done }

// watch notes, once, the first look after Redis came back at which more
// tasks had finished; format takes the seconds since and the done and
// queued counts.
func (b *redisBack) watch(r *run, l look, format string) {
	if !b.resumed && l.info != nil && l.done > b.doneAtBack {
		b.resumed = true
		r.event(format, l.now.Sub(b.backAt).Seconds(), l.done, l.queued)
	}
}

func (b *redisBack) over() bool { return b.resumed }

// redisFault: one restart of redis-server.
type redisFault struct{ redisBack }

func (f *redisFault) step(ctx context.Context, r *run, l look) error {
	o := r.s.o
	if f.back {
		f.watch(r, l, "workers reconnected by themselves: tasks finishing again %.1f s after Redis answered (%d/%d finished)")
		return nil
	}
	if !due(r, l) {
		return nil
	}
	sig := syscall.SIGKILL
	if o.RedisSignal == "TERM" {
		sig = syscall.SIGTERM
	}
	r.event("%s redis-server (pid %d) with %d/%d finished; it stays down for %s", signalName(sig), r.redis.proc.PID(), l.done, l.queued, o.RedisDown)
	info, err := r.redis.restart(ctx, sig, o.RedisDown)
	if err != nil {
		return err
	}
	f.isBack(l)
	r.event("redis-server back on %s (pid %d) %.1f s after the %s (exited %.2f s after it): %d keys before, %d loaded from the append-only file (%d bytes)",
		r.redis.addr, r.redis.proc.PID(), info.down.Seconds(), info.signal, info.exited.Seconds(), info.before, info.keys, info.aofSize)
	return nil
}

// redisHangFault: SIGSTOP redis-server for RedisHang, then SIGCONT.
type redisHangFault struct{ redisBack }

func (f *redisHangFault) step(ctx context.Context, r *run, l look) error {
	if f.back {
		f.watch(r, l, "tasks finishing again %.1f s after Redis was continued (%d/%d finished)")
		return nil
	}
	if !due(r, l) {
		return nil
	}
	hang := r.s.o.RedisHang
	r.event("SIGSTOP redis-server (pid %d) with %d/%d finished: connections open, nothing answers for %s", r.redis.proc.PID(), l.done, l.queued, hang)
	r.redis.proc.Signal(syscall.SIGSTOP)
	err := sleep.For(ctx, hang)
	r.redis.proc.Signal(syscall.SIGCONT)
	if err != nil {
		return err
	}
	f.isBack(l)
	r.event("SIGCONT redis-server after %s", hang)
	return nil
}

// apiDownFault: connection refused, then only 91000.
type apiDownFault struct {
	started   bool
	at        time.Time
	confirmed bool
	announced bool
	ended     bool
}

func (f *apiDownFault) step(ctx context.Context, r *run, l look) error {
	o := r.s.o
	if !f.started {
		if !due(r, l) {
			return nil
		}
		// FailRate 1, not CodeUntil 91000: CodeUntil answers its one code
		// to both APIs, and 91000 is not group_msg_recall's (its table
		// reads it as unknown and dead-letters after a few attempts). No
		// call is answered while connections are refused, so the fail
		// rate may start with the refusal.
		fa := r.s.baseFaults()
		fa.RefuseFor = o.RefuseFor.String()
		fa.FailRate = 1
		if err := r.s.sim.setFaults(ctx, fa); err != nil {
			return err
		}
		f.started, f.at = true, time.Now()
		r.event("API unreachable (listener closed: connection refused) for %s, then failing every recall with 91000 (group_msg_recall: 10002) for %s; %d/%d finished",
			o.RefuseFor, o.Code91000For, l.done, l.queued)
		return nil
	}
	since := l.now.Sub(f.at)
	switch {
	case !f.confirmed && since < o.RefuseFor-time.Second:
		if r.s.sim.refused() {
			f.confirmed = true
			r.event("confirmed: a new connection to the API is refused (%.1f s into the fault)", since.Seconds())
		}
	case !f.announced && since >= o.RefuseFor:
		f.announced = true
		r.event("API reachable again, failing every recall with 91000 (group_msg_recall: 10002) for %s; %d/%d finished", o.Code91000For, l.done, l.queued)
	case !f.ended && since >= o.RefuseFor+o.Code91000For:
		if err := r.s.sim.setFaults(ctx, r.s.baseFaults()); err != nil {
			return err
		}
		f.ended = true
		r.event("API healthy again; %d/%d finished", l.done, l.queued)
	}
	return nil
}

func (f *apiDownFault) over() bool { return f.ended }

// apiSlowFault: latency beyond the client's timeout.
type apiSlowFault struct {
	started, ended bool
	at             time.Time
}

func (f *apiSlowFault) step(ctx context.Context, r *run, l look) error {
	o := r.s.o
	switch {
	case !f.started && due(r, l):
		fa := r.s.baseFaults()
		if o.SlowMode == SlowNetwork {
			fa.LatencyMin, fa.LatencyMax = o.SlowLatency.String(), o.SlowLatency.String()
		} else {
			fa.AnswerDelay = o.SlowLatency.String()
		}
		if err := r.s.sim.setFaults(ctx, fa); err != nil {
			return err
		}
		f.started, f.at = true, time.Now()
		r.event("API slow (%s): %s; %d/%d finished", o.SlowMode, slowDescription(o), l.done, l.queued)
	case f.started && !f.ended && l.now.Sub(f.at) >= o.SlowFor:
		if err := r.s.sim.setFaults(ctx, r.s.baseFaults()); err != nil {
			return err
		}
		f.ended = true
		r.event("API fast again (latency %s-%s, no answer delay); %d/%d finished", o.LatencyMin, o.LatencyMax, l.done, l.queued)
	}
	return nil
}

func (f *apiSlowFault) over() bool { return f.ended }

// credentialsFault: every call answered with a configuration error.
type credentialsFault struct {
	started, ended bool
	at             time.Time
}

func (f *credentialsFault) step(ctx context.Context, r *run, l look) error {
	o := r.s.o
	switch {
	case !f.started && due(r, l):
		fa := r.s.baseFaults()
		fa.CodeFor, fa.Code = o.CredentialsFor.String(), o.CredentialsCode
		if err := r.s.sim.setFaults(ctx, fa); err != nil {
			return err
		}
		f.started, f.at = true, time.Now()
		r.event("wrong credentials: the API answers %d to every call for %s; %d/%d finished", o.CredentialsCode, o.CredentialsFor, l.done, l.queued)
	case f.started && !f.ended && l.now.Sub(f.at) >= o.CredentialsFor:
		f.ended = true
		r.event("credentials fixed: the API accepts calls again; %d/%d finished; %d \"circuit open\" lines in the workers' logs so far",
			l.done, l.queued, r.countLogLines(circuitOpen))
	}
	return nil
}

func (f *credentialsFault) over() bool { return f.ended }
