// Package metrics exports what a recallq worker does as Prometheus series
// and serves them, with liveness and readiness probes, on one HTTP address.
//
// A Metrics is a worker.Recorder: the handler hands it an Event after every
// API call, and it counts the call by fate and Tencent code, observes the
// call's latency and the time spent waiting for a token, and counts
// rate-limit back-offs and configuration errors (a group call's once, in
// GroupCalled, not once per seq). Its SigRefreshed method is
// tim.Config.OnSigRefresh. WatchLimiter and WatchQueues add the shared
// limiter's state and asynq's queue sizes, read at scrape time.
//
// Every series lives in a private registry (no global state), so a process
// registers each one exactly once and tests can build as many as they like.
// A process that serves several apps has one Metrics per app, each with its
// Config.App as the app label of every recallq series, and serves them
// together (Gatherer): the Go runtime, process and asynq queue series come
// once, from the first.
// Every label value comes from a fixed set (fates, the codes of the outcome
// table, the UserSig reasons, the two queues, "other" for anything else):
// no label ever holds an account, a MsgKey, a UserSig or a secret.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// Namespace prefixes every series recallq defines. asynq's queue series keep
// asynq's own names (asynq_queue_size, asynq_tasks_enqueued_total...), which
// asynqmon and published asynq dashboards expect.
const Namespace = "recallq"

// Names of the series recallq defines.
const (
	// RecallsTotal counts API calls by what became of the recall (label
	// fate: a worker.Fate) and Tencent's answer (label code: a code of
	// worker.Outcomes, "-1" for no answer, "other" for any other code).
	// The final fates (recalled, already_recalled, dead_lettered) count
	// each recall once.
	RecallsTotal = "recallq_recalls_total"
	// APILatency is the time from the call's slot to its answer, in seconds.
	APILatency = "recallq_api_latency_seconds"
	// TokenWait is the time a call waited for its token from the shared
	// limiter, in seconds, by queue.
	TokenWait = "recallq_token_wait_seconds"
	// RateLimitBackoffs counts rate-limited answers (60007, 60011, 60018,
	// 60019; 10006 and 10023 of group_msg_recall; label code): each call is
	// tried again, and two within a second in the fleet pause every worker
	// of the app. A group call counts once, however many seqs it carried.
	RateLimitBackoffs = "recallq_rate_limit_backoffs_total"
	// ConfigErrors counts answers that say the app's configuration is wrong
	// (class Configuration, or the UserSig refused again after a fresh
	// one): alert on any increase. A group call counts once, however many
	// seqs it carried.
	ConfigErrors = "recallq_config_errors_total"
	// SigRefreshes counts UserSig generations by reason (tim's SigReason
	// constants).
	SigRefreshes = "recallq_usersig_refreshes_total"
	// GroupRecallsTotal counts group recall tasks' seqs by fate and code
	// as RecallsTotal counts one-to-one recalls (code: a code of
	// worker.GroupOutcomes; 10030, already recalled, is done and counted
	// under its own code).
	GroupRecallsTotal = "recallq_group_recalls_total"
	// GroupCallsTotal counts group_msg_recall calls by the call's code
	// ("-1": no answer); GroupCallSeqs is how many seqs each carried.
	GroupCallsTotal = "recallq_group_calls_total"
	GroupCallSeqs   = "recallq_group_call_seqs"
	// BreakerOpen is 1 while this worker's configuration-error circuit of
	// an API is open (this worker has stopped calling it; the others go
	// on), else 0; one series per API: api="admin_msgwithdraw" or
	// api="group_msg_recall".
	BreakerOpen = "recallq_breaker_open"
	// UnservedTasks counts recall tasks waiting in the queue of an app that
	// no running worker serves (kept; the error log names the app).
	UnservedTasks = "recallq_unserved_tasks"

	// The shared limiter, read at scrape time.
	LimiterInterval      = "recallq_limiter_interval_seconds"
	LimiterSpread        = "recallq_limiter_spread_seconds"
	LimiterLocalSpread   = "recallq_limiter_local_spread_seconds"
	LimiterSlowDowns     = "recallq_limiter_slowdowns_total"
	LimiterResets        = "recallq_limiter_resets_total"
	LimiterBeyondHorizon = "recallq_limiter_beyond_horizon_total"
	LimiterWaitFailures  = "recallq_limiter_wait_failures_total"
	LimiterLateCutoff    = "recallq_limiter_late_cutoff_seconds"
	LimiterLateDrops     = "recallq_limiter_late_drops_total"
	LimiterStalled       = "recallq_limiter_stalled_samples_total"
	LimiterHorizon       = "recallq_limiter_horizon_seconds"
	LimiterDispersion    = "recallq_limiter_dispersion_seconds"
	LimiterRate          = "recallq_limiter_rate"
)

// Buckets of the histograms, in seconds.
var (
	// LatencyBuckets cover Tencent's answers from 5 ms to the client's
	// 5 s timeout.
	LatencyBuckets = []float64{.005, .01, .02, .03, .05, .075, .1, .15, .25, .5, 1, 2.5, 5}
	// WaitBuckets cover a token granted at once up to a queue of several
	// seconds behind shared slow-downs.
	WaitBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// other is the label value of anything outside a label's fixed set.
const other = "other"

// AppLabel is the label that names the app on every recallq series.
const AppLabel = "app"

// Config configures a Metrics.
type Config struct {
	// Logger receives the few problems of collection (Redis not answering
	// a scrape). Default: discards.
	Logger *slog.Logger
	// App is the value of the app label (AppLabel) on every recallq series:
	// the app's name from the apps file (bounded: only configured apps).
	// Default "": the series carry no app label.
	App string
}

// Metrics holds recallq's series in a private registry. It is safe for
// concurrent use.
type Metrics struct {
	// reg holds the recallq series, each with the app label; proc the Go
	// runtime, process and asynq queue series, which a process serves once
	// however many apps it serves.
	reg  *prometheus.Registry
	proc *prometheus.Registry
	app  string
	log  *slog.Logger

	recalls      *prometheus.CounterVec
	groupRecalls *prometheus.CounterVec
	groupCalls   *prometheus.CounterVec
	groupSeqs    prometheus.Histogram
	latency      prometheus.Histogram
	wait         *prometheus.HistogramVec
	backoffs     *prometheus.CounterVec
	configErrors prometheus.Counter
	sigs         *prometheus.CounterVec
	breaker      *prometheus.GaugeVec
	unserved     prometheus.Gauge

	codes      map[int]string       // the label value of every known code
	groupCodes map[int]string       // the same for group_msg_recall
	fates      map[worker.Fate]bool // the known fates
	reasons    map[string]bool      // tim's SigReason constants
}

// New returns a Metrics with every recallq series registered, plus the Go
// runtime and process collectors.
func New(cfg Config) *Metrics {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg:  prometheus.NewRegistry(),
		proc: prometheus.NewRegistry(),
		app:  cfg.App,
		log:  cfg.Logger,
		recalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RecallsTotal,
			Help: "admin_msgwithdraw calls by what became of the recall (fate) and Tencent's code (-1: no answer, other: a code outside the outcome table). Final fates count each recall once.",
		}, []string{"fate", "code"}),
		groupRecalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GroupRecallsTotal,
			Help: "Group recall tasks (one MsgSeq each) by what became of them (fate) and the seq's code (10030: already recalled, done; -1: no answer). Final fates count each seq once.",
		}, []string{"fate", "code"}),
		groupCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GroupCallsTotal,
			Help: "group_msg_recall calls by the call's ErrorCode (-1: no answer); each carries up to 10 seqs of one group.",
		}, []string{"code"}),
		groupSeqs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    GroupCallSeqs,
			Help:    "How many seqs (tasks) each group_msg_recall call carried: the cap counts calls, so more is faster.",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    APILatency,
			Help:    "Time from a call's slot to Tencent's answer (or the transport error), in seconds.",
			Buckets: LatencyBuckets,
		}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    TokenWait,
			Help:    "Time a call waited for its token from the shared limiter, in seconds.",
			Buckets: WaitBuckets,
		}, []string{"queue"}),
		backoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RateLimitBackoffs,
			Help: "Rate-limited answers from Tencent (one per answer: a group_msg_recall call counts once); each call is tried again, and two within a second in the fleet pause every worker of the app.",
		}, []string{"code"}),
		configErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ConfigErrors,
			Help: "Answers saying the app's configuration is wrong (admin, key, SDKAppID, region, plan); no task can succeed until it is fixed. The worker's error log says what to fix.",
		}),
		sigs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: SigRefreshes,
			Help: "UserSig generations by reason (initial, age, expired, invalidated, 70001, refused).",
		}, []string{"reason"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: BreakerOpen,
			Help: "1 while this worker's configuration-error circuit of the API is open: this worker has stopped calling that API until a probe succeeds, the other workers go on. The worker's error log says what to fix.",
		}, []string{"api"}),
		unserved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: UnservedTasks,
			Help: "Recall tasks waiting in the queue of an app no running worker serves (kept, not called); the worker's error log names the app and the fix.",
		}),
		codes:      map[int]string{worker.NoAnswer: strconv.Itoa(worker.NoAnswer)},
		groupCodes: map[int]string{worker.NoAnswer: strconv.Itoa(worker.NoAnswer)},
		fates:      map[worker.Fate]bool{},
		reasons:    map[string]bool{},
	}
	for _, o := range worker.Outcomes() {
		m.codes[o.Code] = strconv.Itoa(o.Code)
		if o.Class == worker.RateLimited {
			m.backoffs.WithLabelValues(m.codes[o.Code]) // present at 0, so increase() sees the first
		}
	}
	for _, o := range worker.GroupOutcomes() {
		m.groupCodes[o.Code] = strconv.Itoa(o.Code)
		if o.Class == worker.RateLimited {
			m.backoffs.WithLabelValues(m.groupCodes[o.Code])
		}
	}
	for _, f := range worker.Fates() {
		m.fates[f] = true
	}
	for _, r := range []string{tim.SigReasonInitial, tim.SigReasonAge, tim.SigReasonExpired,
		tim.SigReasonInvalidated, tim.SigReason70001, tim.SigReasonRefused} {
		m.reasons[r] = true
		m.sigs.WithLabelValues(r)
	}
	for _, q := range []string{tasks.QueueUrgent, tasks.QueueBulk} {
		m.wait.WithLabelValues(q)
	}
	for _, api := range breakerAPIs {
		m.breaker.WithLabelValues(api)
	}
	m.own().MustRegister(m.recalls, m.groupRecalls, m.groupCalls, m.groupSeqs, m.latency, m.wait, m.backoffs, m.configErrors, m.sigs, m.breaker, m.unserved)
	m.proc.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// own registers recallq series: with the app label when Config.App is set.
func (m *Metrics) own() prometheus.Registerer {
	if m.app == "" {
		return m.reg
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{AppLabel: m.app}, m.reg)
}

// App is Config.App: the app label's value.
func (m *Metrics) App() string { return m.app }

// fateLabels are the fate label's values, one a worker.Fate.
func fateLabels() []string {
	var labels []string
	for _, f := range worker.Fates() {
		labels = append(labels, string(f))
	}
	return labels
}

// Record counts one API call. It implements worker.Recorder; it only
// updates counters and histograms, so it is cheap on the call path. A
// group recall's Event is one seq of a call: its back-off or configuration
// error, the call's, counts once per call in GroupCalled.
func (m *Metrics) Record(ev worker.Event) {
	codes := m.codes
	if ev.Group != nil {
		codes = m.groupCodes
	}
	code, ok := codes[ev.Code]
	if !ok {
		code = other
	}
	fate := string(ev.Fate)
	if !m.fates[ev.Fate] {
		fate = other
	}
	if ev.Group != nil {
		// The call's latency is GroupCalled's, once per call.
		m.groupRecalls.WithLabelValues(fate, code).Inc()
	} else {
		m.recalls.WithLabelValues(fate, code).Inc()
		m.latency.Observe(ev.Latency.Seconds())
	}
	m.wait.WithLabelValues(queueLabel(ev.Queue)).Observe(ev.Waited.Seconds())
	switch {
	case ev.Group != nil:
		// The call's rate limit or configuration error: GroupCalled's.
	case ev.Class == worker.RateLimited:
		m.backoffs.WithLabelValues(code).Inc()
	case ev.Class == worker.Configuration,
		// Refused again with a fresh UserSig: the handler treats it as a
		// configuration error (wrong key, SDKAppID or admin).
		ev.Class == worker.SigStale && ev.Fate == worker.FateKept:
		m.configErrors.Inc()
	}
}

// GroupCalled counts one group_msg_recall call, with its rate-limit
// back-off and configuration error (once, however many seqs it carried);
// it fits worker.HandlerConfig.OnGroupCall.
func (m *Metrics) GroupCalled(c worker.GroupCall) {
	m.groupCalls.WithLabelValues(m.groupCode(c.Code)).Inc()
	m.groupSeqs.Observe(float64(c.Seqs))
	m.latency.Observe(c.Latency.Seconds())
	if c.RateLimited != 0 {
		m.backoffs.WithLabelValues(m.groupCode(c.RateLimited)).Inc()
	}
	if c.ConfigError {
		m.configErrors.Inc()
	}
}

// groupCode is the label value of a group_msg_recall code.
func (m *Metrics) groupCode(c int) string {
	if code, ok := m.groupCodes[c]; ok {
		return code
	}
	return other
}

// breakerAPIs are the api label's values of BreakerOpen: the APIs that
// have a circuit each.
var breakerAPIs = []string{tim.APIWithdraw, tim.APIGroupRecall}

// BreakerChanged follows the configuration-error circuit of api; it fits
// worker.HandlerConfig.OnBreaker.
func (m *Metrics) BreakerChanged(api string, open bool, _ worker.Outcome) {
	if !slices.Contains(breakerAPIs, api) {
		api = other
	}
	if open {
		m.breaker.WithLabelValues(api).Set(1)
	} else {
		m.breaker.WithLabelValues(api).Set(0)
	}
}

// Unserved sets the count of tasks waiting for an app no running worker
// serves; it fits worker.Config.OnUnserved.
func (m *Metrics) Unserved(queues map[string]int) {
	n := 0
	for _, c := range queues {
		n += c
	}
	m.unserved.Set(float64(n))
}

// SigRefreshed counts one UserSig generation; it is tim.Config.OnSigRefresh.
func (m *Metrics) SigRefreshed(reason string) {
	if !m.reasons[reason] {
		reason = other
	}
	m.sigs.WithLabelValues(reason).Inc()
}

// queueLabel is the lane of a queue (an app's queue and the legacy one of
// its lane share it), so the label stays bounded.
func queueLabel(q string) string {
	if lane, _, ok := tasks.ParseQueue(q); ok {
		return lane
	}
	return other
}

// LimiterStats is the shared limiter (*limiter.Limiter).
type LimiterStats interface {
	Stats() limiter.Stats
}

// WatchLimiter exports the interval, spread and counters of l, the
// limiter of the bucket of api (tim.APIWithdraw, tim.APIGroupRecall ...),
// read at every scrape, labelled api. Call it once per API; a second call
// for the same API returns an error.
func (m *Metrics) WatchLimiter(api string, l LimiterStats) error {
	if err := m.own().Register(newLimiterCollector(api, l)); err != nil {
		return fmt.Errorf("metrics: watch the limiter of %s: %w", api, err)
	}
	return nil
}

// WatchQueues exports asynq's queue series (asynq_queue_size,
// asynq_tasks_enqueued_total by state, asynq_queue_latency_seconds...)
// through asynq's own collector, read at every scrape. ping checks Redis
// first so that a scrape while Redis is down answers at once, without
// them. Call it once; a second call returns an error.
func (m *Metrics) WatchQueues(insp *asynq.Inspector, ping func(context.Context) error) error {
	if insp == nil || ping == nil {
		return errors.New("metrics: WatchQueues needs an inspector and a ping")
	}
	c := &queueCollector{
		inner: asynqmetrics.NewQueueMetricsCollector(insp),
		ping:  ping,
		log:   m.log,
		warn:  rate.Sometimes{First: 1, Interval: time.Minute},
	}
	if err := m.proc.Register(c); err != nil {
		return fmt.Errorf("metrics: watch the queues: %w", err)
	}
	return nil
}

// Gatherer is every series of m, for tests and digests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return Gatherer(m) }

// Gatherer gathers the series of several apps' Metrics for one process:
// each one's recallq series (their App labels must differ) and, once, the
// Go runtime, process and asynq queue series of the first.
func Gatherer(ms ...*Metrics) prometheus.Gatherer {
	if len(ms) == 0 {
		return prometheus.Gatherers{}
	}
	g := prometheus.Gatherers{ms[0].proc}
	for _, m := range ms {
		g = append(g, m.reg)
	}
	return g
}

// Handler serves m's series in Prometheus's exposition formats.
func (m *Metrics) Handler() http.Handler { return Handler(m) }

// Handler serves the series of several apps' Metrics (Gatherer), at least
// one, in Prometheus's exposition formats; the first one's logger reports
// problems.
func Handler(ms ...*Metrics) http.Handler {
	first := ms[0]
	return promhttp.InstrumentMetricHandler(first.proc, promhttp.HandlerFor(Gatherer(ms...), promhttp.HandlerOpts{
		ErrorLog:          promLogger{first.log},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          first.proc,
		EnableOpenMetrics: true,
	}))
}

type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn("metrics: " + fmt.Sprint(v...)) }

// limiterCollector reads the limiter's Stats once per scrape.
// limiterCollector reads one bucket's limiter at every scrape; its series
// carry the bucket's API as the label "api".
type limiterCollector struct {
	l     LimiterStats
	descs []*prometheus.Desc
}

// limiterSeries are the limiter's series: name, help, type and the value
// read from its Stats.
var limiterSeries = []struct {
	name, help string
	typ        prometheus.ValueType
	value      func(limiter.Stats) float64
}{
	{LimiterInterval, "Current spacing between two calls of the app to the API, 1/r with r + 5*sqrt(r*dispersion) = rate, in seconds.",
		prometheus.GaugeValue, func(s limiter.Stats) float64 { return s.Interval.Seconds() }},
	{LimiterSpread, "Latency spread J shared by every worker of the app (the largest live one), in seconds.",
		prometheus.GaugeValue, func(s limiter.Stats) float64 { return s.Spread.Seconds() }},
	{LimiterLocalSpread, "This process's own measured latency spread (0 without samples), in seconds.",
		prometheus.GaugeValue, func(s limiter.Stats) float64 { return s.LocalSpread.Seconds() }},
	{LimiterSlowDowns, "Shared pauses (every worker of the app waits) this process announced after a rate-limited answer.",
		prometheus.CounterValue, func(s limiter.Stats) float64 { return float64(s.SlowDowns) }},
	{LimiterResets, "Grants that found the schedule lost (Redis restart, flush, failover) and restarted it.",
		prometheus.CounterValue, func(s limiter.Stats) float64 { return float64(s.Resets) }},
	{LimiterBeyondHorizon, "Grants queued beyond the limiter's horizon: the fleet holds more slots ahead than the horizon covers.",
		prometheus.CounterValue, func(s limiter.Stats) float64 { return float64(s.BeyondHorizon) }},
	{LimiterWaitFailures, "Waits for a token that ended without one (shutdown, deadline, Redis unreachable).",
		prometheus.CounterValue, func(s limiter.Stats) float64 { return float64(s.Failures) }},
	{LimiterLateCutoff, "How late after its slot a call may still go; a later one is dropped, in seconds.",
		prometheus.GaugeValue, func(s limiter.Stats) float64 { return s.LateCutoff.Seconds() }},
	{LimiterLateDrops, "Slots dropped because the grant's answer, the call or its new connection came later than the cutoff after the slot.",
		prometheus.CounterValue, func(s limiter.Stats) float64 { return float64(s.LateDrops) }},
	{LimiterStalled, "Answers not counted in the latency spread because this process was stopped while the call was out.",
		prometheus.CounterValue, func(s limiter.Stats) float64 { return float64(s.StalledSamples) }},
	{LimiterHorizon, "How far ahead a lost schedule would restart: past the fleet's lookahead, in seconds.",
		prometheus.GaugeValue, func(s limiter.Stats) float64 { return s.Horizon.Seconds() }},
	{LimiterDispersion, "Mean difference of two latencies G that paces the app's calls at r + 5*sqrt(r*G) = rate (-1 while unknown), in seconds.",
		prometheus.GaugeValue, func(s limiter.Stats) float64 { return s.Dispersion.Seconds() }},
	{LimiterRate, "Calls per second the app's bucket runs at now: the paced rate, lowered while rate-limit answers keep coming (a quota shared with other callers) and restored over time.",
		prometheus.GaugeValue, func(s limiter.Stats) float64 { return s.Rate }},
}

func newLimiterCollector(api string, l LimiterStats) *limiterCollector {
	c := &limiterCollector{l: l}
	for _, sr := range limiterSeries {
		c.descs = append(c.descs, prometheus.NewDesc(sr.name, sr.help, nil, prometheus.Labels{"api": api}))
	}
	return c
}

func (c *limiterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *limiterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.l.Stats()
	for i, sr := range limiterSeries {
		ch <- prometheus.MustNewConstMetric(c.descs[i], sr.typ, sr.value(s))
	}
}

// queuePingTimeout bounds the Redis check before asynq's collector runs.
const queuePingTimeout = time.Second

// queueCollector runs asynq's collector when Redis answers. It describes
// nothing (an unchecked collector): asynq's collector would otherwise query
// Redis at registration.
type queueCollector struct {
	inner prometheus.Collector
	ping  func(context.Context) error
	log   *slog.Logger
	warn  rate.Sometimes
}

func (c *queueCollector) Describe(chan<- *prometheus.Desc) {}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), queuePingTimeout)
	defer cancel()
	if err := c.ping(ctx); err != nil {
		c.warn.Do(func() {
			c.log.Warn("metrics: Redis does not answer; queue series left out of this scrape", "err", err)
		})
		return
	}
	c.inner.Collect(ch)
}
