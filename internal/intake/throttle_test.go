package intake

import (
	"net/http"
	"strings"
	"testing"
)

// 200 bad tokens from one address: after a few 401s the address gets 429
// without its token being looked at, every failure is logged without the
// token, and /metrics counts them. A client with a good token from another
// address is not affected.
func TestFailedTokensAreThrottledPerAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const bad = "guess-0123456789abcdef"
	codes := map[int]int{}
	for range 200 {
		req := newRequest(http.MethodGet, "/v1/recalls/"+taskID("a", "b", "1_1_1"), "")
		req.RemoteAddr = "203.0.113.9:50000"
		req.Header.Set("Authorization", "Bearer "+bad)
		codes[serve(e.s, req).Code]++
	}
	if codes[http.StatusUnauthorized] == 0 || codes[http.StatusUnauthorized] > 20 || codes[http.StatusTooManyRequests] < 180 {
		t.Fatalf("200 bad tokens from one address: %v; want a few 401s, then 429s", codes)
	}
	// The right token from the throttled address is refused too: guessing
	// cannot go on by luck.
	req := newRequest(http.MethodGet, "/v1/recalls/"+taskID("a", "b", "1_1_1"), "")
	req.RemoteAddr = "203.0.113.9:50001"
	req.Header.Set("Authorization", "Bearer "+opsToken.Secret)
	if rec := serve(e.s, req); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a good token from the throttled address: %d, want 429", rec.Code)
	}
	if rec := e.do(t, http.MethodGet, "/v1/recalls/"+taskID("a", "b", "1_1_1"), opsToken.Secret, ""); rec.Code != http.StatusNotFound {
		t.Fatalf("a good token from another address: %d %s, want 404", rec.Code, rec.Body)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, `"msg":"intake: login failed"`); n != codes[http.StatusUnauthorized] {
		t.Errorf("%d failures logged, want %d", n, codes[http.StatusUnauthorized])
	}
	if strings.Contains(logs, bad) {
		t.Error("the log shows the presented token")
	}
	m := e.do(t, http.MethodGet, "/metrics", "", "")
	if m.Code != http.StatusOK || !strings.Contains(m.Body.String(), `recallq_login_failures_total{door="intake",result="throttled"}`) {
		t.Fatalf("/metrics: %d, no throttled counter:\n%s", m.Code, m.Body)
	}
}
