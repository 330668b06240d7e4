package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/tasks"
)

func TestFailedSendIsNeverIndexed(t *testing.T) { eachFront(t, testFailedSendIsNeverIndexed) }

func testFailedSendIsNeverIndexed(t *testing.T, front string) {
	e := newFrontEnv(t, front)
	now := time.Now()
	for _, result := range []int{1, 20003, -1} {
		w := e.post(t, callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now), c2cBody("spammer", "victim", 7, 8, now.Unix(), result))
		if w.Code != http.StatusOK || w.Body.String() != string(okAnswer) {
			t.Fatalf("SendMsgResult %d: answered %d %s, want Tencent's OK", result, w.Code, w.Body)
		}
	}
	if ks := e.keys(t); len(ks) != 0 {
		t.Fatalf("failed sends were written to Redis: %v", ks)
	}
	if got := e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: now.Add(-time.Hour)}); len(got) != 0 {
		t.Fatalf("a query found failed sends: %v", got)
	}
	if st := e.s.Stats(); st.FailedSends != 3 || st.IndexedC2C != 0 {
		t.Fatalf("stats %+v, want 3 failed sends and nothing indexed", st)
	}
	// The same message, sent: indexed.
	e.postC2C(t, "spammer", "victim", 7, now)
	if got := e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: now.Add(-time.Hour)}); len(got) != 1 {
		t.Fatalf("the sent message: query found %d, want 1", len(got))
	}
}

func TestForeignSDKAppIDIsRefused(t *testing.T) { eachFront(t, testForeignSDKAppIDIsRefused) }

func testForeignSDKAppIDIsRefused(t *testing.T, front string) {
	e := newFrontEnv(t, front)
	now := time.Now()
	for _, app := range []string{"1400000001", "abc", ""} {
		target := strings.Replace(callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now), "SdkAppid=1400000000", "SdkAppid="+app, 1)
		w := e.post(t, target, c2cBody("spammer", "victim", 1, 2, now.Unix(), 0))
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"ActionStatus":"FAIL"`) {
			t.Fatalf("SdkAppid %q: answered %d %s, want 403 FAIL", app, w.Code, w.Body)
		}
	}
	if ks := e.keys(t); len(ks) != 0 {
		t.Fatalf("a foreign callback was indexed: %v", ks)
	}
	if n := e.s.Stats().Refused[RefusedApp]; n != 3 {
		t.Fatalf("refused for the SdkAppid: %d, want 3", n)
	}
}

func TestAuthentication(t *testing.T) { eachFront(t, testAuthentication) }

func testAuthentication(t *testing.T, front string) {
	now := time.Now()
	body := c2cBody("a", "b", 1, 2, now.Unix(), 0)
	good := callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now)
	tests := []struct {
		name   string
		edit   func(*Config, *IndexConfig)
		target string
		remote string
		method string
		want   int
		reason string
	}{
		{name: "signed by the token", target: good, want: http.StatusOK},
		{name: "no Sign", target: callbackURL(CallbackPath, testApp, CommandC2CAfterSend, "", now), want: http.StatusForbidden, reason: RefusedSign},
		{name: "signed by another token", target: callbackURL(CallbackPath, testApp, CommandC2CAfterSend, "other-token", now), want: http.StatusForbidden, reason: RefusedSign},
		{name: "RequestTime too old", target: callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now.Add(-10*time.Minute)), want: http.StatusForbidden, reason: RefusedSign},
		{name: "RequestTime too far ahead", target: callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now.Add(10*time.Minute)), want: http.StatusForbidden, reason: RefusedSign},
		{name: "wrong path", target: strings.Replace(good, CallbackPath, "/callbacks", 1), want: http.StatusNotFound, reason: RefusedPath},
		{name: "GET", target: good, method: http.MethodGet, want: http.StatusMethodNotAllowed, reason: RefusedMethod},
		{
			name: "secret path segment", target: strings.Replace(good, CallbackPath, CallbackPath+"/s3cr3t-9f8e", 1), want: http.StatusOK,
			edit: func(c *Config, _ *IndexConfig) { c.Auth.PathSecret = "s3cr3t-9f8e" },
		},
		{
			name: "secret path segment missing", target: good, want: http.StatusNotFound, reason: RefusedPath,
			edit: func(c *Config, _ *IndexConfig) { c.Auth.PathSecret = "s3cr3t-9f8e" },
		},
		{
			name: "allowed address", target: good, remote: "10.1.2.3:5000", want: http.StatusOK,
			edit: func(c *Config, _ *IndexConfig) { c.Auth.AllowIPs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} },
		},
		{
			name: "address not allowed", target: good, remote: "192.0.2.1:5000", want: http.StatusForbidden, reason: RefusedIP,
			edit: func(c *Config, _ *IndexConfig) { c.Auth.AllowIPs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var edits []func(*Config, *IndexConfig)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			e := newFrontEnv(t, front, edits...)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			r := newRequest(method, tc.target, body)
			if tc.remote != "" {
				r.RemoteAddr = tc.remote
			}
			w := e.serve(t, r)
			if w.Code != tc.want {
				t.Fatalf("answered %d %s, want %d", w.Code, w.Body, tc.want)
			}
			indexed := len(e.keys(t)) > 0
			if indexed != (tc.want == http.StatusOK) {
				t.Fatalf("indexed = %v with answer %d", indexed, w.Code)
			}
			if tc.reason != "" && e.s.Stats().Refused[tc.reason] != 1 {
				t.Fatalf("refusals %v, want one for %q", e.s.Stats().Refused, tc.reason)
			}
			if strings.Contains(w.Body.String(), testToken) {
				t.Fatalf("the answer shows the token: %s", w.Body)
			}
		})
	}
}

func TestNoAuthenticationIsAConfigError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := New(Config{Index: e.ix, Auth: Auth{SDKAppIDs: []uint64{testApp}}})
	if err == nil || !strings.Contains(err.Error(), "no authentication") {
		t.Fatalf("New without token, allowlist or path secret: %v, want a refusal to run open", err)
	}
}

func TestBadBodiesAreRefusedAndCounted(t *testing.T) { eachFront(t, testBadBodiesAreRefusedAndCounted) }

func testBadBodiesAreRefusedAndCounted(t *testing.T, front string) {
	e := newFrontEnv(t, front, func(c *Config, _ *IndexConfig) { c.MaxBodyBytes = 2048 })
	now := time.Now()
	target := callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now)
	for name, body := range map[string]string{
		"not JSON":        "{",
		"no MsgKey":       `{"From_Account":"a","To_Account":"b","MsgTime":1}`,
		"no To_Account":   `{"From_Account":"a","MsgKey":"1_2_3","MsgTime":3}`,
		"MsgSeq a string": `{"From_Account":"a","To_Account":"b","MsgKey":"1_2_3","MsgSeq":"1"}`,
		"other command":   `{"CallbackCommand":"Group.CallbackAfterSendMsg","From_Account":"a","To_Account":"b","MsgKey":"1_2_3"}`,
	} {
		if w := e.post(t, target, body); w.Code != http.StatusBadRequest {
			t.Errorf("%s: answered %d %s, want 400", name, w.Code, w.Body)
		}
	}
	if w := e.post(t, target, strings.Repeat(" ", 4096)+c2cBody("a", "b", 1, 2, now.Unix(), 0)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit answered %d, want 413", w.Code)
	}
	if ks := e.keys(t); len(ks) != 0 {
		t.Fatalf("a bad callback was indexed: %v", ks)
	}
	var st Stats
	if w := e.serve(t, newRequest(http.MethodGet, "/stats", "")); w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &st) != nil {
		t.Fatalf("GET /stats: %d %s", w.Code, w.Body)
	}
	if st.Refused[RefusedBody] != 5 || st.Refused[RefusedTooLong] != 1 {
		t.Fatalf("refusals %v, want 5 for the body and 1 too large", st.Refused)
	}
}

func TestOtherCallbacksAreAnsweredOKAndIgnored(t *testing.T) {
	t.Parallel()
	eachFront(t, testOtherCallbacksAreAnsweredOKAndIgnored)
}

func testOtherCallbacksAreAnsweredOKAndIgnored(t *testing.T, front string) {
	e := newFrontEnv(t, front)
	w := e.post(t, callbackURL(CallbackPath, testApp, "C2C.CallbackBeforeSendMsg", testToken, time.Now()), `{"whatever":1}`)
	if w.Code != http.StatusOK || len(e.keys(t)) != 0 || e.s.Stats().Ignored != 1 {
		t.Fatalf("answered %d, keys %v, stats %+v", w.Code, e.keys(t), e.s.Stats())
	}
}

func TestSenderQuerySelectsExactlyThatSendersMessagesInTheWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now().Truncate(time.Second)
	type sent struct {
		from, to, group string
		ago             time.Duration
	}
	var all []sent
	for i := range 30 {
		all = append(all,
			sent{from: "spammer", to: fmt.Sprintf("victim%d", i%4), ago: time.Duration(i) * 20 * time.Minute}, // 0 .. 9h40m ago
			sent{from: "spammer", group: fmt.Sprintf("@TGS#grp%d", i%3), ago: time.Duration(i) * 20 * time.Minute},
			sent{from: "spammer2", to: "victim0", ago: time.Duration(i) * 10 * time.Minute},
			sent{from: "spam", to: "victim1", ago: time.Duration(i) * 10 * time.Minute}, // a prefix of the sender
		)
	}
	for i, s := range all {
		if s.group != "" {
			e.postGroup(t, s.from, s.group, uint64(100+i), now.Add(-s.ago))
		} else {
			e.postC2C(t, s.from, s.to, uint64(100+i), now.Add(-s.ago))
		}
	}
	since, until := now.Add(-6*time.Hour), now.Add(-time.Hour)
	for _, to := range []string{"", "victim2"} {
		var want []string
		for i, s := range all {
			if s.from != "spammer" || s.ago > 6*time.Hour || s.ago < time.Hour || (to != "" && s.to != to) {
				continue
			}
			at := now.Add(-s.ago).Unix()
			if s.group != "" {
				want = append(want, fmt.Sprintf("group %s %d %d", s.group, 100+i, at))
			} else {
				want = append(want, fmt.Sprintf("c2c %s %d_%d_%d %d", s.to, 100+i, 1100+i, at, at))
			}
		}
		var got []string
		for _, m := range e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: since, Until: until, To: to}) {
			if m.From != "spammer" {
				t.Fatalf("a message of %q", m.From)
			}
			if m.Kind == Group {
				got = append(got, fmt.Sprintf("group %s %d %d", m.GroupID, m.MsgSeq, m.Time))
			} else {
				got = append(got, fmt.Sprintf("c2c %s %s %d", m.To, m.MsgKey, m.Time))
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Fatalf("--to %q: got %d messages\n%v\nwant %d\n%v", to, len(got), got, len(want), want)
		}
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	t.Run("keys expire a bucket after the retention", func(t *testing.T) {
		e := newEnv(t, func(_ *Config, ic *IndexConfig) { ic.Retention, ic.Bucket = time.Second, time.Second })
		now := time.Now()
		e.postC2C(t, "spammer", "victim", 1, now)
		e.postGroup(t, "spammer", "grp", 2, now)
		if n := len(e.keys(t)); n == 0 {
			t.Fatal("nothing was indexed")
		}
		ctx := context.Background()
		for _, k := range e.keys(t) {
			ttl, err := e.rdb.TTL(ctx, k).Result()
			if err != nil || ttl <= 0 || ttl > 2*time.Second {
				t.Fatalf("TTL of %s: %v %v, want at most Bucket+Retention", k, ttl, err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(e.keys(t)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("keys still there 5 s later: %v", e.keys(t))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("messages past the retention are neither kept nor returned", func(t *testing.T) {
		clock := time.Now()
		e := newEnv(t, func(_ *Config, ic *IndexConfig) {
			ic.Retention, ic.Bucket = 24*time.Hour, time.Hour
			ic.Now = func() time.Time { return clock }
		})
		e.postC2C(t, "spammer", "victim", 1, clock.Add(-26*time.Hour)) // its bucket expired already
		if ks := e.keys(t); len(ks) != 0 {
			t.Fatalf("a message older than retention+bucket was kept: %v", ks)
		}
		e.postC2C(t, "spammer", "victim", 2, clock.Add(-23*time.Hour))
		if got := e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: clock.Add(-48 * time.Hour)}); len(got) != 1 {
			t.Fatalf("within retention: %d messages, want 1", len(got))
		}
		clock = clock.Add(2 * time.Hour) // the message is now 25 h old; its key may live on until its bucket expires
		if got := e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: clock.Add(-48 * time.Hour)}); len(got) != 0 {
			t.Fatalf("past retention: %v, want nothing", got)
		}
	})
}

func TestDuplicateCallbacksAreReportedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	e.postC2C(t, "spammer", "victim", 5, now)
	e.postC2C(t, "spammer", "victim", 5, now)
	if got := e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: now.Add(-time.Minute)}); len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
}

// TestTopicMessagesKeepTheirTopic: each topic of a community numbers its
// messages apart, so the sender's messages with one MsgSeq in the
// community and in two of its topics are three messages, each kept with
// its TopicId (and a repeated callback is still one); a bad TopicId is
// refused and names the field.
func TestTopicMessagesKeepTheirTopic(t *testing.T) { eachFront(t, testTopicMessagesKeepTheirTopic) }

func testTopicMessagesKeepTheirTopic(t *testing.T, front string) {
	e := newFrontEnv(t, front)
	const group, a, b = "@TGS#_@TGS#cQVLVHIM62CJ", "@TGS#_@TGS#cQVLVHIM62CJ@TOPIC#_TestTopic", "@TOPIC#_other"
	now := time.Now()
	target := callbackURL(CallbackPath, testApp, CommandGroupAfterSend, testToken, now)
	for _, topic := range []string{"", a, b, a} {
		if w := e.post(t, target, topicBody("spammer", group, topic, 5, now.Unix())); w.Code != http.StatusOK {
			t.Fatalf("topic %q: answered %d %s", topic, w.Code, w.Body)
		}
	}
	var got []string
	for _, m := range e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: now.Add(-time.Minute)}) {
		got = append(got, fmt.Sprintf("%s|%s|%d", m.GroupID, m.TopicID, m.MsgSeq))
	}
	want := []string{group + "||5", group + "|" + a + "|5", group + "|" + b + "|5"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("query: %q, want %q", got, want)
	}
	for name, topic := range map[string]string{
		"too long": strings.Repeat("t", tasks.MaxTopicIDLen+1), "a newline": a + "\n", "a leading space": " " + a,
	} {
		w := e.post(t, target, topicBody("spammer", group, topic, 6, now.Unix()))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "TopicId") {
			t.Errorf("TopicId with %s: answered %d %s, want 400 naming TopicId", name, w.Code, w.Body)
		}
	}
	if n := len(e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: now.Add(-time.Minute)})); n != 3 {
		t.Fatalf("%d messages after the bad callbacks, want the 3", n)
	}
}

// TestIdentifiersARecallCannotTakeAreRefused: the capture checks each
// identifier of a callback as a recall task does (tasks.IdentifierFault),
// so a message no recall could name is refused at the door, with an answer
// that names the field and the rule, rather than indexed and rejected by a
// --sender campaign later; invalid UTF-8 is refused, not replaced. What a
// task takes is indexed as it came, up to the task's own limits.
func TestIdentifiersARecallCannotTakeAreRefused(t *testing.T) {
	eachFront(t, testIdentifiersARecallCannotTakeAreRefused)
}

func testIdentifiersARecallCannotTakeAreRefused(t *testing.T, front string) {
	const secret = "s3cr3t-path-41c7"
	var logs logtest.Buffer
	e := newFrontEnv(t, front, func(c *Config, _ *IndexConfig) {
		c.Auth.PathSecret = secret
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	now := time.Now()
	// c2c and group are bodies whose identifiers are given as the JSON
	// text between the quotes: escapes and raw bytes reach the reader as
	// written.
	c2c := func(from, to, key string) (string, string) {
		return CommandC2CAfterSend, fmt.Sprintf(`{"From_Account":"%s","To_Account":"%s","MsgKey":"%s","MsgSeq":1,"MsgTime":%d}`, from, to, key, now.Unix())
	}
	group := func(from, groupID, topic string) (string, string) {
		return CommandGroupAfterSend, fmt.Sprintf(`{"From_Account":"%s","GroupId":"%s","TopicId":"%s","MsgSeq":7,"MsgTime":%d}`, from, groupID, topic, now.Unix())
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	refused := []struct {
		name          string
		command, body string
		want          string // in ErrorInfo
	}{
		{name: "From_Account over 32 bytes", want: "From_Account is 33 bytes long; at most 32 are allowed"},
		{name: "To_Account over 32 bytes", want: "To_Account is 40 bytes long; at most 32 are allowed"},
		{name: "MsgKey over 256 bytes", want: "MsgKey is 257 bytes long; at most 256 are allowed"},
		{name: "From_Account with a newline", want: "From_Account holds the control character U+000A at byte 4"},
		{name: "To_Account with a leading space", want: "To_Account starts or ends with a space"},
		{name: "MsgKey with a trailing no-break space", want: "MsgKey starts or ends with a space"},
		{name: "From_Account not UTF-8", want: "From_Account is not valid UTF-8"},
		{name: "To_Account with a lone surrogate", want: "To_Account is not valid UTF-8"},
		{name: "no MsgKey", want: "MsgKey is empty"},
		{name: "GroupId over 48 bytes", want: "GroupId is 49 bytes long; at most 48 are allowed"},
		{name: "GroupId with a trailing space", want: "GroupId starts or ends with a space"},
		{name: "group sender over 32 bytes", want: "From_Account is 33 bytes long; at most 32 are allowed"},
		{name: "TopicId not UTF-8", want: "TopicId is not valid UTF-8"},
	}
	bodies := [][2]string{
		pair(c2c(long(33), "victim", "1_2_3")),
		pair(c2c("spammer", long(40), "1_2_3")),
		pair(c2c("spammer", "victim", long(257))),
		pair(c2c(`spam\nmer`, "victim", "1_2_3")),
		pair(c2c("spammer", " victim", "1_2_3")),
		pair(c2c("spammer", "victim", `1_2_3\u00a0`)),
		pair(c2c("spam\xffmer", "victim", "1_2_3")),
		pair(c2c("spammer", `vic\ud800tim`, "1_2_3")),
		pair(c2c("spammer", "victim", "")),
		pair(group("spammer", "@TGS#"+long(44), "")),
		pair(group("spammer", "@TGS#lobby ", "")),
		pair(group(long(33), "@TGS#lobby", "")),
		pair(group("spammer", "@TGS#lobby", "@TGS#lobby@TOPIC#_\xfe")),
	}
	for i := range refused {
		refused[i].command, refused[i].body = bodies[i][0], bodies[i][1]
	}
	for _, tc := range refused {
		w := e.post(t, callbackURL(CallbackPath+"/"+secret, testApp, tc.command, testToken, now), tc.body)
		var a answer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Code != http.StatusBadRequest || a.ActionStatus != "FAIL" || !strings.Contains(a.ErrorInfo, tc.want) {
			t.Errorf("%s: answered %d %s, want 400 FAIL saying %q", tc.name, w.Code, w.Body, tc.want)
		}
	}
	if ks := e.keys(t); len(ks) != 0 {
		t.Fatalf("a message no recall could take was indexed: %v", ks)
	}
	if n := e.s.Stats().Refused[RefusedBody]; n != int64(len(refused)) {
		t.Errorf("refused for the body: %d, want %d", n, len(refused))
	}
	out := logs.String()
	if !strings.Contains(out, "From_Account is 33 bytes long") {
		t.Errorf("the log does not give the reason of a refusal:\n%s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "Sign=") {
		t.Errorf("the log holds the path secret or the Sign:\n%s", out)
	}

	// At the task's limits, and with escapes: indexed as it came.
	key := "k/" + long(254)
	for _, body := range [][2]string{
		pair(c2c(long(32), `\u7528\u6237_\ud83d\ude00`, `k\/`+long(254))),
		pair(group(long(32), "@TGS#"+long(43), "")),
	} {
		if w := e.post(t, callbackURL(CallbackPath+"/"+secret, testApp, body[0], testToken, now), body[1]); w.Code != http.StatusOK {
			t.Fatalf("%s: answered %d %s, want 200", body[1], w.Code, w.Body)
		}
	}
	var got []string
	for _, m := range e.query(t, Query{SDKAppID: testApp, From: long(32), Since: now.Add(-time.Minute)}) {
		got = append(got, m.To+"|"+m.MsgKey+"|"+m.GroupID)
	}
	want := []string{"用户_😀|" + key + "|", "||@TGS#" + long(43)}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("indexed %q, want %q", got, want)
	}
}

func pair(a, b string) [2]string { return [2]string{a, b} }

func TestRedisDownAnswers503AndCounts(t *testing.T) { eachFront(t, testRedisDownAnswers503AndCounts) }

func testRedisDownAnswers503AndCounts(t *testing.T, front string) {
	e := newFrontEnv(t, front, func(c *Config, _ *IndexConfig) { c.WriteTimeout = 2 * time.Second })
	if err := e.rdb.Do(context.Background(), "CLIENT", "PAUSE", "3000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w := e.post(t, callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now), c2cBody("a", "b", 1, 2, now.Unix(), 0))
	if w.Code != http.StatusServiceUnavailable || e.s.Stats().IndexErrors != 1 {
		t.Fatalf("with Redis paused: answered %d, stats %+v; want 503 and one index error", w.Code, e.s.Stats())
	}
}

// TestProxyHeadersFit: a callback that passed a proxy or a load balancer
// carries headers of theirs (traces, forwarded-for chains); a few KiB of
// them must not turn it into a refusal.
func TestProxyHeadersFit(t *testing.T) { eachFront(t, testProxyHeadersFit) }

func testProxyHeadersFit(t *testing.T, front string) {
	e := newFrontEnv(t, front)
	now := time.Now()
	r := newRequest(http.MethodPost, callbackURL(CallbackPath, testApp, CommandC2CAfterSend, testToken, now), c2cBody("a", "b", 1, 2, now.Unix(), 0))
	r.Header.Set("X-Trace-Context", strings.Repeat("0123456789abcdef", 6000/16))
	if w := e.serve(t, r); w.Code != http.StatusOK {
		t.Fatalf("a callback with 6 KB of proxy headers answered %d %s, want 200", w.Code, w.Body)
	}
}

// TestAnUnreadableRequestLeavesNoSecretInTheLog: a callback whose headers
// do not fit the read buffer (a proxy's big header) is answered 400 and
// logged at debug level. fasthttp's error quotes the request line, which
// holds CAPTURE_PATH_SECRET and a Sign that anyone may replay with another
// body for minutes: the log must hold neither.
func TestAnUnreadableRequestLeavesNoSecretInTheLog(t *testing.T) {
	const secret = "s3cr3t-path-9f8e7d"
	eachFront(t, func(t *testing.T, front string) {
		var logs logtest.Buffer
		e := newFrontEnv(t, front, func(c *Config, _ *IndexConfig) {
			c.Auth.PathSecret = secret
			c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		now := time.Now()
		target := callbackURL(CallbackPath+"/"+secret, testApp, CommandC2CAfterSend, testToken, now)
		r := newRequest(http.MethodPost, target, c2cBody("a", "b", 1, 2, now.Unix(), 0))
		r.Header.Set("X-Trace-Context", strings.Repeat("0123456789abcdef", 10000/16))
		w := e.serve(t, r)
		if front == fastFront && (w.Code < 400 || w.Code >= 500) {
			t.Errorf("answered %d %s, want a 4xx (the headers are over fasthttp's 8 KiB buffer)", w.Code, w.Body)
		}
		sign := target[strings.Index(target, "Sign=")+len("Sign="):]
		if i := strings.IndexByte(sign, '&'); i >= 0 {
			sign = sign[:i]
		}
		if out := logs.String(); strings.Contains(out, secret) || strings.Contains(out, sign) {
			t.Errorf("the log holds the path secret or the Sign:\n%s", out)
		}
	})
}
