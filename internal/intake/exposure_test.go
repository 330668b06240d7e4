package intake

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/dashboard"
)

// The intake listens on loopback unless told otherwise, and warns that it
// serves plain HTTP when told to listen beyond it.
func TestLoopbackByDefaultAndPlainHTTPWarning(t *testing.T) {
	t.Parallel()
	if !dashboard.IsLoopback(DefaultAddr) {
		t.Errorf("DefaultAddr %q is not a loopback address", DefaultAddr)
	}
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"0.0.0.0:0", true}, {"127.0.0.1:0", false}} {
		e := newEnv(t, func(c *Config) { c.Addr = tc.addr })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.s.ListenAndServe(ctx, func(string) { cancel() }) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ListenAndServe did not return")
		}
		if got := strings.Contains(e.logs.String(), "plain HTTP"); got != tc.warn {
			t.Errorf("%s: warned of plain HTTP: %v, want %v:\n%s", tc.addr, got, tc.warn, e.logs)
		}
	}
}
