package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/internal/redistest"
)

func metricsProbe(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startWorker runs `recallq worker` with its metrics on a free port until
// ctx ends, and returns once /readyz answers 200: the metrics address, the
// exit code to come, and the JSON log.
func startWorker(t *testing.T, ctx context.Context) (addr string, done <-chan int, stderr *logtest.Buffer) {
	t.Helper()
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	var stdout logtest.Buffer
	stderr = &logtest.Buffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- Main(ctx, []string{"worker", "--log-format", "json", "--concurrency", "2", "--metrics-addr", addr}, &stdout, stderr)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := metricsProbe("http://" + addr + "/readyz")
		if code == http.StatusOK {
			return addr, exit, stderr
		}
		select {
		case c := <-exit:
			t.Fatalf("the worker exited (%d) before it was ready\n%s", c, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered 200 (last %d)\n%s", code, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExit waits for the worker startWorker started to exit 0.
func waitExit(t *testing.T, done <-chan int, stderr *logtest.Buffer) {
	t.Helper()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}
}

// `recallq worker` serves /metrics and the probes on --metrics-addr: ready
// once the worker started, not ready from SIGTERM on, and stopped only
// after the worker.
func TestWorkerServesMetricsAndProbes(t *testing.T) {
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	t.Setenv("TIM_SDKAPPID", "1400000000")
	t.Setenv("TIM_SECRET_KEY", "test-secret-key")
	t.Setenv("TIM_ENDPOINT", "http://127.0.0.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, stderr := startWorker(t, ctx)
	base := "http://" + addr
	if code, _ := metricsProbe(base + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}
	code, body := metricsProbe(base + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	// A single-app worker labels its series too (the app's name defaults
	// to its SDKAppID), so dashboards need no case for it.
	for _, want := range []string{metrics.ConfigErrors + `{app="1400000000"} 0`, metrics.LimiterInterval + `{api="admin_msgwithdraw",app="1400000000"} `, metrics.LimiterInterval + `{api="group_msg_recall",app="1400000000"} `,
		metrics.SigRefreshes + `{app="1400000000",reason="initial"}`, metrics.RateLimitBackoffs + `{app="1400000000",code="60007"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "test-secret-key") {
		t.Error("/metrics shows the secret key")
	}
	if !strings.Contains(stderr.String(), `"msg":"metrics server listening","addr":"`+addr+`"`) {
		t.Errorf("the log does not give the metrics address %s:\n%s", addr, stderr.String())
	}

	cancel() // SIGTERM
	sawNotReady := false
	for !sawNotReady {
		select {
		case code := <-done:
			t.Fatalf("the worker exited (%d) before /readyz said 503", code)
		default:
		}
		code, _ := metricsProbe(base + "/readyz")
		sawNotReady = code == http.StatusServiceUnavailable || code == 0
		time.Sleep(5 * time.Millisecond)
	}
	waitExit(t, done, stderr)
	logs := stderr.String()
	workerStopped, metricsStopped := strings.Index(logs, `"msg":"worker stopped"`), strings.Index(logs, `"msg":"metrics server stopped"`)
	if workerStopped < 0 || metricsStopped < workerStopped {
		t.Errorf("the metrics server must stop after the worker (worker at %d, metrics at %d):\n%s", workerStopped, metricsStopped, logs)
	}
	if code, _ := metricsProbe(base + "/healthz"); code != 0 {
		t.Errorf("/healthz answers %d after the worker exited", code)
	}
}

func TestMetricsAddrComesFromTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  *string
		want string
	}{
		{"unset: the default", nil, metrics.DefaultAddr},
		{"set", metricsEnv("127.0.0.1:9191"), "127.0.0.1:9191"},
		{"set empty: off", metricsEnv(""), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("METRICS_ADDR", "")
			if tc.env == nil {
				os.Unsetenv("METRICS_ADDR")
			} else {
				t.Setenv("METRICS_ADDR", *tc.env)
			}
			if got := metricsAddrFromEnv(); got != tc.want {
				t.Errorf("metricsAddrFromEnv() = %q, want %q", got, tc.want)
			}
		})
	}
}

func metricsEnv(s string) *string { return &s }
