package tim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no usersig", "dial tcp 127.0.0.1:1: connect: connection refused", "dial tcp 127.0.0.1:1: connect: connection refused"},
		{"url.Error text",
			`Post "http://127.0.0.1:1/v4/openim/admin_msgwithdraw?sdkappid=1&identifier=admin&usersig=eJw1j%2A-_abc&random=7&contenttype=json": EOF`,
			`Post "http://127.0.0.1:1/v4/openim/admin_msgwithdraw?sdkappid=1&identifier=admin&usersig=REDACTED&random=7&contenttype=json": EOF`},
		{"last parameter", "https://h/p?sdkappid=1&usersig=eJw*1-_", "https://h/p?sdkappid=1&usersig=REDACTED"},
		{"first parameter, then a space", "GET /p?usersig=abc rest", "GET /p?usersig=REDACTED rest"},
		{"any case", "?UserSig=abc&x=1 and ?USERSIG=def", "?UserSig=REDACTED&x=1 and ?USERSIG=REDACTED"},
		{"several", "a?usersig=1&b usersig=2", "a?usersig=REDACTED&b usersig=REDACTED"},
		{"empty value", "?usersig=&random=1", "?usersig=REDACTED&random=1"},
		{"query-escaped in another URL", "next=%2Fv4%3Fusersig%3Dabc%26random%3D1 done", "next=%2Fv4%3Fusersig%3DREDACTED done"},
		{"in JSON", `{"error":"Post \"http://h/?usersig=abc\u0026random=1\": EOF"}`, `{"error":"Post \"http://h/?usersig=REDACTED\u0026random=1\": EOF"}`},
		{"the word alone", "usersig expired", "usersig expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q)\n = %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestTransportErrorsRedacted forces transport errors and checks that the
// error names the URL with the UserSig redacted, shows neither the UserSig
// nor the key, and still matches errors.Is / errors.As.
func TestTransportErrorsRedacted(t *testing.T) {
	// stop releases the handlers below before their servers close. (A
	// handler learns that the client has gone only once it has read the
	// request body, so it waits for stop as well.)
	stop := make(chan struct{})

	// A slow server: answers only when the client has gone.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer slow.Close()

	// A server that hangs up without answering.
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer hangup.Close()

	// A server that sends headers and part of the body, then stalls.
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, `{"ActionStatus":`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer stall.Close()
	defer close(stop) // runs before the Close calls above

	// A closed server: connection refused.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name       string
		endpoint   string
		ctx        func() (context.Context, context.CancelFunc)
		httpClient *http.Client
		wantURL    bool // the error names the (redacted) URL
		check      func(t *testing.T, err error)
	}{
		{
			name: "closed server", endpoint: closedURL, wantURL: true,
			check: func(t *testing.T, err error) {
				var opErr *net.OpError
				if !errors.As(err, &opErr) {
					t.Errorf("errors.As(*net.OpError) failed for %v", err)
				}
			},
		},
		{
			name: "server hangs up", endpoint: hangup.URL, wantURL: true,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					var opErr *net.OpError
					if !errors.As(err, &opErr) {
						t.Errorf("want io.EOF or a *net.OpError in %v", err)
					}
				}
			},
		},
		{
			name: "context deadline against a slow server", endpoint: slow.URL, wantURL: true,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			check: isTimeout,
		},
		{
			name: "client timeout against a slow server", endpoint: slow.URL, wantURL: true,
			httpClient: &http.Client{Timeout: 50 * time.Millisecond},
			check:      isTimeout,
		},
		{
			name: "deadline while reading the body", endpoint: stall.URL,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("errors.Is(context.DeadlineExceeded) = false for %v", err)
				}
			},
		},
		{
			name: "cancelled context", endpoint: slow.URL, wantURL: true,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(20*time.Millisecond, cancel)
				return ctx, cancel
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("errors.Is(context.Canceled) = false for %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			var logs bytes.Buffer
			c := newTestClient(t, tt.endpoint, Config{
				HTTPClient: tt.httpClient,
				Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})

			_, err := c.Withdraw(ctx, "a", "b", "1_2_3")
			if err == nil {
				t.Fatal("Withdraw: nil error")
			}
			sig := currentSig(c)
			if sig == "" {
				t.Fatal("no UserSig was generated")
			}
			msg := err.Error()
			assertNoSecret(t, "error", msg, sig)
			assertNoSecret(t, "log", logs.String(), sig)
			if tt.wantURL && !strings.Contains(msg, "usersig="+Redacted) {
				t.Errorf("error %q does not show the redacted URL", msg)
			}
			if !errors.Is(err, ErrTransport) {
				t.Errorf("errors.Is(ErrTransport) = false for %v", err)
			}
			var ue *url.Error
			if errors.As(err, &ue) {
				assertNoSecret(t, "*url.Error found with errors.As", ue.Error(), sig)
			} else if tt.wantURL {
				t.Errorf("errors.As(*url.Error) failed for %v", err)
			}
			tt.check(t, err)
		})
	}
}

func isTimeout(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(context.DeadlineExceeded) = false for %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("errors.As(net.Error) with Timeout() = false for %v", err)
	}
}

// assertNoSecret fails if text holds sig (plain or query-escaped) or the
// secret key.
func assertNoSecret(t *testing.T, what, text, sig string) {
	t.Helper()
	for _, secret := range []string{sig, url.QueryEscape(sig), testKey} {
		if strings.Contains(text, secret) {
			t.Errorf("%s leaks a secret: %q", what, text)
		}
	}
}

// TestDecodeErrorRedacted: a body that echoes the request URL (as an error
// page of a proxy might) does not bring the UserSig into the error.
func TestDecodeErrorRedacted(t *testing.T) {
	tests := []struct {
		name string
		echo func(r *http.Request) string
	}{
		{"URL", func(r *http.Request) string { return "<html>cannot serve " + r.URL.String() + "</html>" }},
		{"raw sig", func(r *http.Request) string { return "<html>bad sig " + r.URL.Query().Get("usersig") + "</html>" }},
		{"JSON with sig", func(r *http.Request) string {
			return `{"sig":"` + r.URL.Query().Get("usersig") + `","key":"` + testKey + `"}`
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, tt.echo(r))
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, Config{})
			_, err := c.Withdraw(context.Background(), "a", "b", "1_2_3")
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Withdraw error = %v, want *DecodeError", err)
			}
			assertNoSecret(t, "error", err.Error(), currentSig(c))
			if !strings.Contains(err.Error(), Redacted) {
				t.Errorf("error %q: the echoed secret is not shown redacted", err)
			}
		})
	}
}

func TestLoggingHidesSecrets(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"ActionStatus":"FAIL","ErrorInfo":"expired","ErrorCode":70001}`)
	}))
	defer srv.Close()
	cfg := Config{Logger: logger}
	c := newTestClient(t, srv.URL, cfg)
	if _, err := c.Withdraw(context.Background(), "a", "b", "1_2_3"); err != nil {
		t.Fatal(err)
	}
	cfg.SecretKey = testKey
	logger.Info("config", "config", cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "config", cfg, "client", c)
	assertNoSecret(t, "log", logs.String(), currentSig(c))
	if !strings.Contains(logs.String(), "70001") || !strings.Contains(logs.String(), "generated UserSig") {
		t.Errorf("logs lack the 70001 retry or the generation:\n%s", logs.String())
	}
}
