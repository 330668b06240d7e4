package imsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	valid := func() Config { return Config{SDKAppID: testAppID, SecretKey: testKey} }
	tests := []struct {
		name  string
		mut   func(*Config)
		field string
	}{
		{"SDKAppID missing", func(c *Config) { c.SDKAppID = 0 }, "SDKAppID"},
		{"SecretKey missing", func(c *Config) { c.SecretKey = "" }, "SecretKey"},
		{"empty admin", func(c *Config) { c.Admins = []string{"admin", ""} }, "Admins"},
		{"negative Cap", func(c *Config) { c.Cap = -1 }, "Cap"},
		{"negative Window", func(c *Config) { c.Window = -time.Second }, "Window"},
		{"FailRate above 1", func(c *Config) { c.FailRate = 1.5 }, "FailRate"},
		{"negative latency", func(c *Config) { c.LatencyMin = -1 }, "LatencyMin"},
		{"LatencyMax below LatencyMin", func(c *Config) { c.LatencyMin, c.LatencyMax = 2, 1 }, "LatencyMax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.mut(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("New: got %v, want an error wrapping ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New: error %q does not name %s", err, tt.field)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("New: error %q leaks the secret key", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, nil) // fake clock that stands still: one window
	q := query(t, nil)
	var got []int
	for i := range DefaultCap + 1 {
		if code := recall(t, s, q, "a", "b", fmt.Sprintf("%d_1_1", i)); code != codeOK {
			got = append(got, code)
		}
	}
	if !equalInts(got, []int{codeRateLimited}) {
		t.Errorf("DefaultCap+1 calls in one window: non-zero codes %v, want exactly one 60007", got)
	}
	if st := s.Stats(); st.MaxInAnyWindow != DefaultCap+1 {
		t.Errorf("MaxInAnyWindow = %d, want %d", st.MaxInAnyWindow, DefaultCap+1)
	}
}

// TestChecks pins the code of every check of a request, row by row.
func TestChecks(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, func(c *Config) { c.Admins = []string{"admin", "ops"} })
	set := func(k, v string) func(url.Values) { return func(q url.Values) { q.Set(k, v) } }
	del := func(k string) func(url.Values) { return func(q url.Values) { q.Del(k) } }
	sig := func(appID int, key, id string) func(url.Values) {
		return set("usersig", userSig(t, appID, key, id, sigLife))
	}
	const api = APIPath
	tests := []struct {
		name   string
		method string // default POST
		path   string // default APIPath
		raw    string // raw query; default query(t, mut)
		mut    func(url.Values)
		body   string // default a recall of a fresh message
		want   int
	}{
		{name: "valid recall", want: codeOK},
		{name: "second admin", mut: func(q url.Values) {
			q.Set("identifier", "ops")
			q.Set("usersig", userSig(t, testAppID, testKey, "ops", sigLife))
		}, want: codeOK},
		{name: "unknown extra parameter is fine", mut: set("foo", "bar"), want: codeOK},
		{name: "random 0", mut: set("random", "0"), want: codeOK},
		{name: "random 4294967295", mut: set("random", "4294967295"), want: codeOK},
		{name: "extra body field is fine", body: `{"From_Account":"a","To_Account":"b","MsgKey":"7_7_7","Extra":[1]}`, want: codeOK},

		{name: "GET", method: http.MethodGet, want: codeHTTPParse},
		{name: "PUT", method: http.MethodPut, want: codeHTTPParse},
		{name: "GET on another path", method: http.MethodGet, path: "/v4/openim/sendmsg", want: codeHTTPParse},
		{name: "other API", path: "/v4/openim/sendmsg", want: codeBadResource},
		{name: "trailing slash", path: api + "/", want: codeBadResource},
		{name: "path case", path: "/v4/openim/Admin_msgwithdraw", want: codeBadResource},
		{name: "root", path: "/", want: codeBadResource},

		{name: "malformed query", raw: "sdkappid=%zz", want: codeHTTPParse},
		{name: "sdkappid missing", mut: del("sdkappid"), want: codeNoSDKAppID},
		{name: "sdkappid name case", mut: func(q url.Values) { q["SdkAppID"] = q["sdkappid"]; q.Del("sdkappid") }, want: codeNoSDKAppID},
		{name: "sdkappid not a number", mut: set("sdkappid", "14x"), want: codeBadURLParam},
		{name: "sdkappid another app", mut: set("sdkappid", "1400000002"), want: codeBadSDKAppID},
		{name: "identifier missing", mut: del("identifier"), want: codeBadURLParam},
		{name: "identifier empty", mut: set("identifier", ""), want: codeBadURLParam},
		{name: "usersig missing", mut: del("usersig"), want: codeBadURLParam},
		{name: "usersig empty", mut: set("usersig", ""), want: codeBadURLParam},
		{name: "random missing", mut: del("random"), want: codeHTTPParse},
		{name: "random empty", mut: set("random", ""), want: codeHTTPParse},
		{name: "random negative", mut: set("random", "-1"), want: codeHTTPParse},
		{name: "random above uint32", mut: set("random", "4294967296"), want: codeHTTPParse},
		{name: "random hex", mut: set("random", "0x10"), want: codeHTTPParse},
		{name: "contenttype missing", mut: del("contenttype"), want: codeBadURLParam},
		{name: "contenttype case", mut: set("contenttype", "JSON"), want: codeBadURLParam},
		{name: "contenttype other", mut: set("contenttype", "xml"), want: codeBadURLParam},

		{name: "usersig garbage", mut: set("usersig", "not-a-usersig"), want: codeSigIllegal},
		{name: "usersig wrong key", mut: sig(testAppID, "another key", "admin"), want: codeSigVerify},
		{name: "usersig of another identifier", mut: sig(testAppID, testKey, "ops"), want: codeSigIdentifier},
		{name: "usersig of another app", mut: sig(1400000002, testKey, "admin"), want: codeSigSDKAppID},
		{name: "not an admin", mut: func(q url.Values) {
			q.Set("identifier", "bob")
			q.Set("usersig", userSig(t, testAppID, testKey, "bob", sigLife))
		}, want: codeNotAdmin},

		{name: "body not JSON", body: `From_Account=a`, want: codeBadJSON},
		{name: "body empty", body: " ", want: codeBadJSON},
		{name: "body array", body: `[{"From_Account":"a"}]`, want: codeBadJSON},
		{name: "body null", body: `null`, want: codeBadJSON},
		{name: "body trailing garbage", body: `{"From_Account":"a","To_Account":"b","MsgKey":"1_1_1"}x`, want: codeBadJSON},
		{name: "From_Account a number", body: `{"From_Account":1,"To_Account":"b","MsgKey":"1_1_1"}`, want: codeBadJSON},
		{name: "MsgKey a number", body: `{"From_Account":"a","To_Account":"b","MsgKey":111}`, want: codeBadJSON},
		{name: "body too large", body: `{"x":"` + strings.Repeat("x", maxBodyBytes) + `"}`, want: codeBadJSON},
		{name: "From_Account missing", body: `{"To_Account":"b","MsgKey":"1_1_1"}`, want: codeBadFromAccount},
		{name: "From_Account empty", body: `{"From_Account":"","To_Account":"b","MsgKey":"1_1_1"}`, want: codeBadFromAccount},
		{name: "From_Account null", body: `{"From_Account":null,"To_Account":"b","MsgKey":"1_1_1"}`, want: codeBadFromAccount},
		{name: "field name case", body: `{"from_account":"a","To_Account":"b","MsgKey":"1_1_1"}`, want: codeBadFromAccount},
		{name: "To_Account missing", body: `{"From_Account":"a","MsgKey":"1_1_1"}`, want: codeBadToAccount},
		{name: "To_Account empty", body: `{"From_Account":"a","To_Account":"","MsgKey":"1_1_1"}`, want: codeBadToAccount},
		{name: "MsgKey missing", body: `{"From_Account":"a","To_Account":"b"}`, want: codeBadMsgKey},
		{name: "MsgKey empty", body: `{"From_Account":"a","To_Account":"b","MsgKey":""}`, want: codeBadMsgKey},
		{name: "MsgKey shape", body: recallJSON("a", "b", "31906-833502-1572869830"), want: codeBadMsgKey},

		{name: "method checked before the query", method: http.MethodGet, mut: del("sdkappid"), want: codeHTTPParse},
		{name: "query checked before the UserSig", mut: func(q url.Values) { q.Set("usersig", "x"); q.Del("random") }, want: codeHTTPParse},
		{name: "UserSig checked before the body", mut: set("usersig", "x"), body: "nope", want: codeSigIllegal},
		{name: "admin checked before the body", mut: func(q url.Values) {
			q.Set("identifier", "bob")
			q.Set("usersig", userSig(t, testAppID, testKey, "bob", sigLife))
		}, body: "nope", want: codeNotAdmin},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path, raw, body := tt.method, tt.path, tt.raw, tt.body
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = api
			}
			if raw == "" {
				raw = query(t, tt.mut)
			}
			if body == "" {
				body = recallJSON("alice", "bob", fmt.Sprintf("%d_42_1572869830", i))
			}
			rep := call(t, s, method, path+"?"+raw, body)
			if rep.Status != http.StatusOK {
				t.Fatalf("HTTP status %d, want 200: %q", rep.Status, rep.Raw)
			}
			if rep.ContentType != "application/json" {
				t.Errorf("Content-Type %q, want application/json", rep.ContentType)
			}
			res := rep.Result
			if res.ErrorCode != tt.want {
				t.Errorf("ErrorCode %d (%q), want %d", res.ErrorCode, res.ErrorInfo, tt.want)
			}
			wantStatus, wantInfo := "FAIL", true
			if tt.want == codeOK {
				wantStatus, wantInfo = "OK", false
			}
			if res.ActionStatus != wantStatus || (res.ErrorInfo != "") != wantInfo {
				t.Errorf("ActionStatus %q ErrorInfo %q, want %s and ErrorInfo set: %v", res.ActionStatus, res.ErrorInfo, wantStatus, wantInfo)
			}
			if res.RequestId == "" {
				t.Errorf("RequestId is empty")
			}
			if u, _ := url.ParseQuery(raw); u.Get("usersig") != "" && strings.Contains(rep.Raw, u.Get("usersig")) {
				t.Errorf("the answer echoes the UserSig")
			}
		})
	}
}

func TestUserSigExpiry(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	q := query(t, func(v url.Values) { v.Set("usersig", userSig(t, testAppID, testKey, "admin", 3600)) })
	tests := []struct {
		name    string
		advance time.Duration
		want    int
	}{
		{"fresh", 0, codeOK},
		{"at the end of its life", 59 * time.Minute, codeOK},
		{"expired", 2 * time.Minute, codeSigExpired},
		{"long expired", 24 * time.Hour, codeSigExpired},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)
			if got := recall(t, s, q, "a", "b", fmt.Sprintf("%d_0_0", i)); got != tt.want {
				t.Errorf("code %d, want %d", got, tt.want)
			}
		})
	}
	if st := s.Stats(); st.Counted != 2 {
		t.Errorf("Counted = %d, want 2: an expired UserSig is not an authenticated arrival", st.Counted)
	}
}

func TestStoreOutcomes(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, nil)
	q := query(t, nil)
	s.DropAccount("gone")
	s.ForgetMessage("a", "b", "2_2_2")
	tests := []struct {
		name         string
		from, to, mk string
		want         int
	}{
		{"first recall", "a", "b", "1_1_1", codeOK},
		{"second recall", "a", "b", "1_1_1", codeAlreadyRecalled},
		{"third recall", "a", "b", "1_1_1", codeAlreadyRecalled},
		{"same key, other sender", "c", "b", "1_1_1", codeOK},
		{"same key, other receiver", "a", "c", "1_1_1", codeOK},
		{"forgotten message", "a", "b", "2_2_2", codeMsgNotFound},
		{"forgotten message again", "a", "b", "2_2_2", codeMsgNotFound},
		{"dropped sender", "gone", "b", "3_3_3", codeBadFromAccount},
		{"dropped receiver", "a", "gone", "3_3_3", codeBadToAccount},
		{"dropped both", "gone", "gone", "3_3_3", codeBadFromAccount},
		{"not dropped", "a", "b", "3_3_3", codeOK},
		{"bad MsgKey letters", "a", "b", "abc", codeBadMsgKey},
		{"bad MsgKey two parts", "a", "b", "1_2", codeBadMsgKey},
		{"bad MsgKey four parts", "a", "b", "1_2_3_4", codeBadMsgKey},
		{"bad MsgKey empty part", "a", "b", "1__3", codeBadMsgKey},
		{"bad MsgKey space", "a", "b", "1_2_3 ", codeBadMsgKey},
		{"unicode accounts", "张三", "李四", "31906_833502_1572869830", codeOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recall(t, s, q, tt.from, tt.to, tt.mk); got != tt.want {
				t.Errorf("code %d, want %d", got, tt.want)
			}
		})
	}

	t.Run("fate", func(t *testing.T) {
		if got, want := s.Fate("a", "b", "1_1_1"), []int{0, 20023, 20023}; !equalInts(got, want) {
			t.Errorf("Fate = %v, want %v", got, want)
		}
		if got := s.Fate("a", "b", "9_9_9"); got != nil {
			t.Errorf("Fate of an untouched message = %v, want nil", got)
		}
	})
	t.Run("forgetting a recalled message", func(t *testing.T) {
		s.ForgetMessage("a", "b", "1_1_1")
		if got := recall(t, s, q, "a", "b", "1_1_1"); got != codeMsgNotFound {
			t.Errorf("code %d, want 20022", got)
		}
	})
	t.Run("reset restores the open world", func(t *testing.T) {
		s.Reset()
		for _, m := range [][3]string{{"a", "b", "1_1_1"}, {"a", "b", "2_2_2"}, {"gone", "b", "3_3_3"}} {
			if got := recall(t, s, q, m[0], m[1], m[2]); got != codeOK {
				t.Errorf("%v after Reset: code %d, want 0", m, got)
			}
		}
	})
}

func TestForce(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, nil)
	q := query(t, nil)
	codes := func(from, to, mk string, n int) []int {
		var out []int
		for range n {
			out = append(out, recall(t, s, q, from, to, mk))
		}
		return out
	}
	tests := []struct {
		name         string
		code, times  int
		from, to, mk string
		calls        int
		want         []int
	}{
		{"twice 91000, then the store", 91000, 2, "a", "b", "1_1_1", 4, []int{91000, 91000, 0, 20023}},
		{"once 60007", 60007, 1, "a", "b", "2_2_2", 2, []int{60007, 0}},
		{"always 60020", 60020, 0, "a", "b", "3_3_3", 3, []int{60020, 60020, 60020}},
		{"always, negative times", 70001, -1, "a", "b", "4_4_4", 2, []int{70001, 70001}},
		{"unknown code", 99999, 1, "a", "b", "5_5_5", 2, []int{99999, 0}},
		{"90009", 90009, 1, "a", "b", "6_6_6", 2, []int{90009, 0}},
		{"before the MsgKey shape check", 91000, 1, "a", "b", "bad", 2, []int{91000, 90054}},
		{"whatever the accounts", 20022, 2, "x", "y", "7_7_7", 1, []int{20022}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Force(tt.mk, tt.code, tt.times)
			if got := codes(tt.from, tt.to, tt.mk, tt.calls); !equalInts(got, tt.want) {
				t.Errorf("codes %v, want %v", got, tt.want)
			}
			if got := s.Fate(tt.from, tt.to, tt.mk); !equalInts(got, tt.want) {
				t.Errorf("Fate %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a forced unknown code has an ErrorInfo", func(t *testing.T) {
		s.Force("8_8_8", 99999, 1)
		rep := call(t, s, http.MethodPost, APIPath+"?"+q, recallJSON("a", "b", "8_8_8"))
		if rep.Result.ActionStatus != "FAIL" || rep.Result.ErrorInfo == "" {
			t.Errorf("answer %+v, want FAIL with an ErrorInfo", rep.Result)
		}
	})
	t.Run("only after authentication", func(t *testing.T) {
		s.Force("9_9_9", 91000, 1)
		bad := query(t, func(v url.Values) { v.Set("usersig", userSig(t, testAppID, "wrong", "admin", sigLife)) })
		if got := recall(t, s, bad, "a", "b", "9_9_9"); got != codeSigVerify {
			t.Errorf("unauthenticated: code %d, want 70009", got)
		}
		if got := recall(t, s, q, "a", "b", "9_9_9"); got != 91000 {
			t.Errorf("authenticated: code %d, want 91000 (the rejected call must not use up the rule)", got)
		}
	})
	t.Run("forced 60007 is not a rate rejection", func(t *testing.T) {
		st := s.Stats()
		if st.Rejected60007 != 0 || st.ByCode[60007] != 1 {
			t.Errorf("Rejected60007 = %d, ByCode[60007] = %d, want 0 and 1", st.Rejected60007, st.ByCode[60007])
		}
	})
	t.Run("reset clears the rules", func(t *testing.T) {
		s.Reset()
		if got := recall(t, s, q, "a", "b", "3_3_3"); got != codeOK {
			t.Errorf("code %d, want 0", got)
		}
	})
}

func TestFaults(t *testing.T) {
	t.Parallel()
	q := query(t, nil)
	badSig := query(t, func(v url.Values) { v.Set("usersig", "x") })

	t.Run("outage answers 502 before any check, then ends", func(t *testing.T) {
		s, clock := newTestSim(t, nil)
		s.SetFaults(Faults{OutageUntil: clock.Now().Add(10 * time.Second)})
		for _, target := range []string{APIPath + "?" + q, APIPath + "?" + badSig, "/v4/other"} {
			rep := call(t, s, http.MethodPost, target, recallJSON("a", "b", "1_1_1"))
			if rep.Status != http.StatusBadGateway {
				t.Fatalf("during the outage: HTTP %d, want 502", rep.Status)
			}
			if strings.HasPrefix(strings.TrimSpace(rep.Raw), "{") || rep.ContentType == "application/json" {
				t.Errorf("outage body %q (%s) looks like JSON", rep.Raw, rep.ContentType)
			}
		}
		st := s.Stats()
		if st.Calls != 3 || st.HTTPErrors != 3 || st.Counted != 0 || len(st.ByCode) != 0 {
			t.Errorf("stats after the outage: %+v, want 3 calls, 3 HTTP errors, nothing counted", st)
		}
		if got := s.Fate("a", "b", "1_1_1"); got != nil {
			t.Errorf("Fate after a 502 = %v, want nil", got)
		}
		clock.Advance(10 * time.Second)
		if got := recall(t, s, q, "a", "b", "1_1_1"); got != codeOK {
			t.Errorf("after the outage: code %d, want 0", got)
		}
	})

	t.Run("CodeUntil answers Code to authenticated calls", func(t *testing.T) {
		s, clock := newTestSim(t, func(c *Config) { c.Cap = 3 })
		s.SetFaults(Faults{CodeUntil: clock.Now().Add(time.Minute), Code: codeInternal})
		tests := []struct {
			name string
			q    string
			want int
		}{
			{"authenticated", q, codeInternal},
			{"bad UserSig still fails auth", badSig, codeSigIllegal},
			{"authenticated again", q, codeInternal},
			{"third", q, codeInternal},
			{"the rate limit comes first", q, codeRateLimited},
		}
		for _, tt := range tests {
			if got := recall(t, s, tt.q, "a", "b", "1_1_1"); got != tt.want {
				t.Errorf("%s: code %d, want %d", tt.name, got, tt.want)
			}
		}
		clock.Advance(time.Minute)
		if got := recall(t, s, q, "a", "b", "1_1_1"); got != codeOK {
			t.Errorf("after CodeUntil: code %d, want 0 (the injected 91000s must not recall)", got)
		}
	})

	t.Run("FailRate 1 fails every would-be success and recalls nothing", func(t *testing.T) {
		s, _ := newTestSim(t, func(c *Config) { c.FailRate = 1 })
		s.ForgetMessage("a", "b", "2_2_2")
		want := map[string]int{"1_1_1": codeInternal, "2_2_2": codeMsgNotFound, "bad": codeBadMsgKey}
		for mk, code := range want {
			if got := recall(t, s, q, "a", "b", mk); got != code {
				t.Errorf("%s: code %d, want %d", mk, got, code)
			}
		}
		s.SetFaults(Faults{})
		if got := recall(t, s, q, "a", "b", "1_1_1"); got != codeOK {
			t.Errorf("after clearing FailRate: code %d, want 0", got)
		}
		s.SetFaults(Faults{FailRate: 1})
		s.Reset()
		if got := s.Faults().FailRate; got != 1 {
			t.Errorf("after Reset FailRate = %v, want the configured 1", got)
		}
	})

	t.Run("FailRate one half fails some", func(t *testing.T) {
		s, _ := newTestSim(t, func(c *Config) { c.FailRate = 0.5; c.Cap = 1000 })
		fails := 0
		for i := range 200 {
			if recall(t, s, q, "a", "b", fmt.Sprintf("%d_1_1", i)) == codeInternal {
				fails++
			}
		}
		if fails < 40 || fails > 160 {
			t.Errorf("%d of 200 calls failed at FailRate 0.5", fails)
		}
	})

	t.Run("SetFaults clamps", func(t *testing.T) {
		s, _ := newTestSim(t, nil)
		s.SetFaults(Faults{FailRate: 3, LatencyMin: -time.Second, LatencyMax: -2 * time.Second})
		if got := s.Faults(); got.FailRate != 1 || got.LatencyMin != 0 || got.LatencyMax != 0 {
			t.Errorf("Faults = %+v, want FailRate 1 and no latency", got)
		}
	})
}

func TestLatency(t *testing.T) {
	t.Parallel()
	t.Run("a client that goes away is not answered or counted", func(t *testing.T) {
		s, _ := newTestSim(t, func(c *Config) { c.LatencyMin, c.LatencyMax = time.Hour, time.Hour })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, APIPath+"?"+query(t, nil), strings.NewReader(recallJSON("a", "b", "1_1_1")))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req) // returns at once: the context is done
		if rec.Body.Len() != 0 {
			t.Errorf("answered %q to a client that went away", rec.Body.String())
		}
		if st := s.Stats(); st.Calls != 0 || st.Counted != 0 {
			t.Errorf("stats %+v, want nothing counted", st)
		}
	})
	t.Run("a short latency answers", func(t *testing.T) {
		s, _ := newTestSim(t, func(c *Config) { c.LatencyMin, c.LatencyMax = time.Microsecond, 2*time.Microsecond })
		if got := recall(t, s, query(t, nil), "a", "b", "1_1_1"); got != codeOK {
			t.Errorf("code %d, want 0", got)
		}
	})
}

func TestLogsNoSecrets(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s, _ := newTestSim(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	sig := userSig(t, testAppID, testKey, "admin", sigLife)
	q := query(t, func(v url.Values) { v.Set("usersig", sig) })
	recall(t, s, q, "a", "b", "1_1_1")
	recall(t, s, q, "a", "b", "bad")
	recall(t, s, query(t, func(v url.Values) { v.Set("usersig", sig+"x") }), "a", "b", "1_1_1")
	call(t, s, http.MethodGet, APIPath+"?"+q, "")
	if !strings.Contains(buf.String(), "error_code") {
		t.Fatalf("no answer was logged: %q", buf.String())
	}
	for _, secret := range []string{sig, testKey} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log holds a secret: %q", buf.String())
		}
	}
}
