package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func listen(t *testing.T, s *redistest.Server) *Server {
	t.Helper()
	rdb := s.Client(t)
	srv, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Metrics: []*Metrics{New(Config{})},
		Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

func TestProbes(t *testing.T) {
	t.Run("ready only once the worker started", func(t *testing.T) {
		srv := listen(t, redistest.Start(t))
		base := "http://" + srv.Addr()
		if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz before start = %d, want 200", code)
		}
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not started") {
			t.Errorf("/readyz before start = %d %q, want 503 saying it has not started", code, body)
		}
		srv.Started("")
		if code, body := get(t, base+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz after start = %d %q, want 200", code, body)
		}
	})

	t.Run("not ready once shutdown began, still live and scraped", func(t *testing.T) {
		srv := listen(t, redistest.Start(t))
		base := "http://" + srv.Addr()
		srv.Started("")
		srv.Stopping()
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
			t.Errorf("/readyz while stopping = %d %q, want 503 saying it is shutting down", code, body)
		}
		if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz while stopping = %d, want 200", code)
		}
		if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, SigRefreshes) {
			t.Errorf("/metrics while stopping = %d, lacks %s", code, SigRefreshes)
		}
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := http.Get(base + "/healthz"); err == nil {
			t.Error("/healthz answers after Shutdown")
		}
	})

	t.Run("not ready while the worker's circuit is open", func(t *testing.T) {
		srv := listen(t, redistest.Start(t))
		base := "http://" + srv.Addr()
		srv.Started("")
		srv.Unready("", tim.APIWithdraw, "configuration error 90009: set TIM_ADMIN to an app admin account")
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "TIM_ADMIN") {
			t.Errorf("/readyz with the circuit open = %d %q, want 503 with the reason", code, body)
		}
		srv.Unready("", tim.APIWithdraw, "")
		if code, body := get(t, base+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz after the circuit closed = %d %q, want 200", code, body)
		}
	})

	t.Run("not ready while either API's circuit is open, naming the API", func(t *testing.T) {
		srv := listen(t, redistest.Start(t))
		base := "http://" + srv.Addr()
		srv.Started("")
		srv.Unready("", tim.APIGroupRecall, "configuration error 10041: enable group message recall")
		srv.Unready("", tim.APIWithdraw, "configuration error 90009: set TIM_ADMIN")
		srv.Unready("", tim.APIGroupRecall, "") // the group circuit closes; admin_msgwithdraw's is still open
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable ||
			!strings.Contains(body, tim.APIWithdraw+": configuration error 90009") || strings.Contains(body, tim.APIGroupRecall) {
			t.Errorf("/readyz with only admin_msgwithdraw's circuit open = %d %q, want 503 naming it and its reason only", code, body)
		}
		srv.Unready("", tim.APIWithdraw, "")
		if code, body := get(t, base+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz after both circuits closed = %d %q, want 200", code, body)
		}
	})

	t.Run("ready while a circuit of the app's console setting is open, naming it", func(t *testing.T) {
		srv := listen(t, redistest.Start(t))
		base := "http://" + srv.Addr()
		srv.Started("")
		srv.Degraded("", tim.APIGroupRecall, "configuration error 10041: enable group message recall")
		if code, body := get(t, base+"/readyz"); code != http.StatusOK ||
			!strings.Contains(body, "ready: the worker: "+tim.APIGroupRecall+": configuration error 10041") {
			t.Errorf("/readyz with group_msg_recall's circuit open on the console = %d %q, want 200 naming the API and the reason", code, body)
		}
		// The same circuit, now open on a fault of this pod's own.
		srv.Unready("", tim.APIGroupRecall, "configuration error 10007: set TIM_ADMIN")
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable ||
			!strings.Contains(body, "configuration error 10007") || strings.Contains(body, "10041") {
			t.Errorf("/readyz after the circuit's fault became the pod's = %d %q, want 503 with that reason only", code, body)
		}
		srv.Degraded("", tim.APIGroupRecall, "configuration error 10041: enable group message recall")
		srv.Unready("", tim.APIWithdraw, "configuration error 90009: set TIM_ADMIN")
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "configuration error 90009") {
			t.Errorf("/readyz with admin_msgwithdraw's circuit open on the pod = %d %q, want 503 naming it", code, body)
		}
		srv.Unready("", tim.APIWithdraw, "")
		srv.Unready("", tim.APIGroupRecall, "")
		if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ready\n" {
			t.Errorf("/readyz after both circuits closed = %d %q, want 200 %q", code, body, "ready\n")
		}
	})

	t.Run("not ready while Redis is down", func(t *testing.T) {
		s := redistest.Start(t, "--appendonly", "no") // its own server, even with TEST_REDIS_URL: it is stopped
		srv := listen(t, s)
		base := "http://" + srv.Addr()
		srv.Started("")
		if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz with Redis up = %d, want 200", code)
		}
		s.Stop()
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "Redis") {
			t.Errorf("/readyz with Redis down = %d %q, want 503 naming Redis", code, body)
		}
		if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz with Redis down = %d, want 200 (the process still serves)", code)
		}
	})
}

func TestListenRefusesABusyAddress(t *testing.T) {
	srv := listen(t, redistest.Start(t))
	_, err := Listen(ServerConfig{Addr: srv.Addr(), Metrics: []*Metrics{New(Config{})}, Ping: func(context.Context) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), srv.Addr()) {
		t.Errorf("Listen on a busy address: %v, want an error naming it", err)
	}
}

// With several apps, /readyz waits for every app's worker and names the
// one that is not ready.
func TestReadyWaitsForEveryApp(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	srv, err := Listen(ServerConfig{Addr: "127.0.0.1:0",
		Metrics: []*Metrics{New(Config{App: "chat-prod"}), New(Config{App: "chat-staging"})},
		Ping:    func(ctx context.Context) error { return rdb.Ping(ctx).Err() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + srv.Addr()
	srv.Started("chat-prod")
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "chat-staging") {
		t.Errorf("/readyz with one app started = %d %q, want 503 naming chat-staging", code, body)
	}
	srv.Started("chat-staging")
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with both started = %d %q, want 200", code, body)
	}
	srv.Unready("chat-prod", tim.APIWithdraw, "configuration error 90009: set admin")
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "chat-prod") {
		t.Errorf("/readyz with chat-prod's circuit open = %d %q, want 503 naming chat-prod", code, body)
	}
	srv.Unready("chat-prod", tim.APIWithdraw, "")
	srv.Degraded("chat-staging", tim.APIGroupRecall, "configuration error 10041: enable group message recall")
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || !strings.Contains(body, "chat-staging's worker: "+tim.APIGroupRecall) {
		t.Errorf("/readyz with chat-staging's circuit open on the console = %d %q, want 200 naming chat-staging and the API", code, body)
	}
}

func TestListenRefusesTwoMetricsOfOneApp(t *testing.T) {
	_, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Metrics: []*Metrics{New(Config{App: "a"}), New(Config{App: "a"})},
		Ping: func(context.Context) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Listen with two Metrics labelled a: %v, want an error naming the label", err)
	}
}
