package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
)

const (
	testApp   = 1400000000
	testToken = "cb-token-3f9a0c7e5b1d4e28"
)

// env is a capture under test with its Redis.
type env struct {
	s   *Server
	ix  *Index
	rdb *redis.Client
	now time.Time
}

func newEnv(t *testing.T, edit ...func(*Config, *IndexConfig)) *env {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	e := &env{rdb: rdb, now: time.Now()}
	icfg := IndexConfig{Redis: rdb}
	cfg := Config{
		Auth:   Auth{SDKAppIDs: []uint64{testApp}, Token: testToken},
		Redis:  rdb,
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, f := range edit {
		f(&cfg, &icfg)
	}
	ix, err := NewIndex(icfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	cfg.Index = ix
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.s, e.ix = s, ix
	return e
}

// callbackURL is the URL Tencent would call, signed with token at now.
func callbackURL(path string, app uint64, command, token string, now time.Time) string {
	q := url.Values{}
	q.Set("SdkAppid", strconv.FormatUint(app, 10))
	q.Set("CallbackCommand", command)
	q.Set("contenttype", "json")
	q.Set("ClientIP", "203.0.113.7")
	q.Set("OptPlatform", "iOS")
	if token != "" {
		rt := now.Unix()
		q.Set("RequestTime", strconv.FormatInt(rt, 10))
		q.Set("Sign", SignFor(token, rt))
	}
	return path + "?" + q.Encode()
}

// c2cBody is a C2C.CallbackAfterSendMsg body.
func c2cBody(from, to string, seq, rnd uint64, t int64, result int) string {
	b, _ := json.Marshal(map[string]any{
		"CallbackCommand": CommandC2CAfterSend, "From_Account": from, "To_Account": to,
		"MsgSeq": seq, "MsgRandom": rnd, "MsgTime": t, "MsgKey": fmt.Sprintf("%d_%d_%d", seq, rnd, t),
		"OnlineOnlyFlag": 0, "SendMsgResult": result, "ErrorInfo": "send msg succeed", "UnreadMsgNum": 1,
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "buy cheap watches"}}},
	})
	return string(b)
}

// groupBody is a Group.CallbackAfterSendMsg body.
func groupBody(from, group string, seq uint64, t int64) string {
	b, _ := json.Marshal(map[string]any{
		"CallbackCommand": CommandGroupAfterSend, "GroupId": group, "Type": "Public", "From_Account": from,
		"Operator_Account": from, "Random": 42, "MsgSeq": seq, "MsgTime": t, "OnlineOnlyFlag": 0,
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "hi"}}},
	})
	return string(b)
}

// post sends a callback straight to the handler.
func (e *env) post(t *testing.T, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.RemoteAddr = "198.51.100.10:40000"
	w := httptest.NewRecorder()
	e.s.ServeHTTP(w, r)
	return w
}

// postC2C sends a signed C2C callback and requires the OK answer.
func (e *env) postC2C(t *testing.T, from, to string, seq uint64, at time.Time) {
	t.Helper()
	w := e.post(t, callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, time.Now()), c2cBody(from, to, seq, uint64(1000+seq), at.Unix(), 0))
	if w.Code != http.StatusOK || w.Body.String() != string(okAnswer) {
		t.Fatalf("C2C callback answered %d %s", w.Code, w.Body)
	}
}

func (e *env) postGroup(t *testing.T, from, group string, seq uint64, at time.Time) {
	t.Helper()
	w := e.post(t, callbackURL(CallbackPath, testApp, CommandGroupAfterSend, testToken, time.Now()), groupBody(from, group, seq, at.Unix()))
	if w.Code != http.StatusOK {
		t.Fatalf("group callback answered %d %s", w.Code, w.Body)
	}
}

// keys is every key in the test's Redis.
func (e *env) keys(t *testing.T) []string {
	t.Helper()
	ks, err := e.rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// query collects the messages of q.
func (e *env) query(t *testing.T, q Query) []Message {
	t.Helper()
	var out []Message
	if err := e.ix.Each(context.Background(), q, func(m Message) error { out = append(out, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func newRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = "198.51.100.10:40000"
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
