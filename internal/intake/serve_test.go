package intake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestListenAndServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Now()}
	e := newEnv(t, func(c *Config) { c.Addr, c.Now = "127.0.0.1:0", clock.Now })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	urls := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- e.s.ListenAndServe(ctx, func(u string) { urls <- u }) }()
	var base string
	select {
	case base = <-urls:
	case err := <-served:
		t.Fatalf("ListenAndServe: %v", err)
	}

	// Each request on a connection of its own: a keep-alive connection
	// between two requests is idle, and Shutdown closes idle connections.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}

	// Start a POST whose body is still arriving, then stop the server: the
	// request in flight must still be answered.
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/recalls", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+opsToken.Secret)
	answered := make(chan *http.Response, 1)
	failed := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			failed <- err
			return
		}
		answered <- resp
	}()
	body := recallJSON("vinson", "dramon", "31906_833502_1572869830")
	if _, err := io.WriteString(pw, body[:10]); err != nil {
		t.Fatal(err)
	}
	// Once the request took a token from its client's bucket (the clock
	// stands still), the handler runs: Shutdown must wait for it. (A request
	// whose headers arrive after Shutdown began is dropped by net/http.)
	ops := e.s.lookup(opsToken.Secret)
	waitFor(t, func() bool { return ops.lim.TokensAt(clock.Now()) < DefaultBurst })
	stop()
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), "intake: shutting down") })
	if _, err := io.WriteString(pw, body[10:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	select {
	case resp := <-answered:
		defer resp.Body.Close()
		var q Queued
		if err := json.NewDecoder(resp.Body).Decode(&q); err != nil || resp.StatusCode != http.StatusAccepted || q.Status != StatusQueued {
			t.Fatalf("in-flight POST: %d %+v %v", resp.StatusCode, q, err)
		}
	case err := <-failed:
		t.Fatalf("the in-flight POST was cut off: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight POST was not answered")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ListenAndServe after shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after ctx ended")
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Fatal("the server still answers after shutdown")
	}
}

func TestListenAndServeReportsABusyAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Addr = "127.0.0.1:0" })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	urls := make(chan string, 1)
	go func() { _ = e.s.ListenAndServe(ctx, func(u string) { urls <- u }) }()
	addr := strings.TrimPrefix(<-urls, "http://")
	other := newEnv(t, func(c *Config) { c.Addr = addr })
	err := other.s.ListenAndServe(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "listen on "+addr) {
		t.Fatalf("second server on %s: %v, want a listen error", addr, err)
	}
}

func TestNewNamesTheBadField(t *testing.T) {
	t.Parallel()
	base := Config{SDKAppID: testApp, Tokens: []Token{opsToken}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no app", func(c *Config) { c.SDKAppID = 0 }, "Config.SDKAppID is not set"},
		{"no tokens", func(c *Config) { c.Tokens = nil }, "Config.Tokens is empty"},
		{"same token twice", func(c *Config) { c.Tokens = []Token{opsToken, {Name: "other", Secret: opsToken.Secret}} }, "have the same token"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "Config.Rate"},
		{"negative burst", func(c *Config) { c.Burst = -1 }, "Config.Burst"},
		{"negative batch", func(c *Config) { c.MaxBatch = -1 }, "Config.MaxBatch"},
		{"tiny body", func(c *Config) { c.MaxBodyBytes = 10 }, "Config.MaxBodyBytes"},
		{"bad redis url", func(c *Config) { c.RedisURL = "http://:hunter2@x" }, "Config.RedisURL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			s, err := New(cfg)
			if err == nil {
				s.Close()
				t.Fatal("New accepted a bad Config")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), opsToken.Secret) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error leaks a secret: %v", err)
			}
		})
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
