package dashboard

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/recallq/recallq/internal/logtest"
)

// 100 wrong passwords from one address: a few 401s, then 429 before the
// password is checked, each failure logged without what was typed, and a
// counter on /metrics. Another address still logs in.
func TestFailedLoginsAreThrottledAndLogged(t *testing.T) {
	logs := &logtest.Buffer{}
	d := newTestDashboard(t, Config{Username: "oncall", Password: "correct horse battery",
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	get := func(remote, pass string) int {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		req.SetBasicAuth("oncall", pass)
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		return rec.Code
	}
	codes := map[int]int{}
	for range 100 {
		codes[get("203.0.113.5:4000", "guess-9f8e7d")]++
	}
	if codes[http.StatusUnauthorized] == 0 || codes[http.StatusUnauthorized] > 20 || codes[http.StatusTooManyRequests] < 80 {
		t.Fatalf("100 wrong passwords from one address: %v; want a few 401s, then 429s", codes)
	}
	if code := get("203.0.113.5:4001", "correct horse battery"); code != http.StatusTooManyRequests {
		t.Fatalf("the right password from the throttled address: %d, want 429", code)
	}
	if code := get("198.51.100.2:4000", "correct horse battery"); code != http.StatusOK {
		t.Fatalf("the right password from another address: %d, want 200", code)
	}
	out := logs.String()
	if n := strings.Count(out, `"msg":"dashboard: login failed"`); n != codes[http.StatusUnauthorized] {
		t.Errorf("%d failures logged, want %d:\n%s", n, codes[http.StatusUnauthorized], out)
	}
	if strings.Contains(out, "guess-9f8e7d") {
		t.Error("the log shows the password typed")
	}
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `recallq_login_failures_total{door="dashboard",result="throttled"}`) {
		t.Fatalf("/metrics: %d, no throttled counter:\n%.500s", rec.Code, rec.Body)
	}
}
