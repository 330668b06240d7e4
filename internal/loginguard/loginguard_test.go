package loginguard

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/recallq/recallq/internal/logtest"
)

func request(remote string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	return r
}

// After Burst failures an address is refused until one failure has
// refilled; other addresses are not; an IPv6 /64 counts as one address.
func TestThrottlesFailuresPerAddress(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	logs := &logtest.Buffer{}
	g := New(Config{Door: "intake", Burst: 3, Refill: 10 * time.Second, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	allowed := func(remote string) bool {
		_, ok := g.Allow(request(remote))
		return ok
	}
	for i := range 3 {
		if !allowed("203.0.113.7:40000") {
			t.Fatalf("attempt %d refused before the burst was spent", i+1)
		}
		g.Failed(request("203.0.113.7:40000"), "wrong credentials")
	}
	wait, ok := g.Allow(request("203.0.113.7:40001"))
	if ok {
		t.Fatal("a fourth attempt after three failures was let through")
	}
	if wait != 10*time.Second {
		t.Fatalf("retry after %s, want 10s", wait)
	}
	rec := httptest.NewRecorder()
	Refuse(rec, wait)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "10" {
		t.Fatalf("refusal: %d Retry-After %q, want 429 and 10", rec.Code, rec.Header().Get("Retry-After"))
	}
	if !allowed("198.51.100.1:1") {
		t.Fatal("another address was refused")
	}
	now = now.Add(10 * time.Second)
	if !allowed("203.0.113.7:40000") {
		t.Fatal("still refused after a failure refilled")
	}

	for range 3 {
		g.Failed(request("[2001:db8:1:2::1]:5"), "no credentials")
	}
	if allowed("[2001:db8:1:2::ffff]:5") {
		t.Fatal("another address of the same IPv6 /64 was let through")
	}
	if !allowed("[2001:db8:1:3::1]:5") {
		t.Fatal("an address of another /64 was refused")
	}

	if got := count(t, g, "failed"); got != 6 {
		t.Errorf("failed = %v, want 6", got)
	}
	if got := count(t, g, "throttled"); got != 2 {
		t.Errorf("throttled = %v, want 2", got)
	}
	if n := strings.Count(logs.String(), `"msg":"intake: login failed"`); n != 6 {
		t.Errorf("%d failures logged, want 6:\n%s", n, logs)
	}
}

// The remembered addresses stay bounded.
func TestForgetsAddressesPastMaxAddrs(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := New(Config{Door: "dashboard", MaxAddrs: 100, Now: func() time.Time { return now }})
	for i := range 1000 {
		g.Failed(request("10.0."+itoa(i/250)+"."+itoa(i%250)+":1"), "wrong credentials")
	}
	if n := len(g.addrs); n > 100 {
		t.Fatalf("%d addresses remembered, bound 100", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// count reads the guard's counter for result through a registry, as a
// scrape would.
func count(t *testing.T, g *Guard, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if hasLabel(m, "result", result) && hasLabel(m, "door", "intake") {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
