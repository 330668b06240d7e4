package capture

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The capture's series on GET /metrics.
const (
	// MetricCallbacks counts callbacks answered OK or 503, by what became
	// of them (result: the Stats field in snake case).
	MetricCallbacks = "recallq_capture_callbacks_total"
	// MetricRefused counts refused callbacks by reason (Refused*).
	MetricRefused = "recallq_capture_refused_total"
	// MetricWrite is how long indexed callbacks waited for Redis: the
	// most of the answer time Tencent sees.
	MetricWrite = "recallq_capture_index_write_seconds"
)

// writeBuckets span a pipelined write on a quiet Redis (under a
// millisecond) up to DefaultWriteTimeout.
var writeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2}

var (
	callbacksDesc = prometheus.NewDesc(MetricCallbacks,
		"Callbacks the capture answered, by what became of them: indexed_c2c, indexed_group, failed_send (SendMsgResult != 0, not indexed), online_only, ignored (other callbacks), index_error (answered 503), caller_gone.",
		[]string{"result"}, nil)
	refusedDesc = prometheus.NewDesc(MetricRefused,
		"Callbacks refused and never indexed, by reason: path, ip, sdkappid, sign, method, body, too_large.",
		[]string{"reason"}, nil)
)

// Collector returns the capture's series, read from its counters at each
// scrape (nothing is added to a callback's path but the write histogram).
func (s *Server) Collector() prometheus.Collector { return (*collector)(s) }

type collector Server

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- callbacksDesc
	ch <- refusedDesc
	c.write.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := (*Server)(c).Stats()
	for _, r := range []struct {
		result string
		n      int64
	}{
		{"indexed_c2c", st.IndexedC2C}, {"indexed_group", st.IndexedGroup}, {"failed_send", st.FailedSends},
		{"online_only", st.OnlineOnly}, {"ignored", st.Ignored}, {"index_error", st.IndexErrors}, {"caller_gone", st.CallerGone},
	} {
		ch <- prometheus.MustNewConstMetric(callbacksDesc, prometheus.CounterValue, float64(r.n), r.result)
	}
	for reason, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(n), reason)
	}
	c.write.Collect(ch)
}

func newWriteHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    MetricWrite,
		Help:    "Seconds an indexed callback waited for Redis to take its message (batched with others in one pipeline).",
		Buckets: writeBuckets,
	})
}

// metricsHandler serves the capture's series and the Go runtime's.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// observeWrite records one indexed callback's wait for Redis.
func (s *Server) observeWrite(start time.Time) { s.write.Observe(time.Since(start).Seconds()) }
