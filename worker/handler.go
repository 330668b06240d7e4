// Package worker is the consumer side of recallq: the asynq handler that
// turns a recall task into one admin_msgwithdraw call, or a group recall
// task into its seq's share of one group_msg_recall call (batch.go packs
// up to ten waiting seqs of a group into a call), and the server that runs
// it.
//
// Every call first takes a slot from the limiter that all workers of the
// app share, so that together they stay under Tencent's 200 calls/s. What
// happens with the answer is decided by one table (outcome.go):
//
//   - done (0, 20023): the task completes;
//   - dead letter (20022, 90054, ...): archived at once with the code;
//   - transient (91000, network, 5xx): retried with exponential backoff and
//     jitter, a bounded number of times;
//   - rate limited (60007, ...): every worker slows down together and the
//     task is tried again without using up a retry;
//   - configuration (90009, a bad key, ...): never the task's fault; retried
//     late without using up a retry, and the operator is told what to fix.
//
// asynq archives any failing task whose retry count has reached its limit,
// before it asks whether the error was a failure at all. asynq's limit is
// the real budget (so its tools show the truth), and a task archived on its
// last attempt for a reason that is not its own (a rate limit, a
// configuration error, a stop, a crash) is put back (lastattempt.go): no
// task stays dead-lettered for a reason that is not its own.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/time/rate"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
)

// The types of the API and Limiter seams. They are the internal client's
// and limiter's own types, named here: worker's exported surface is
// complete, so a package outside this module can implement API and Limiter
// (a test double, another limiter) and read every Event field.
type (
	// Response is Tencent's answer to one call (tim.Response).
	Response = tim.Response
	// Lane is a limiter lane (limiter.Lane): LaneUrgent or LaneBulk.
	Lane = limiter.Lane
	// Permit is one granted slot (limiter.Permit). A Permit built outside
	// the shared limiter has Slot, Waited and RedisSlot only; its Admit
	// always lets the call go.
	Permit = limiter.Permit
)

// The lanes: single recalls (the urgent queue) and campaigns (the bulk
// queue).
const (
	LaneUrgent = limiter.Urgent
	LaneBulk   = limiter.Bulk
)

// API is the Tencent REST client the handler calls (*tim.Client). When an
// answer refuses the UserSig (70001, 60004, 60005) the client itself makes
// the next call carry a new one.
type API interface {
	Withdraw(ctx context.Context, from, to, msgKey string) (Response, error)
}

// Limiter is the rate limiter shared by every worker of the app
// (*limiter.Limiter). Wait blocks until the call may go; Observe reports
// when its answer came; SlowDown makes every worker pause after the API
// said "too many requests".
type Limiter interface {
	Wait(ctx context.Context, lane Lane) (Permit, error)
	Observe(p Permit, done time.Time)
	SlowDown(ctx context.Context, d time.Duration) error
}

// Event describes one API call's result, for metrics and summaries.
type Event struct {
	TaskID string
	Queue  string
	// Recall is the one-to-one recall. For a group recall it is the
	// group task seen through the same fields (GroupRecallAsRecall), so
	// that what reads Recall (campaign counts and audits) works unchanged.
	Recall tasks.Recall
	// Group is the group recall, nil for a one-to-one recall. Its Code and
	// Class are its seq's; what the call said about the app (a rate limit,
	// a configuration error) is shared by every seq of the call and comes
	// once per call through HandlerConfig.OnGroupCall (GroupCall).
	Group *tasks.GroupRecall
	// CallSeqs is how many seqs the group call carried (0: one-to-one).
	CallSeqs int
	Code     int   // Tencent's ErrorCode; NoAnswer when no answer was read
	Class    Class // the answer's class
	Fate     Fate  // what became of the task
	Err      error // the transport error when Code is NoAnswer (redacted)
	Waited   time.Duration
	Latency  time.Duration
}

// Recorder receives an Event after every API call (metrics, campaign
// counters, summaries). It must be safe for concurrent use and must not
// block for long: it runs on the call path.
type Recorder interface {
	Record(Event)
}

// Recorders returns a Recorder that passes each Event to every r in turn.
func Recorders(rs ...Recorder) Recorder { return recorders(rs) }

type recorders []Recorder

func (rs recorders) Record(ev Event) {
	for _, r := range rs {
		if r != nil {
			r.Record(ev)
		}
	}
}

// Defaults for HandlerConfig.
const (
	// DefaultConfigRetryDelay: a task whose call met a configuration
	// error goes back about as soon as the tasks a process holds while its
	// circuit is open (breakerHold), for a process whose configuration
	// works: the breaker, not the task's delay, bounds the calls a broken
	// configuration makes. (At a minute, one bad pod of four made a
	// 3,000-recall campaign of 16 s last 85-129 s: its last tasks were the
	// ones the bad pod had met.)
	DefaultConfigRetryDelay = time.Second
	// uncountedConfigRetryDelay is the wait of a task after a
	// configuration error no breaker counts (a task for an app the handler
	// cannot queue for, a handler without the group client): nothing else
	// bounds how often it comes back.
	uncountedConfigRetryDelay = time.Minute
	DefaultOutageRetryDelay   = time.Minute
	// DefaultOutageQuiet: when this worker has had no good answer (done
	// or dead letter: Tencent processed a request) from an API for this
	// long after having had some, that API is down, not the task's
	// request.
	DefaultOutageQuiet = time.Minute
	DefaultSlowDown    = time.Second
	// DefaultRateLimitedInPlace is how many times a rate-limited call is
	// tried again inside the same attempt (after the shared pause) before
	// the task goes back through the retry set.
	DefaultRateLimitedInPlace = 3
)

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// SDKAppID is the app this worker serves. Required.
	SDKAppID uint64
	// AppsFileApp is the app's name in the apps file (TIM_APPS_FILE) when
	// the worker runs from one: the fix of every configuration error then
	// names the app's fields in the file (sdkappid, admin,
	// secret_key_file, region, endpoint, rate) instead of the single-app
	// variables, which are refused beside the file. "": a single-app
	// worker, whose fixes name TIM_SDKAPPID, TIM_ADMIN and so on.
	AppsFileApp string
	// API calls Tencent. Required.
	API API
	// Limiter is the shared limiter. Required.
	Limiter Limiter
	// Secrets are scrubbed from every error the handler returns (asynq
	// stores them, the dashboard shows them). The UserSig is always
	// scrubbed; add the secret key here.
	Secrets []string
	// ConfigRetryDelay is how long a task waits after a configuration
	// error its API's circuit breaker counted. Default
	// DefaultConfigRetryDelay.
	ConfigRetryDelay time.Duration
	// OutageRetryDelay is how long a task waits, without using a retry,
	// when its retries are spent during an outage (see transient). Default
	// DefaultOutageRetryDelay.
	OutageRetryDelay time.Duration
	// SlowDown is how long every worker pauses after a rate-limit answer.
	// Default DefaultSlowDown.
	SlowDown time.Duration
	// RateLimitedInPlace: default DefaultRateLimitedInPlace.
	RateLimitedInPlace int
	// Stopping, when done, makes tasks that are still waiting for a slot
	// go back to the queue at once instead of calling the API (graceful
	// shutdown). Optional.
	Stopping <-chan struct{}
	// Recorder receives every call's result. Optional.
	Recorder Recorder
	// BreakerThreshold is how many configuration errors in a row from one
	// API open this worker's circuit of that API. Default
	// DefaultBreakerThreshold.
	BreakerThreshold int
	// OnBreaker is told when the configuration-error circuit of api
	// (tim.APIWithdraw or tim.APIGroupRecall) opens and closes (for
	// metrics and readiness); o is the error that opened it. While open,
	// it is told again (open true) when a probe fails on an error of the
	// other kind (o.Console differs: the app's console setting, or this
	// worker's own), o being that error. Optional.
	OnBreaker func(api string, open bool, o Outcome)
	// GroupAPI makes group recall calls. Default: API, when it implements
	// GroupAPI (*tim.Client does).
	GroupAPI GroupAPI
	// GroupLimiter is the app's shared bucket of group_msg_recall (a
	// bucket of its own: each API has its own cap). Without it group
	// recall tasks are kept, not called, and the worker says why.
	GroupLimiter Limiter
	// GroupLinger and GroupUrgentLinger are how long a batch of group
	// recalls waits for more seqs of its group before it asks for a slot
	// (batch.go). Defaults DefaultGroupLinger and DefaultGroupUrgentLinger;
	// negative: no linger.
	GroupLinger, GroupUrgentLinger time.Duration
	// OnGroupCall is told about every group_msg_recall call (for
	// metrics). It must not block. Optional.
	OnGroupCall func(GroupCall)
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler processes recall tasks. It implements asynq.Handler.
type Handler struct {
	cfg      HandlerConfig
	log      *slog.Logger
	loudOnce rate.Sometimes // bounds the error-level configuration logs
	// withdraw and group are what this worker knows of admin_msgwithdraw
	// and of group_msg_recall from its own calls, each API apart.
	withdraw, group apiState
	// lastAttempt notes tasks on their last attempt (set by Run; nil: off).
	lastAttempt *lastAttempts
	// queues moves another app's task to its app's queue (set by Run;
	// nil: such a task is a configuration error).
	queues  *asynq.Client
	batches *batcher // packs group recalls into calls
}

// NewHandler applies the defaults and validates cfg.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	switch {
	case cfg.SDKAppID == 0:
		return nil, errors.New("worker: HandlerConfig.SDKAppID is not set")
	case cfg.API == nil:
		return nil, errors.New("worker: HandlerConfig.API is not set")
	case cfg.Limiter == nil:
		return nil, errors.New("worker: HandlerConfig.Limiter is not set: every call must go through the shared limiter")
	}
	if cfg.ConfigRetryDelay <= 0 {
		cfg.ConfigRetryDelay = DefaultConfigRetryDelay
	}
	if cfg.SlowDown <= 0 {
		cfg.SlowDown = DefaultSlowDown
	}
	if cfg.BreakerThreshold <= 0 {
		cfg.BreakerThreshold = DefaultBreakerThreshold
	}
	if cfg.OutageRetryDelay <= 0 {
		cfg.OutageRetryDelay = DefaultOutageRetryDelay
	}
	if cfg.RateLimitedInPlace <= 0 {
		cfg.RateLimitedInPlace = DefaultRateLimitedInPlace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.GroupAPI == nil {
		cfg.GroupAPI, _ = cfg.API.(GroupAPI)
	}
	switch {
	case cfg.GroupLinger == 0:
		cfg.GroupLinger = DefaultGroupLinger
	case cfg.GroupLinger < 0:
		cfg.GroupLinger = 0
	}
	switch {
	case cfg.GroupUrgentLinger == 0:
		cfg.GroupUrgentLinger = DefaultGroupUrgentLinger
	case cfg.GroupUrgentLinger < 0:
		cfg.GroupUrgentLinger = 0
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, loudOnce: rate.Sometimes{First: 1, Interval: 10 * time.Second},
		withdraw: apiState{name: tim.APIWithdraw, breaker: newBreaker(tim.APIWithdraw, cfg)},
		group:    apiState{name: tim.APIGroupRecall, breaker: newBreaker(tim.APIGroupRecall, cfg)}}
	h.batches = newBatcher(h)
	return h, nil
}

// apiState is what this worker knows of one Tencent API from its own
// calls. The two APIs fail apart (group recall can be disabled in the
// console while admin_msgwithdraw works; either can be down alone), so
// what one answers never speaks for the other.
type apiState struct {
	name string // tim.APIWithdraw or tim.APIGroupRecall
	// breaker stops this API's calls after a run of configuration errors
	// from it.
	breaker *breaker
	// lastGood is the unix ns of this API's last done or dead-letter
	// answer (0: none yet), for outage.
	lastGood atomic.Int64
}

// ProcessTask recalls one message. See the package comment for what each
// answer leads to.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	end := h.lastAttempt.begin(ctx)
	process := h.process
	if t.Type() == tasks.TypeGroupRecall {
		process = h.processGroup
	}
	err := h.scrub(process(ctx, t))
	end(err)
	return err
}

func (h *Handler) process(ctx context.Context, t *asynq.Task) error {
	r, err := tasks.Decode(t.Payload())
	if err != nil {
		// Only a producer that bypassed tasks.NewTask can get here. The
		// task can never succeed; archive it with the reason so an
		// operator sees it.
		return fmt.Errorf("bad payload: %w: %w", err, asynq.SkipRetry)
	}
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	log := h.log.With("task_id", id, "queue", queue, "msg_key", r.MsgKey)
	if r.SDKAppID != h.cfg.SDKAppID {
		return h.otherApp(ctx, log, t, r.SDKAppID)
	}
	lane := laneOf(queue)
	// This process's configuration-error circuit of admin_msgwithdraw:
	// while it is open the task goes back without a call (but for one
	// probe now and then) and without using a retry; the other workers of
	// the app take it.
	br := h.withdraw.breaker
	ok, probe := br.admit(ctx, h.cfg.Stopping)
	if !ok {
		return &retryLater{reason: "not called: this worker's configuration-error circuit of admin_msgwithdraw is open; the task goes to another worker"}
	}
	defer br.release(probe)
	var tripped <-chan struct{} // the probe calls while the circuit is open
	if probe == 0 {
		tripped = br.Tripped()
	}
	waitCtx, stopWaiting := h.waitContext(ctx, tripped)
	defer stopWaiting()

	sigRefreshed := false
	var connCuts limiter.ConnCuts
	for rateLimited := 0; ; {
		permit, werr := h.cfg.Limiter.Wait(waitCtx, lane)
		if werr != nil {
			// Shutting down, out of time while waiting, or the limiter's
			// Redis is unreachable: waiting is not failing; back to the
			// queue without using a retry.
			return goBack("not called", werr)
		}
		call, lateErr := connCuts.Go(ctx, permit, h.cfg.Now)
		if lateErr != nil {
			// Descheduled or stopped since the slot: the call would land in
			// a second that already holds its share. The slot is lost; ask
			// for another.
			log.DebugContext(ctx, "slot missed, asking for another", "err", lateErr)
			continue
		}
		resp, callErr := h.cfg.API.Withdraw(call.Context(), r.FromAccount, r.ToAccount, r.MsgKey)
		done := h.cfg.Now()
		sent, answered, endErr := call.End()
		connCuts.Ended(endErr)
		switch {
		case errors.Is(endErr, limiter.ErrLate):
			// No connection to Tencent by the cutoff (a dial, a TLS
			// handshake): nothing was sent. The connection is ready now;
			// ask for another slot.
			log.DebugContext(ctx, "slot missed waiting for a connection, asking for another", "err", endErr, "in_a_row", int(connCuts))
			continue
		case endErr != nil:
			callErr = endErr // the connection failed: that is the call's error
		default:
			h.cfg.Limiter.Observe(sent, answered)
		}
		ev := Event{TaskID: id, Queue: queue, Recall: r, Code: NoAnswer, Class: Transient,
			Waited: permit.Waited, Latency: done.Sub(permit.Slot)}
		var err error
		again := false
		if callErr != nil {
			ev.Err = callErr
			o, bad := ClassifyTransport(callErr)
			switch {
			case ctx.Err() != nil:
				// The task's own context ended while the call was out
				// (asynq's deadline, a stop): neither the task's failure
				// nor a Tencent outage. Whatever the call did, a later run
				// reads it (a recalled message answers 20023, done).
				err = goBack("the call's answer did not come before the task ended", context.Cause(ctx))
			case bad:
				// The path to Tencent is misconfigured: not the task's fault.
				ev.Class = Configuration
				br.failure(ctx, log, o, probe)
				err = h.configError(ctx, log, o)
			default:
				err = h.transient(ctx, log, &h.withdraw, Classify(NoAnswer), callErr)
			}
		} else {
			o := Classify(resp.ErrorCode)
			ev.Code, ev.Class = resp.ErrorCode, o.Class
			err, again = h.decide(ctx, log, o, probe, &rateLimited, &sigRefreshed)
		}
		ev.Fate = fateOf(ev.Code, err, again)
		h.record(ev)
		if !again {
			if err == nil {
				h.writeResult(ctx, log, t, resp)
			}
			return err
		}
	}
}

// decide applies the outcome table to one admin_msgwithdraw answer. again
// means: call once more now, within this attempt.
func (h *Handler) decide(ctx context.Context, log *slog.Logger, o Outcome, probe int64, rateLimited *int, sigRefreshed *bool) (err error, again bool) {
	br := h.withdraw.breaker
	switch {
	case o.Class == Configuration:
		br.failure(ctx, log, o, probe)
	case o.Class == SigStale && *sigRefreshed:
		br.failure(ctx, log, refusedAgain(o), probe)
	case o.Class == SigStale:
		// The first refusal tells nothing yet: the call goes again at once
		// with a fresh UserSig (still the probe, if it is one), and that
		// answer decides. Counted as a success it would reset the run of
		// configuration errors, so a wrong key (refused every time) would
		// never open the circuit, and a probe would close it.
	default:
		br.success(ctx, log)
	}
	if o.Class == Done || o.Class == DeadLetter {
		h.withdraw.lastGood.Store(h.cfg.Now().UnixNano())
	}
	if o.Class == RateLimited {
		if err := h.cfg.Limiter.SlowDown(ctx, h.cfg.SlowDown); err != nil {
			log.WarnContext(ctx, "could not share the slow-down", "err", err)
		}
	}
	return h.settle(ctx, log, &h.withdraw, o, rateLimited, sigRefreshed)
}

// settle decides what becomes of one task of api by its answer's row, once
// what concerns the app (the breaker, the slow-down, the last good answer)
// is done: by decide for a one-to-one call, by the batch for a group call.
func (h *Handler) settle(ctx context.Context, log *slog.Logger, api *apiState, o Outcome, rateLimited *int, sigRefreshed *bool) (err error, again bool) {
	switch o.Class {
	case Done:
		if o.Code != 0 {
			log.InfoContext(ctx, "already recalled", "code", o.Code)
		} else {
			log.DebugContext(ctx, "recalled")
		}
		return nil, false
	case DeadLetter:
		log.WarnContext(ctx, "dead-lettered", "code", o.Code, "meaning", o.Meaning)
		return fmt.Errorf("%w: %w", o.answer(), asynq.SkipRetry), false
	case RateLimited:
		*rateLimited++
		if *rateLimited <= h.cfg.RateLimitedInPlace {
			return nil, true
		}
		return &retryLater{reason: o.answer().Error(), delay: h.cfg.SlowDown, err: o.answer()}, false
	case SigStale:
		// The client has already made the next call carry a new UserSig.
		if !*sigRefreshed {
			*sigRefreshed = true
			log.InfoContext(ctx, "UserSig refused; calling again with a new one", "code", o.Code)
			return nil, true
		}
		return h.configError(ctx, log, refusedAgain(o)), false
	case Configuration:
		return h.configError(ctx, log, o), false
	default: // Transient, Unknown
		return h.transient(ctx, log, api, o, nil), false
	}
}

// refusedAgain is the configuration error of a UserSig refused (o, a
// SigStale row) again after the client made a fresh one.
func refusedAgain(o Outcome) Outcome {
	return Outcome{Code: o.Code, Class: Configuration, Meaning: o.Meaning + " (again, with a fresh UserSig)",
		Fix: "check TIM_SECRET_KEY, TIM_SDKAPPID and TIM_ADMIN", API: o.API}
}

// Fate is what became of a task after one API call.
type Fate string

const (
	// FateRecalled: the message was recalled; the task completes.
	FateRecalled Fate = "recalled"
	// FateAlreadyRecalled: 20023 (a group seq: 10030); the task completes.
	FateAlreadyRecalled Fate = "already_recalled"
	// FateDeadLettered: the task is archived.
	FateDeadLettered Fate = "dead_lettered"
	// FateRetrying: a failure; the task will be retried, using one retry.
	FateRetrying Fate = "retrying"
	// FateKept: not the task's fault (rate limit, configuration, shutdown);
	// the task will run again without using a retry.
	FateKept Fate = "kept"
	// FateCalledAgain: the call is repeated at once within the attempt
	// (after a shared slow-down, or with a new UserSig).
	FateCalledAgain Fate = "called_again"
)

// Fates returns every Fate: the values of the metrics' fate label.
func Fates() []Fate {
	return []Fate{FateRecalled, FateAlreadyRecalled, FateDeadLettered, FateRetrying, FateKept, FateCalledAgain}
}

// Final reports whether the task will not run again.
func (f Fate) Final() bool {
	return f == FateRecalled || f == FateAlreadyRecalled || f == FateDeadLettered
}

func fateOf(code int, err error, again bool) Fate {
	var rl *retryLater
	switch {
	case again:
		return FateCalledAgain
	case err == nil && code != 0: // 20023, 10030: done, and counted apart
		return FateAlreadyRecalled
	case err == nil:
		return FateRecalled
	case errors.Is(err, asynq.SkipRetry):
		return FateDeadLettered
	case errors.As(err, &rl):
		return FateKept
	}
	return FateRetrying
}

// waitContext is ctx, also cancelled when the worker starts stopping or
// when tripped (this process's circuit of the task's API opening) is
// closed.
func (h *Handler) waitContext(ctx context.Context, tripped <-chan struct{}) (context.Context, func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	if h.cfg.Stopping == nil && tripped == nil {
		return wctx, func() { cancel(nil) }
	}
	stop := make(chan struct{})
	go func() {
		select {
		case <-h.cfg.Stopping:
			cancel(ErrStopping)
		case <-tripped:
			cancel(ErrCircuitOpen)
		case <-stop:
		}
	}()
	return wctx, func() { close(stop); cancel(nil) }
}

// ErrStopping: the worker is shutting down; tasks not yet called go back.
var ErrStopping = errors.New("worker is stopping")

// ErrCircuitOpen: this worker's configuration-error circuit of the task's
// API opened; tasks not yet called go back, for the other workers of the
// app.
var ErrCircuitOpen = errors.New("this worker's configuration-error circuit is open")

// transient decides between a retry that uses up one of the task's retries
// and the dead-letter set, once the budget is spent, for a failure o of a
// call of api.
func (h *Handler) transient(ctx context.Context, log *slog.Logger, api *apiState, o Outcome, cause error) error {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	budget := tasks.RetryBudget(maxRetry)
	if o.Class == Unknown {
		budget = min(budget, UnknownRetries)
	}
	answer := o.answer()
	what := answer.Error()
	if retried >= budget && h.outage(api, o) {
		// The API is down or unreachable, not this task's request: its
		// retries are spent but it is kept, however long the outage.
		log.WarnContext(ctx, "retries spent during an outage: kept, not archived", "api", api.name, "code", o.Code, "attempts", retried+1)
		what += " (retries spent during an outage: the task is kept)"
		if cause != nil {
			return &retryLater{reason: what + ": " + cause.Error(), delay: h.cfg.OutageRetryDelay, err: errors.Join(answer, cause)}
		}
		return &retryLater{reason: what, delay: h.cfg.OutageRetryDelay, err: answer}
	}
	if retried >= budget {
		if cause != nil {
			log.WarnContext(ctx, "dead-lettered after retries", "code", o.Code, "attempts", retried+1, "err", h.scrub(cause).Error())
		} else {
			log.WarnContext(ctx, "dead-lettered after retries", "code", o.Code, "attempts", retried+1)
		}
		if cause != nil {
			return fmt.Errorf("%w after %d attempts (%s): %w: %w", answer, retried+1, retriesText(retried, budget, o.Class), cause, asynq.SkipRetry)
		}
		return fmt.Errorf("%w after %d attempts (%s): %w", answer, retried+1, retriesText(retried, budget, o.Class), asynq.SkipRetry)
	}
	// asynq counts this failure: its Retried becomes retried+1, which is
	// what the error says, next to the same budget asynq shows.
	if cause != nil {
		log.InfoContext(ctx, "will retry", "code", o.Code, "retry", retried+1, "of", budget, "err", h.scrub(cause).Error())
	} else {
		log.InfoContext(ctx, "will retry", "code", o.Code, "retry", retried+1, "of", budget)
	}
	if cause != nil {
		return fmt.Errorf("%w (attempt %d failed; %s): %w", answer, retried+1, retryText(retried+1, budget, o.Class), cause)
	}
	return fmt.Errorf("%w (attempt %d failed; %s)", answer, retried+1, retryText(retried+1, budget, o.Class))
}

// outage reports whether a failure with o of a call of api says the API is
// down rather than that the task's request fails: no Tencent answer at all
// (o.Code NoAnswer: refused, reset, timed out, a 5xx or a body that is not
// Tencent's), or an answered failure when this worker has had no good
// answer from api for DefaultOutageQuiet after having had some. The other
// API's good answers do not count: either API can be down alone
// (group_msg_recall answering 10002 while admin_msgwithdraw works). An
// answered failure on a worker that never had a good answer from api
// counts as the task's (a worker started during a Tencent-wide error storm
// may archive what it holds: the price of not keeping every poison message
// forever).
func (h *Handler) outage(api *apiState, o Outcome) bool {
	if o.Code == NoAnswer {
		return true
	}
	last := api.lastGood.Load()
	return last != 0 && h.cfg.Now().Sub(time.Unix(0, last)) > DefaultOutageQuiet
}

// configError logs loudly and sends the task back after ConfigRetryDelay,
// without using up one of its retries: a configuration error the API's
// circuit breaker has counted. A worker run from an apps file names the
// app's fields in the file (Outcome.inAppsFile).
func (h *Handler) configError(ctx context.Context, log *slog.Logger, o Outcome) error {
	return h.configErrorAsIs(ctx, log, o.inAppsFile(h.cfg.AppsFileApp), h.cfg.ConfigRetryDelay)
}

// configErrorAsIs is configError with o's texts as they are (for a fix
// that does not speak of this app's own settings: otherApp) and the task
// back after delay.
func (h *Handler) configErrorAsIs(ctx context.Context, log *slog.Logger, o Outcome, delay time.Duration) error {
	msg := fmt.Sprintf("configuration error, tasks are kept and retried: %s", o.Meaning)
	if o.Code > 0 {
		msg = "configuration error, tasks are kept and retried: " + o.answer().Error()
	}
	h.loudOnce.Do(func() {
		log.ErrorContext(ctx, msg, "code", o.Code, "fix", o.Fix)
	})
	return &retryLater{reason: msg + "; fix: " + o.Fix, delay: delay}
}

func (h *Handler) record(ev Event) {
	if h.cfg.Recorder != nil {
		if ev.Err != nil {
			ev.Err = h.scrub(ev.Err)
		}
		h.cfg.Recorder.Record(ev)
	}
}

// scrub removes secrets from err's text while keeping its chain, so asynq
// stores (and the dashboard shows) a clean message.
func (h *Handler) scrub(err error) error {
	if err == nil {
		return nil
	}
	return &scrubbed{err: err, secrets: h.cfg.Secrets}
}

type scrubbed struct {
	err     error
	secrets []string
}

func (s *scrubbed) Error() string {
	msg := tim.Redact(s.err.Error())
	for _, secret := range s.secrets {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "REDACTED")
		}
	}
	return msg
}

func (s *scrubbed) Unwrap() error { return s.err }

// retryLater is an error that is not the task's fault: asynq retries the
// task after delay without counting it as a failure (see IsFailure).
type retryLater struct {
	reason string
	delay  time.Duration
	err    error
}

func (e *retryLater) Error() string { return e.reason }
func (e *retryLater) Unwrap() error { return e.err }

// goBack sends the task back at once, without using a retry, because of
// cause (the task's context ending, the limiter failing): "what: cause".
func goBack(what string, cause error) *retryLater {
	return &retryLater{reason: what + ": " + cause.Error(), err: cause}
}

// IsFailure is asynq's Config.IsFailure: waiting, rate limits, shutdown,
// configuration errors and crashed workers are not failures of the task and
// do not use up its retries.
func IsFailure(err error) bool {
	var rl *retryLater
	if errors.As(err, &rl) || errors.Is(err, asynq.ErrLeaseExpired) {
		return false
	}
	// asynq hands over its own context's bare error when a task's deadline
	// passes while the handler still runs (it can only be waiting: the
	// HTTP client gives up long before). Errors of ours always come wrapped.
	if err == context.DeadlineExceeded || err == context.Canceled { //nolint:errorlint // identity on purpose
		return false
	}
	return err != nil
}

// DefaultRetryBase is the first transient retry's delay; each later one
// doubles, up to DefaultRetryMax.
const (
	DefaultRetryBase = 2 * time.Second
	DefaultRetryMax  = 10 * time.Minute
)

// RetryDelay returns asynq's Config.RetryDelayFunc: exponential backoff with
// jitter for failures (base, 2*base, 4*base ... capped at max, each drawn
// from the upper half of its range), the error's own delay for everything
// else (a configuration error waits long, a shutdown returns at once).
func RetryDelay(base, max time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var rl *retryLater
		if errors.As(err, &rl) {
			if rl.delay <= 0 {
				return 0
			}
			return rl.delay + rand.N(rl.delay/4+1)
		}
		if errors.Is(err, asynq.ErrLeaseExpired) {
			return 0
		}
		d := max
		if n < 30 {
			d = min(max, base<<n)
		}
		return d/2 + rand.N(d/2+1)
	}
}
