package dashboard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/logtest"
)

// unusedRedis is never dialled by the tests that use it: neither the login
// check, /healthz nor the console's index page touch Redis.
var unusedRedis = asynq.RedisClientOpt{Addr: "127.0.0.1:1"}

func newTestDashboard(t *testing.T, cfg Config) *Dashboard {
	t.Helper()
	if cfg.Redis == nil {
		cfg.Redis = unusedRedis
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestBasicAuth(t *testing.T) {
	d := newTestDashboard(t, Config{Username: "oncall", Password: "correct horse"})
	for _, tc := range []struct {
		name       string
		path       string
		user, pass string
		noAuth     bool
		wantCode   int
	}{
		{name: "no credentials", path: "/", noAuth: true, wantCode: http.StatusUnauthorized},
		{name: "wrong user", path: "/", user: "root", pass: "correct horse", wantCode: http.StatusUnauthorized},
		{name: "wrong password", path: "/", user: "oncall", pass: "correct horsf", wantCode: http.StatusUnauthorized},
		{name: "password prefix", path: "/", user: "oncall", pass: "correct", wantCode: http.StatusUnauthorized},
		{name: "empty password", path: "/", user: "oncall", pass: "", wantCode: http.StatusUnauthorized},
		{name: "user and password swapped", path: "/", user: "correct horse", pass: "oncall", wantCode: http.StatusUnauthorized},
		{name: "API without credentials", path: "/api/queues", noAuth: true, wantCode: http.StatusUnauthorized},
		{name: "right credentials", path: "/", user: "oncall", pass: "correct horse", wantCode: http.StatusOK},
		{name: "healthz needs none", path: HealthPath, noAuth: true, wantCode: http.StatusOK},
		{name: "healthz ignores wrong ones", path: HealthPath, user: "x", pass: "y", wantCode: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			if !tc.noAuth {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			rec := httptest.NewRecorder()
			d.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("GET %s: status %d, want %d; body %q", tc.path, rec.Code, tc.wantCode, rec.Body)
			}
			challenge := rec.Header().Get("WWW-Authenticate")
			switch {
			case tc.wantCode == http.StatusUnauthorized && challenge != `Basic realm="recallq dashboard", charset="UTF-8"`:
				t.Errorf("401 without a Basic challenge: WWW-Authenticate %q", challenge)
			case tc.wantCode == http.StatusUnauthorized && strings.Contains(rec.Body.String(), "Asynq"):
				t.Errorf("401 body shows the console: %q", rec.Body)
			case tc.wantCode == http.StatusOK && tc.path == "/" && !strings.Contains(rec.Body.String(), "<title>Asynq - Monitoring</title>"):
				t.Errorf("authenticated GET / did not serve the console: %.200q", rec.Body)
			case tc.wantCode == http.StatusOK && tc.path == HealthPath && rec.Body.String() != "ok\n":
				t.Errorf("healthz body %q, want %q", rec.Body, "ok\n")
			}
		})
	}
}

func TestNewRefusesUnsafeConfigs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"no credentials", Config{}, ErrNoCredentials},
		{"user without password", Config{Username: "oncall"}, ErrNoCredentials},
		{"password without user", Config{Password: "pw"}, ErrNoCredentials},
		{"open on every interface", Config{Open: true, Addr: "0.0.0.0:8080"}, ErrOpenNotLoopback},
		{"open on an empty host", Config{Open: true, Addr: ":8080"}, ErrOpenNotLoopback},
		{"open on a private address", Config{Open: true, Addr: "10.0.0.5:8080"}, ErrOpenNotLoopback},
		{"open on a host name", Config{Open: true, Addr: "dashboard.internal:8080"}, ErrOpenNotLoopback},
		{"open on IPv6 any", Config{Open: true, Addr: "[::]:8080"}, ErrOpenNotLoopback},
		{"open with credentials", Config{Open: true, Username: "oncall", Password: "pw"}, ErrOpenWithCredentials},
		{"addr without port", Config{Username: "oncall", Password: "pw", Addr: "127.0.0.1"}, ErrBadAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Redis = unusedRedis
			d, err := New(tc.cfg)
			if err == nil {
				d.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("New(%+v) = %v, want %v", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestNewAcceptsSafeConfigs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"credentials on the default address", Config{Username: "oncall", Password: "pw"}},
		{"credentials on every interface", Config{Username: "oncall", Password: "pw", Addr: "0.0.0.0:8080"}},
		{"open on the default address", Config{Open: true}},
		{"open on 127.0.0.1", Config{Open: true, Addr: "127.0.0.1:0"}},
		{"open on 127.0.0.53", Config{Open: true, Addr: "127.0.0.53:8080"}},
		{"open on ::1", Config{Open: true, Addr: "[::1]:8080"}},
		{"open on localhost", Config{Open: true, Addr: "localhost:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newTestDashboard(t, tc.cfg)
		})
	}
}

func TestOpenServesWithoutCredentials(t *testing.T) {
	d := newTestDashboard(t, Config{Open: true})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "127.0.0.1:8080" // an open dashboard answers loopback names only
	d.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<title>Asynq - Monitoring</title>") {
		t.Fatalf("open dashboard: status %d, body %.200q", rec.Code, rec.Body)
	}
}

func TestCrossOriginWritesRefused(t *testing.T) {
	d := newTestDashboard(t, Config{Username: "oncall", Password: "pw"})
	// A page on another site makes the logged-in browser send the cached
	// credentials with a form POST: it must not reach asynqmon.
	req := httptest.NewRequest(http.MethodPost, "/api/queues/recall_urgent:pause", nil)
	req.SetBasicAuth("oncall", "pw")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST: status %d, want %d; body %q", rec.Code, http.StatusForbidden, rec.Body)
	}
}

func TestPagesCannotBeFramed(t *testing.T) {
	d := newTestDashboard(t, Config{Username: "oncall", Password: "pw"})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("oncall", "pw")
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options %q, want DENY", got)
	}
	if got := rec.Header().Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q, want frame-ancestors 'none'", got)
	}
}

func TestListenAndServeLogsAddressNotPasswordAndStopsOnCancel(t *testing.T) {
	var logs logtest.Buffer
	const password = "pw-9f3b-never-logged"
	d := newTestDashboard(t, Config{
		Addr: "127.0.0.1:0", Username: "oncall", Password: password,
		RedisName: "redis://:xxxxx@10.1.2.3:6379/0",
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- d.ListenAndServe(ctx, func(u string) { urls <- u }) }()

	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}
	res, err := http.Get(url + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", HealthPath, res.Status)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe after cancel: %v", err)
		}
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("ListenAndServe did not return after its context was cancelled")
	}
	if _, err := http.Get(url + HealthPath); err == nil {
		t.Errorf("%s still answers after shutdown", url)
	}

	out := logs.String()
	if !strings.Contains(out, "addr="+strings.TrimPrefix(url, "http://")) {
		t.Errorf("the log does not name the address %s:\n%s", url, out)
	}
	if !strings.Contains(out, "dashboard: stopped") {
		t.Errorf("the log does not say the dashboard stopped:\n%s", out)
	}
	if strings.Contains(out, password) {
		t.Errorf("the log shows the password:\n%s", out)
	}
}
