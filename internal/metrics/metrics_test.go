package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// scrape reads h's /metrics as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body.String())
	}
	return parse(t, rec.Body)
}

func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample sums the series of name whose labels include the given pairs
// (k1, v1, k2, v2...): counter and gauge values, a histogram's count.
func sample(fams map[string]*dto.MetricFamily, name string, pairs ...string) (float64, bool) {
	mf, ok := fams[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
outer:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(pairs); i += 2 {
			match := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == pairs[i] && lp.GetValue() == pairs[i+1] {
					match = true
				}
			}
			if !match {
				continue outer
			}
		}
		found = true
		switch {
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		default:
			sum += value(m)
		}
	}
	return sum, found
}

func TestRecordCountsEachCallUnderBoundedLabels(t *testing.T) {
	m := New(Config{})
	events := []worker.Event{
		{Code: 0, Class: worker.Done, Fate: worker.FateRecalled, Queue: tasks.QueueUrgent, Latency: 20 * time.Millisecond, Waited: 3 * time.Millisecond},
		{Code: 20023, Class: worker.Done, Fate: worker.FateAlreadyRecalled, Queue: tasks.QueueBulk, Latency: 30 * time.Millisecond},
		{Code: 20022, Class: worker.DeadLetter, Fate: worker.FateDeadLettered, Queue: tasks.QueueUrgent},
		{Code: 60007, Class: worker.RateLimited, Fate: worker.FateCalledAgain, Queue: tasks.QueueUrgent},
		{Code: 60007, Class: worker.RateLimited, Fate: worker.FateKept, Queue: tasks.QueueUrgent},
		{Code: 60018, Class: worker.RateLimited, Fate: worker.FateCalledAgain, Queue: tasks.QueueUrgent},
		{Code: 70001, Class: worker.SigStale, Fate: worker.FateCalledAgain, Queue: tasks.QueueUrgent},
		{Code: 70001, Class: worker.SigStale, Fate: worker.FateKept, Queue: tasks.QueueUrgent}, // refused again: configuration
		{Code: 90009, Class: worker.Configuration, Fate: worker.FateKept, Queue: tasks.QueueUrgent},
		{Code: -1, Class: worker.Transient, Fate: worker.FateRetrying, Queue: tasks.QueueUrgent, Err: errors.New("timeout")},
		{Code: 99999, Class: worker.Unknown, Fate: worker.FateRetrying, Queue: "some_other_queue"},
		{Code: 12345, Class: worker.Unknown, Fate: worker.Fate("invented"), Queue: tasks.QueueUrgent},
	}
	for _, ev := range events {
		m.Record(ev)
	}
	m.SigRefreshed(tim.SigReasonInitial)
	m.SigRefreshed(tim.SigReason70001)
	m.SigRefreshed(tim.SigReason70001)
	m.SigRefreshed("a reason nobody defined")
	fams := scrape(t, m.Handler())

	for _, tc := range []struct {
		name  string
		pairs []string
		want  float64
	}{
		{RecallsTotal, []string{"fate", "recalled", "code", "0"}, 1},
		{RecallsTotal, []string{"fate", "already_recalled", "code", "20023"}, 1},
		{RecallsTotal, []string{"fate", "dead_lettered", "code", "20022"}, 1},
		{RecallsTotal, []string{"fate", "called_again", "code", "60007"}, 1},
		{RecallsTotal, []string{"fate", "kept", "code", "60007"}, 1},
		{RecallsTotal, []string{"fate", "retrying", "code", "-1"}, 1},
		{RecallsTotal, []string{"fate", "retrying", "code", "other"}, 1}, // 99999 is not in the table
		{RecallsTotal, []string{"fate", "other", "code", "other"}, 1},
		{RecallsTotal, nil, float64(len(events))},
		{APILatency, nil, float64(len(events))},
		{TokenWait, []string{"queue", tasks.QueueUrgent}, 10},
		{TokenWait, []string{"queue", tasks.QueueBulk}, 1},
		{TokenWait, []string{"queue", "other"}, 1},
		{RateLimitBackoffs, []string{"code", "60007"}, 2},
		{RateLimitBackoffs, []string{"code", "60018"}, 1},
		{RateLimitBackoffs, []string{"code", "60011"}, 0}, // present before the first, so increase() sees it
		{ConfigErrors, nil, 2},
		{SigRefreshes, []string{"reason", "initial"}, 1},
		{SigRefreshes, []string{"reason", "70001"}, 2},
		{SigRefreshes, []string{"reason", "age"}, 0},
		{SigRefreshes, []string{"reason", "other"}, 1},
	} {
		got, ok := sample(fams, tc.name, tc.pairs...)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.pairs, got, ok, tc.want)
		}
	}
	if h := mergeHistograms(fams[APILatency]); math.Abs(h.sum-0.05) > 1e-9 {
		t.Errorf("%s sum = %v, want 0.05 (20 ms + 30 ms)", APILatency, h.sum)
	}
}

// A group call's rate limit or configuration error counts once, from
// GroupCalled, however many seqs (Events) the call carried.
func TestGroupCallCountsBackoffAndConfigErrorOnce(t *testing.T) {
	m := New(Config{})
	g := &tasks.GroupRecall{GroupID: "g"}
	for i := 0; i < 10; i++ {
		m.Record(worker.Event{Group: g, Code: 10006, Class: worker.RateLimited, Fate: worker.FateCalledAgain, Queue: tasks.QueueBulk})
		m.Record(worker.Event{Group: g, Code: 10007, Class: worker.Configuration, Fate: worker.FateKept, Queue: tasks.QueueBulk})
		m.Record(worker.Event{Group: g, Code: 60004, Class: worker.SigStale, Fate: worker.FateKept, Queue: tasks.QueueBulk})
	}
	m.GroupCalled(worker.GroupCall{Seqs: 10, Code: 10006, RateLimited: 10006})
	m.GroupCalled(worker.GroupCall{Seqs: 10, Code: 10007, ConfigError: true})
	m.GroupCalled(worker.GroupCall{Seqs: 10, Code: 0})
	fams := scrape(t, m.Handler())
	for _, tc := range []struct {
		name  string
		pairs []string
		want  float64
	}{
		{RateLimitBackoffs, []string{"code", "10006"}, 1},
		{RateLimitBackoffs, nil, 1},
		{ConfigErrors, nil, 1},
		{GroupRecallsTotal, nil, 30},
		{GroupCallsTotal, nil, 3},
	} {
		if got, _ := sample(fams, tc.name, tc.pairs...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.pairs, got, tc.want)
		}
	}
}

// Label values come from fixed sets, whatever the events carry: a flood of
// odd codes or queues must not grow the series, and no account, MsgKey,
// task ID or error text may show.
func TestLabelsStayBoundedAndHoldNoSecrets(t *testing.T) {
	m := New(Config{})
	secrets := []string{"vinson", "dramon", "31906_833502_1572869830", "task-id-xyz", "eJwtzM1Og0AUhT", "hunter2"}
	for i := 0; i < 500; i++ {
		m.Record(worker.Event{
			TaskID: "task-id-xyz", Queue: "queue-" + strings.Repeat("q", i%7),
			Recall: tasks.Recall{FromAccount: "vinson", ToAccount: "dramon", MsgKey: "31906_833502_1572869830"},
			Code:   100000 + i, Class: worker.Unknown, Fate: worker.Fate("fate-" + string(rune('a'+i%26))),
			Err: errors.New("usersig=eJwtzM1Og0AUhT password hunter2"),
		})
		m.SigRefreshed("eJwtzM1Og0AUhT")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("/metrics shows %q", s)
		}
	}
	fams := parse(t, strings.NewReader(body))
	if n := len(fams[RecallsTotal].GetMetric()); n != 1 {
		t.Errorf("%s has %d series after 500 odd events, want 1 (fate=other, code=other)", RecallsTotal, n)
	}
	if n := len(fams[TokenWait].GetMetric()); n != 3 {
		t.Errorf("%s has %d series, want 3 (two queues and other)", TokenWait, n)
	}
}

type fakeLimiter struct{ s limiter.Stats }

func (f *fakeLimiter) Stats() limiter.Stats { return f.s }

func TestLimiterSeriesAreReadAtScrapeTime(t *testing.T) {
	m := New(Config{})
	l := &fakeLimiter{s: limiter.Stats{Interval: 5 * time.Millisecond, Spread: 30 * time.Millisecond, SlowDowns: 2}}
	g := &fakeLimiter{s: limiter.Stats{Interval: 7 * time.Millisecond}}
	if err := m.WatchLimiter(tim.APIWithdraw, l); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchLimiter(tim.APIGroupRecall, g); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchLimiter(tim.APIWithdraw, l); err == nil {
		t.Error("a second WatchLimiter of one API registered the series twice")
	}
	fams := scrape(t, m.Handler())
	if v, _ := sample(fams, LimiterInterval, "api", tim.APIWithdraw); v != 0.005 {
		t.Errorf("%s{api=%s} = %v, want 0.005", LimiterInterval, tim.APIWithdraw, v)
	}
	if v, _ := sample(fams, LimiterInterval, "api", tim.APIGroupRecall); v != 0.007 {
		t.Errorf("%s{api=%s} = %v, want 0.007: the group bucket's own", LimiterInterval, tim.APIGroupRecall, v)
	}
	l.s = limiter.Stats{Interval: 6 * time.Millisecond, Spread: 200 * time.Millisecond, SlowDowns: 7, Resets: 1}
	fams = scrape(t, m.Handler())
	for name, want := range map[string]float64{LimiterInterval: .006, LimiterSpread: .2, LimiterSlowDowns: 7, LimiterResets: 1} {
		if v, ok := sample(fams, name, "api", tim.APIWithdraw); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

// asynq's collector reports the real queues; with Redis gone a scrape still
// answers at once, with recallq's own series.
func TestQueueSeriesFromRedis(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	c := asynq.NewClientFromRedisClient(rdb)
	for i := 0; i < 3; i++ {
		if _, err := c.Enqueue(asynq.NewTask(tasks.TypeRecall, []byte("{}")), asynq.Queue(tasks.QueueUrgent)); err != nil {
			t.Fatal(err)
		}
	}
	m := New(Config{})
	if err := m.WatchQueues(asynq.NewInspectorFromRedisClient(rdb), func(ctx context.Context) error { return rdb.Ping(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, m.Handler())
	if v, ok := sample(fams, "asynq_queue_size", "queue", tasks.QueueUrgent); !ok || v != 3 {
		t.Errorf("asynq_queue_size{queue=%q} = %v (present %v), want 3", tasks.QueueUrgent, v, ok)
	}
	if v, ok := sample(fams, "asynq_tasks_enqueued_total", "queue", tasks.QueueUrgent, "state", "pending"); !ok || v != 3 {
		t.Errorf("asynq_tasks_enqueued_total{state=pending} = %v (present %v), want 3", v, ok)
	}

	s.Stop()
	start := time.Now()
	fams = scrape(t, m.Handler())
	if _, ok := fams["asynq_queue_size"]; ok {
		t.Error("queue series reported with Redis down")
	}
	if _, ok := fams[SigRefreshes]; !ok {
		t.Errorf("%s missing while Redis is down", SigRefreshes)
	}
	if d := time.Since(start); d > 3*queuePingTimeout {
		t.Errorf("a scrape with Redis down took %v", d)
	}
}

func TestHistogramQuantileMatchesPrometheus(t *testing.T) {
	m := New(Config{})
	// 100 calls: 50 at 8 ms (bucket 5-10 ms), 49 at 40 ms (30-50 ms), one at 3 s (2.5-5 s).
	for i := 0; i < 100; i++ {
		lat := 8 * time.Millisecond
		switch {
		case i == 99:
			lat = 3 * time.Second
		case i >= 50:
			lat = 40 * time.Millisecond
		}
		m.Record(worker.Event{Code: 0, Fate: worker.FateRecalled, Latency: lat})
	}
	fams := scrape(t, m.Handler())
	h := mergeHistograms(fams[APILatency])
	for _, tc := range []struct{ q, want float64 }{
		{.5, .01},             // rank 50: the top of the 5-10 ms bucket
		{.99, .05},            // rank 99: the top of the 30-50 ms bucket
		{.995, 2.5 + 2.5*0.5}, // rank 99.5: half way through 2.5-5 s
	} {
		if got := h.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("p%v = %v, want %v", tc.q*100, got, tc.want)
		}
	}
	var out bytes.Buffer
	if err := m.WriteDigest(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"recalled 100", "p50 ~10ms, p99 ~50ms over 100 calls", "UserSig refreshes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("digest lacks %q:\n%s", want, out.String())
		}
	}
}

// Record runs on the call path of every recall: measure what it costs.
//
//	go test -run - -bench Record ./internal/metrics/
func BenchmarkRecord(b *testing.B) {
	m := New(Config{})
	ev := worker.Event{Code: 0, Class: worker.Done, Fate: worker.FateRecalled, Queue: tasks.QueueUrgent,
		Latency: 20 * time.Millisecond, Waited: 4 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Record(ev)
		}
	})
}

// TestBreakerGaugeFollowsTheCircuit: one series per API, each following
// its own circuit.
func TestBreakerGaugeFollowsTheCircuit(t *testing.T) {
	m := New(Config{})
	// read returns the gauge by its api label.
	read := func() map[string]float64 {
		t.Helper()
		mfs, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != BreakerOpen {
				continue
			}
			for _, s := range mf.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "api" {
						got[l.GetValue()] = s.GetGauge().GetValue()
					}
				}
			}
		}
		return got
	}
	closed := map[string]float64{tim.APIWithdraw: 0, tim.APIGroupRecall: 0}
	if got := read(); !maps.Equal(got, closed) {
		t.Fatalf("%s at start = %v, want %v", BreakerOpen, got, closed)
	}
	m.BreakerChanged(tim.APIGroupRecall, true, worker.Outcome{Code: 10041})
	if got, want := read(), map[string]float64{tim.APIWithdraw: 0, tim.APIGroupRecall: 1}; !maps.Equal(got, want) {
		t.Fatalf("%s with the group circuit open = %v, want %v", BreakerOpen, got, want)
	}
	m.BreakerChanged(tim.APIGroupRecall, false, worker.Outcome{})
	if got := read(); !maps.Equal(got, closed) {
		t.Fatalf("%s after the group circuit closed = %v, want %v", BreakerOpen, got, closed)
	}
}

// Two apps' Metrics served together: every recallq series carries its
// app's label, and the Go runtime, process and asynq queue series come
// once (a second copy would make the scrape fail).
func TestSeveralAppsServedTogether(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	prod, staging := New(Config{App: "chat-prod"}), New(Config{App: "chat-staging"})
	ping := func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	for _, m := range []*Metrics{prod, staging} {
		if err := m.WatchQueues(asynq.NewInspectorFromRedisClient(rdb), ping); err != nil {
			t.Fatal(err)
		}
		if err := m.WatchLimiter(tim.APIWithdraw, &fakeLimiter{s: limiter.Stats{Rate: 200}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask(tasks.TypeRecall, []byte("{}")), asynq.Queue(tasks.QueueUrgent)); err != nil {
		t.Fatal(err)
	}
	prod.Record(worker.Event{Code: 0, Fate: worker.FateRecalled, Queue: tasks.QueueUrgent})
	prod.Record(worker.Event{Code: 0, Fate: worker.FateRecalled, Queue: tasks.QueueUrgent})
	staging.Record(worker.Event{Code: 20023, Fate: worker.FateAlreadyRecalled, Queue: tasks.QueueBulk})

	fams := scrape(t, Handler(prod, staging))
	for _, tc := range []struct {
		name  string
		pairs []string
		want  float64
	}{
		{RecallsTotal, []string{"app", "chat-prod", "fate", "recalled"}, 2},
		{RecallsTotal, []string{"app", "chat-staging", "fate", "already_recalled"}, 1},
		{RecallsTotal, []string{"app", "chat-staging", "fate", "recalled"}, 0},
		{LimiterRate, []string{"app", "chat-prod"}, 200},
		{LimiterRate, []string{"app", "chat-staging"}, 200},
		{"asynq_queue_size", []string{"queue", tasks.QueueUrgent}, 1},
	} {
		if got, _ := sample(fams, tc.name, tc.pairs...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.pairs, got, tc.want)
		}
	}
	for name, mf := range fams {
		for _, s := range mf.GetMetric() {
			app := ""
			for _, lp := range s.GetLabel() {
				if lp.GetName() == AppLabel {
					app = lp.GetValue()
				}
			}
			if strings.HasPrefix(name, Namespace+"_") && app != "chat-prod" && app != "chat-staging" {
				t.Errorf("%s has a series without a configured app label: %v", name, s.GetLabel())
			}
			if !strings.HasPrefix(name, Namespace+"_") && app != "" {
				t.Errorf("%s (not recallq's) carries an app label", name)
			}
		}
	}
	if n := len(fams["go_goroutines"].GetMetric()); n != 1 {
		t.Errorf("go_goroutines has %d series, want 1 (registered once)", n)
	}
	if n := len(fams["asynq_queue_size"].GetMetric()); n != 1 {
		t.Errorf("asynq_queue_size has %d series, want 1 (asynq's collector once)", n)
	}
}
