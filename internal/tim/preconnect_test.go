package tim

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestPreconnectFillsThePool: Preconnect opens n connections with HEAD
// requests for the root, calls no API, and the calls that follow, n at
// once, find every connection they need in the pool: none dials.
func TestPreconnectFillsThePool(t *testing.T) {
	const n = 4
	var conns, heads, calls atomic.Int64
	var release sync.WaitGroup // holds the calls until all n are in, so that each needs its own connection
	release.Add(n)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			if r.URL.Path != "/" || r.URL.RawQuery != "" {
				t.Errorf("preconnect asked for %s, want / with no query (no UserSig)", r.URL)
			}
			heads.Add(1)
			return
		}
		calls.Add(1)
		release.Done()
		release.Wait()
		_, _ = io.WriteString(w, okBody)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, Config{})
	stubSigs(c)

	if got := c.Preconnect(context.Background(), n); got != n {
		t.Fatalf("Preconnect = %d answered, want %d", got, n)
	}
	if heads.Load() != n || conns.Load() != n || calls.Load() != 0 {
		t.Fatalf("after Preconnect: %d HEADs on %d connections, %d API calls; want %d on %d, none", heads.Load(), conns.Load(), calls.Load(), n, n)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := c.Withdraw(context.Background(), "a", "b", "k"+string(rune('0'+i))); err != nil {
				t.Errorf("Withdraw: %v", err)
			}
		})
	}
	wg.Wait()
	if got := conns.Load(); got != n {
		t.Errorf("%d connections after %d calls at once, want the %d Preconnect opened", got, n, n)
	}
}
