package capture

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsCountWhatStatsCounts: /metrics shows each callback's result
// and each refusal by reason, and one write time per indexed message.
func TestMetricsCountWhatStatsCounts(t *testing.T) { eachFront(t, testMetricsCountWhatStatsCounts) }

func testMetricsCountWhatStatsCounts(t *testing.T, front string) {
	e := newFrontEnv(t, front)
	now := time.Now()
	e.postC2C(t, "spammer", "victim", 1, now)
	e.postC2C(t, "spammer", "victim", 2, now)
	e.postGroup(t, "spammer", "@TGS#1", 3, now)
	e.post(t, callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now), c2cBody("spammer", "victim", 4, 5, now.Unix(), 20003))
	foreign := strings.Replace(callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now), "SdkAppid=1400000000", "SdkAppid=1400000001", 1)
	e.post(t, foreign, c2cBody("spammer", "victim", 6, 7, now.Unix(), 0))

	w := e.serve(t, newRequest(http.MethodGet, "/metrics", ""))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	page := w.Body.String()
	for _, line := range []string{
		MetricCallbacks + `{result="indexed_c2c"} 2`,
		MetricCallbacks + `{result="indexed_group"} 1`,
		MetricCallbacks + `{result="failed_send"} 1`,
		MetricCallbacks + `{result="index_error"} 0`,
		MetricRefused + `{reason="sdkappid"} 1`,
		MetricRefused + `{reason="sign"} 0`,
		MetricWrite + `_count 3`,
	} {
		if !strings.Contains(page, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if n, err := testutil.GatherAndCount(registryOf(e.s), MetricCallbacks, MetricRefused, MetricWrite); err != nil || n != 7+7+1 {
		t.Errorf("series: %d (%v), want 7 results, 7 reasons and the histogram", n, err)
	}
}

func registryOf(s *Server) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	return reg
}
