package imsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

const (
	testAppID = 1400000001
	testKey   = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	// sigLife is the lifetime, in seconds, of the UserSigs tests make.
	sigLife = 24 * 3600
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestSim returns a simulator for testAppID on a fake clock; mut, if not
// nil, changes the Config first.
func newTestSim(t *testing.T, mut func(*Config)) (*Sim, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg := Config{SDKAppID: testAppID, SecretKey: testKey, Now: clock.Now, Seed: 1}
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, clock
}

// userSig makes a UserSig valid for sigLife seconds from now (real time).
func userSig(t testing.TB, appID int, key, identifier string, life int) string {
	t.Helper()
	sig, err := tencentyun.GenUserSig(appID, key, identifier, life)
	if err != nil {
		t.Fatalf("GenUserSig: %v", err)
	}
	return sig
}

// query returns a valid query string for the admin, which mut may change.
func query(t testing.TB, mut func(url.Values)) string {
	t.Helper()
	q := url.Values{
		"sdkappid":    {fmt.Sprint(testAppID)},
		"identifier":  {"admin"},
		"usersig":     {userSig(t, testAppID, testKey, "admin", sigLife)},
		"random":      {"99999999"},
		"contenttype": {"json"},
	}
	if mut != nil {
		mut(q)
	}
	return q.Encode()
}

// recallJSON is a request body naming one message.
func recallJSON(from, to, msgKey string) string {
	b, _ := json.Marshal(map[string]string{"From_Account": from, "To_Account": to, "MsgKey": msgKey})
	return string(b)
}

// reply is a decoded API answer.
type reply struct {
	Status      int
	ContentType string
	Raw         string
	Result      result
}

// call sends one request straight to s.ServeHTTP.
func call(t testing.TB, s *Sim, method, target, body string) reply {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	rep := reply{Status: rec.Code, ContentType: rec.Header().Get("Content-Type"), Raw: rec.Body.String()}
	if rep.Status == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &rep.Result); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v: %q", method, target, err, rep.Raw)
		}
	}
	return rep
}

// recall sends a valid recall of one message and returns its ErrorCode.
func recall(t testing.TB, s *Sim, q, from, to, msgKey string) int {
	t.Helper()
	rep := call(t, s, http.MethodPost, APIPath+"?"+q, recallJSON(from, to, msgKey))
	if rep.Status != http.StatusOK {
		t.Fatalf("recall %s: HTTP %d: %q", msgKey, rep.Status, rep.Raw)
	}
	return rep.Result.ErrorCode
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
