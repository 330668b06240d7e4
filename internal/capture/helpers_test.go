package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/recallq/recallq/internal/redistest"
)

const (
	testApp   = 1400000000
	testToken = "cb-token-3f9a0c7e5b1d4e28"
)

// env is a capture under test with its Redis.
type env struct {
	s     *Server
	ix    *Index
	rdb   *redis.Client
	now   time.Time
	front string // how requests reach s: netFront or fastFront
	ln    *fasthttputil.InmemoryListener
}

// The two ways a request reaches the capture: net/http (ServeHTTP, what
// embedders and httptest use) and fasthttp (Serve, what `recallq capture`
// runs). Tests of the callback path run through both.
const (
	netFront  = "net-http"
	fastFront = "fasthttp"
)

// eachFront runs test once through each front.
func eachFront(t *testing.T, test func(t *testing.T, front string)) {
	for _, f := range []string{netFront, fastFront} {
		t.Run(f, func(t *testing.T) { test(t, f) })
	}
}

func newEnv(t *testing.T, edit ...func(*Config, *IndexConfig)) *env {
	t.Helper()
	return newFrontEnv(t, netFront, edit...)
}

// newFrontEnv is newEnv whose requests go through front.
func newFrontEnv(t *testing.T, front string, edit ...func(*Config, *IndexConfig)) *env {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	e := &env{rdb: rdb, now: time.Now(), front: front}
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
	return topicBody(from, group, "", seq, t)
}

// topicBody is a Group.CallbackAfterSendMsg body of a message sent in the
// topic topic of the community group (in the community itself if "").
func topicBody(from, group, topic string, seq uint64, t int64) string {
	m := map[string]any{
		"CallbackCommand": CommandGroupAfterSend, "GroupId": group, "Type": "Public", "From_Account": from,
		"Operator_Account": from, "Random": 42, "MsgSeq": seq, "MsgTime": t, "OnlineOnlyFlag": 0,
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "hi"}}},
	}
	if topic != "" {
		m["Type"], m["TopicId"] = "Community", topic
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// post sends a callback through e's front.
func (e *env) post(t *testing.T, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.serve(t, newRequest(http.MethodPost, target, body))
}

// serve sends r through e's front: to ServeHTTP, or over an in-memory
// connection from r.RemoteAddr to the capture's fasthttp server.
func (e *env) serve(t *testing.T, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if e.front == netFront {
		e.s.ServeHTTP(w, r)
		return w
	}
	if e.ln == nil {
		e.ln = fasthttputil.NewInmemoryListener()
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- e.s.Serve(ctx, e.ln, nil) }()
		t.Cleanup(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	remote, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return e.ln.DialWithLocalAddr(remote)
		},
	}}
	req, err := http.NewRequest(r.Method, "http://capture"+r.URL.RequestURI(), r.Body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = r.ContentLength
	req.Header = r.Header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	w.Code = resp.StatusCode
	if _, err := io.Copy(w.Body, resp.Body); err != nil {
		t.Fatal(err)
	}
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
