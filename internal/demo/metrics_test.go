package demo

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/tasks"
)

// After a demo run, /metrics shows every series an operator watches, with
// the values the demo's plan produces (it forces 60007s, 70001s, 90009s
// and dead letters).
func TestDemoServesMetrics(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var fams map[string]*dto.MetricFamily
	var ready int
	err := Run(context.Background(), Options{Count: 100, Out: &out, MetricsAddr: "127.0.0.1:0", AtEnd: func(addr string) {
		if addr == "" {
			t.Error("AtEnd got no metrics address")
			return
		}
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Errorf("scrape: %v", err)
			return
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		if fams, err = p.TextToMetricFamilies(resp.Body); err != nil {
			t.Errorf("parse /metrics: %v", err)
		}
		if r, err := c.Get("http://" + addr + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			ready = r.StatusCode
		}
	}})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if fams == nil {
		t.Fatalf("no scrape\n%s", out.String())
	}
	if ready != http.StatusOK {
		t.Errorf("/readyz during the demo = %d, want 200", ready)
	}

	for _, tc := range []struct {
		name  string
		pairs []string
	}{
		{metrics.RecallsTotal, []string{"fate", "recalled", "code", "0"}},
		{metrics.RecallsTotal, []string{"fate", "already_recalled", "code", "20023"}},
		{metrics.RecallsTotal, []string{"fate", "dead_lettered", "code", "20022"}},
		{metrics.RecallsTotal, []string{"fate", "dead_lettered", "code", "90054"}},
		{metrics.RecallsTotal, []string{"fate", "dead_lettered", "code", "other"}}, // 99999, outside the table
		{metrics.RecallsTotal, []string{"fate", "called_again", "code", "60007"}},
		{metrics.RecallsTotal, []string{"fate", "called_again", "code", "70001"}},
		{metrics.RecallsTotal, []string{"fate", "kept", "code", "90009"}},
		{metrics.RecallsTotal, []string{"fate", "retrying", "code", "91000"}},
		{metrics.APILatency, nil},
		{metrics.TokenWait, []string{"queue", tasks.QueueUrgent}},
		{metrics.RateLimitBackoffs, []string{"code", "60007"}},
		{metrics.ConfigErrors, nil},
		{metrics.SigRefreshes, []string{"reason", "initial"}},
		{metrics.SigRefreshes, []string{"reason", "70001"}},
		{metrics.LimiterInterval, nil},
		{metrics.LimiterSpread, nil},
		{metrics.LimiterSlowDowns, nil},
		{"asynq_queue_size", []string{"queue", tasks.AppQueue(tasks.QueueUrgent, sdkAppID)}},
		{"asynq_tasks_enqueued_total", []string{"queue", tasks.AppQueue(tasks.QueueUrgent, sdkAppID), "state", "completed"}},
		{"asynq_tasks_enqueued_total", []string{"queue", tasks.AppQueue(tasks.QueueUrgent, sdkAppID), "state", "archived"}},
		{"asynq_tasks_processed_total", []string{"queue", tasks.AppQueue(tasks.QueueUrgent, sdkAppID)}},
	} {
		if v, ok := sample(fams, tc.name, tc.pairs...); !ok || v <= 0 {
			t.Errorf("%s%v = %v (present %v), want > 0", tc.name, tc.pairs, v, ok)
		}
	}
	// Present, even where the demo leaves them at 0.
	for _, name := range []string{metrics.LimiterLocalSpread, metrics.LimiterResets, metrics.LimiterBeyondHorizon, "asynq_queue_latency_seconds"} {
		if _, ok := sample(fams, name); !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	for _, want := range []string{"metrics digest", "API latency", "p99 ~", "token wait", "rate-limit back-offs", "60007: ", "UserSig refreshes", "70001: ", "initial: ", "configuration errors", "dead_lettered "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("digest lacks %q:\n%s", want, out.String())
		}
	}
}

// sample sums the series of name whose labels include the given pairs:
// counter and gauge values, a histogram's count.
func sample(fams map[string]*dto.MetricFamily, name string, pairs ...string) (float64, bool) {
	mf, ok := fams[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		match := true
		for i := 0; i+1 < len(pairs); i += 2 {
			if labels[pairs[i]] != pairs[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, found
}
