package metrics

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// WriteDigest writes a short summary of the series, read from the same
// registry /metrics serves: recalls by fate, API latency p50/p99 and token
// wait estimated from the histograms, back-offs, UserSig refreshes,
// configuration errors and the limiter's spacing.
func (m *Metrics) WriteDigest(w io.Writer) error {
	mfs, err := m.reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics: gather: %w", err)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}

	fmt.Fprintln(w, "\nmetrics digest (the series /metrics serves):")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)

	byFate := sumBy(fams[RecallsTotal], "fate")
	var fates []string
	for _, f := range append(fateLabels(), other) {
		if n := byFate[f]; n > 0 {
			fates = append(fates, fmt.Sprintf("%s %.0f", f, n))
		}
	}
	fmt.Fprintf(tw, "  API calls by fate\t%s\n", orNone(strings.Join(fates, ", ")))

	if h := mergeHistograms(fams[APILatency]); h.count > 0 {
		fmt.Fprintf(tw, "  API latency\tp50 ~%s, p99 ~%s over %d calls\n",
			seconds(h.quantile(.5)), seconds(h.quantile(.99)), h.count)
	}
	if h := mergeHistograms(fams[TokenWait]); h.count > 0 {
		fmt.Fprintf(tw, "  token wait\ttotal %s over %d calls, p99 ~%s\n",
			seconds(h.sum), h.count, seconds(h.quantile(.99)))
	}

	backoffs := sumBy(fams[RateLimitBackoffs], "code")
	line := fmt.Sprintf("%.0f%s", total(backoffs), nonZero(backoffs))
	if sd, ok := single(fams[LimiterSlowDowns]); ok {
		line += fmt.Sprintf("; shared slow-downs announced %.0f", sd)
	}
	fmt.Fprintf(tw, "  rate-limit back-offs\t%s\n", line)

	sigs := sumBy(fams[SigRefreshes], "reason")
	fmt.Fprintf(tw, "  UserSig refreshes\t%.0f%s\n", total(sigs), nonZero(sigs))

	if n, ok := single(fams[ConfigErrors]); ok {
		fmt.Fprintf(tw, "  configuration errors\t%.0f\n", n)
	}
	if iv, ok := single(fams[LimiterInterval]); ok {
		sp, _ := single(fams[LimiterSpread])
		fmt.Fprintf(tw, "  limiter\tinterval %s, shared spread %s\n", seconds(iv), seconds(sp))
	}
	return tw.Flush()
}

// sumBy adds up a counter family's values by one label.
func sumBy(mf *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				out[lp.GetValue()] += value(m)
			}
		}
	}
	return out
}

// single is the value of a family with one unlabelled series.
func single(mf *dto.MetricFamily) (float64, bool) {
	if len(mf.GetMetric()) != 1 {
		return 0, false
	}
	return value(mf.GetMetric()[0]), true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func total(by map[string]float64) float64 {
	var t float64
	for _, v := range by {
		t += v
	}
	return t
}

// nonZero lists the non-zero values by label, e.g. " (60007: 3)".
func nonZero(by map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		if by[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s: %.0f", k, by[k]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// histogram is the sum of a family's histograms (same buckets).
type histogram struct {
	count  uint64
	sum    float64
	bounds []float64 // upper bounds, ascending, +Inf excluded
	cum    []uint64  // cumulative counts per bound
}

func mergeHistograms(mf *dto.MetricFamily) histogram {
	var h histogram
	for _, m := range mf.GetMetric() {
		mh := m.GetHistogram()
		if mh == nil {
			continue
		}
		h.count += mh.GetSampleCount()
		h.sum += mh.GetSampleSum()
		for i, b := range mh.GetBucket() {
			if i >= len(h.bounds) {
				h.bounds = append(h.bounds, b.GetUpperBound())
				h.cum = append(h.cum, 0)
			}
			h.cum[i] += b.GetCumulativeCount()
		}
	}
	return h
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear interpolation within the bucket the rank falls in; the
// highest finite bound when it falls beyond it.
func (h histogram) quantile(q float64) float64 {
	if h.count == 0 || len(h.bounds) == 0 {
		return math.NaN()
	}
	rank := q * float64(h.count)
	lower, below := 0.0, uint64(0)
	for i, ub := range h.bounds {
		if float64(h.cum[i]) >= rank {
			in := h.cum[i] - below
			if in == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = ub, h.cum[i]
	}
	return h.bounds[len(h.bounds)-1]
}
