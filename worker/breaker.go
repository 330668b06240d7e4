package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the configuration-error circuit breaker.
const (
	// DefaultBreakerThreshold: this many configuration errors in a row
	// open the circuit.
	DefaultBreakerThreshold = 3
	// DefaultBreakerOpenMin and DefaultBreakerOpenMax bound how long this
	// process stops calling while the circuit is open; each failed probe
	// doubles the pause.
	DefaultBreakerOpenMin = 5 * time.Second
	DefaultBreakerOpenMax = time.Minute
	// breakerHold is how long a task this process takes while its circuit
	// is open is held before it goes back. asynq has no way to stop taking
	// tasks for a while; a task handed back at once would be taken again at
	// once, and a process spinning like that would starve the healthy
	// ones of tasks. Holding each one a second bounds the churn to
	// Concurrency tasks a second, each delayed about a second.
	breakerHold = time.Second
)

// breaker stops this process's calls of one API after a run of
// configuration errors from it (a secret that is stale on this pod, an
// egress IP not allowlisted, a wrong TIM_ADMIN or endpoint in its
// environment, group recall disabled in the console): every further call
// would fail the same way. It reports the error that keeps it open
// (onChange), and again when a probe meets one of the other kind
// (Outcome.Console: the app's console setting, or this pod's own), so
// that readiness follows the fault the circuit is open on.
//
// It is per API: a Handler has one for admin_msgwithdraw and one for
// group_msg_recall, each struck and closed by its own API's answers only,
// so that an error only one API has (10041: group recall disabled) stops
// that API's calls and not the other's. An error that concerns the whole
// app (a refused UserSig, an IP or account refused, a bad endpoint) comes
// from both APIs alike, and opens each circuit in turn as its calls meet it.
//
// It is per process on purpose. One pod's bad environment
// must not stop the healthy pods, so the breaker never touches the shared
// limiter: when every pod of the app is broken (a revoked key), every pod's
// own circuit opens, and the app has stopped calling without anything
// shared to pause or to forget to resume.
//
// While it is open the process calls nothing but one probe when the pause
// is over: tasks waiting for a slot go back at once, tasks it takes go back
// after breakerHold, none using a retry. A probe that meets a configuration
// error again doubles the pause (DefaultBreakerOpenMin up to
// DefaultBreakerOpenMax); a first refusal of the UserSig tells neither way
// (the probe calls again with a fresh one, and that answer decides); any
// other answer closes the circuit.
type breaker struct {
	api       string // the API whose calls it stops: tim.APIWithdraw or tim.APIGroupRecall
	now       func() time.Time
	threshold int
	onChange  func(api string, open bool, o Outcome)

	mu        sync.Mutex
	streak    int
	open      bool
	pause     time.Duration
	nextProbe time.Time     // when the next probe may go
	probe     int64         // the probe out, 0 when none
	probes    int64         // numbers the probes
	tripped   chan struct{} // closed when the circuit opens; replaced when it closes
	lastOut   Outcome
	// app is HandlerConfig.AppsFileApp: the fixes it logs and reports
	// name the app's fields in the apps file ("": single-app).
	app string
}

// newBreaker is api's breaker of a handler with cfg (its defaults
// applied).
func newBreaker(api string, cfg HandlerConfig) *breaker {
	return &breaker{api: api, now: cfg.Now, threshold: cfg.BreakerThreshold, onChange: cfg.OnBreaker,
		app: cfg.AppsFileApp, tripped: make(chan struct{})}
}

// Tripped returns a channel closed when the circuit opens: a task waiting
// for a slot goes back at once.
func (b *breaker) Tripped() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tripped
}

// admit decides whether a task may call: ok when the circuit is closed, or
// when it is open, the pause is over and no probe is out (probe is then
// its number, not 0: this task's call is the probe). Otherwise it holds the
// task until a probe falls due (then takes it as the probe), breakerHold
// passed, stop is closed or ctx ends, and returns ok false: hand the task
// back.
func (b *breaker) admit(ctx context.Context, stop <-chan struct{}) (ok bool, probe int64) {
	hold := time.NewTimer(breakerHold)
	defer hold.Stop()
	for {
		b.mu.Lock()
		if !b.open {
			b.mu.Unlock()
			return true, 0
		}
		now := b.now()
		if b.probe == 0 && !now.Before(b.nextProbe) {
			b.probes++
			b.probe = b.probes
			b.mu.Unlock()
			return true, b.probe
		}
		wait := b.nextProbe.Sub(now)
		if b.probe != 0 {
			wait = breakerHold
		}
		b.mu.Unlock()
		due := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-due.C:
			continue
		case <-hold.C:
		case <-stop:
		case <-ctx.Done():
		}
		due.Stop()
		return false, 0
	}
}

// failure notes a configuration error from the API; probe is the number
// admit gave the call (0: not a probe).
func (b *breaker) failure(ctx context.Context, log *slog.Logger, o Outcome, probe int64) {
	o = o.inAppsFile(b.app)
	now := b.now()
	b.mu.Lock()
	var report bool // tell onChange
	switch {
	case b.open && (probe == 0 || probe != b.probe):
		// A call that was out when the circuit opened.
		b.mu.Unlock()
		return
	case b.open:
		// The probe failed: stay open, twice as long; on a fault of the
		// other kind, say so.
		b.pause = min(2*b.pause, DefaultBreakerOpenMax)
		b.probe = 0
		report = o.Console != b.lastOut.Console
	default:
		b.streak++
		if b.streak < b.threshold {
			b.mu.Unlock()
			return
		}
		report, b.open, b.pause = true, true, DefaultBreakerOpenMin
		close(b.tripped)
	}
	b.nextProbe, b.lastOut = now.Add(b.pause), o
	pause := b.pause
	b.mu.Unlock()

	msg := "circuit open: configuration error, this worker stops calling the API and hands its tasks back; the other workers of the app go on"
	if o.Console {
		// Every worker of the app meets it: none goes on with this API.
		msg = "circuit open: the app's console setting refuses this API, for every worker of the app; this worker stops calling it and hands its tasks back until the setting is fixed"
	}
	log.ErrorContext(ctx, msg, "api", b.api, "code", o.Code, "meaning", o.Meaning, "fix", o.Fix, "probe_in", pause.String())
	if report && b.onChange != nil {
		b.onChange(b.api, true, o)
	}
}

// release ends probe (a number from admit; 0 does nothing) if no answer
// ended it: the task gave up or got no answer that tells (no response from
// the network). The next probe goes after the same pause.
func (b *breaker) release(probe int64) {
	if probe == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open && b.probe == probe {
		b.probe = 0
		b.nextProbe = b.now().Add(b.pause)
	}
}

// success notes an answer that is not a configuration error (nor a first
// refusal of the UserSig, which the callers note nowhere).
func (b *breaker) success(ctx context.Context, log *slog.Logger) {
	b.mu.Lock()
	wasOpen := b.open
	b.streak, b.open, b.pause, b.probe = 0, false, 0, 0
	if wasOpen {
		b.tripped = make(chan struct{})
	}
	o := b.lastOut
	b.mu.Unlock()
	if wasOpen {
		log.InfoContext(ctx, "circuit closed: the API accepts this worker's calls again", "api", b.api, "after_code", o.Code)
		if b.onChange != nil {
			b.onChange(b.api, false, o)
		}
	}
}
