package imsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// groupJSON is a group_msg_recall body.
func groupJSON(groupID, topicID string, seqs ...uint64) string {
	list := make([]map[string]uint64, len(seqs))
	for i, s := range seqs {
		list[i] = map[string]uint64{"MsgSeq": s}
	}
	m := map[string]any{"GroupId": groupID, "MsgSeqList": list}
	if topicID != "" {
		m["TopicId"] = topicID
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// groupCall sends one request to s.ServeHTTP and decodes the JSON answer.
func groupCall(t testing.TB, s *Sim, method, target, body string) groupResult {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d: %q", method, req.URL.Path, rec.Code, rec.Body.String())
	}
	var res groupResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, rec.Body.String())
	}
	if (res.ErrorCode == 0) != (res.ActionStatus == "OK") {
		t.Fatalf("ActionStatus %q with ErrorCode %d", res.ActionStatus, res.ErrorCode)
	}
	return res
}

// groupRecall recalls seqs of the group with a valid query.
func groupRecall(t testing.TB, s *Sim, groupID, topicID string, seqs ...uint64) groupResult {
	t.Helper()
	return groupCall(t, s, http.MethodPost, GroupRecallPath+"?"+query(t, nil), groupJSON(groupID, topicID, seqs...))
}

// retCodes returns the RetCodes in order.
func retCodes(res groupResult) []int {
	var out []int
	for _, r := range res.RecallRetList {
		out = append(out, r.RetCode)
	}
	return out
}

func mustCreate(t testing.TB, s *Sim, spec GroupSpec) {
	t.Helper()
	if err := s.CreateGroup(spec); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
}

// TestGroupCallChecks pins the call-level code of every check, row by row.
func TestGroupCallChecks(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, func(c *Config) { c.Admins = []string{"admin"} })
	mustCreate(t, s, GroupSpec{GroupID: "g", Messages: 10})
	mustCreate(t, s, GroupSpec{GroupID: "gone", Messages: 10})
	if err := s.DismissGroup("gone"); err != nil {
		t.Fatal(err)
	}
	s.ForceGroup("forced", codeGroupInternal, 0)
	elevenSeqs := groupJSON("g", "", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	tests := []struct {
		name   string
		method string // default POST
		path   string // default GroupRecallPath
		query  func(url.Values)
		body   string
		want   int
	}{
		{name: "ok", body: groupJSON("g", "", 1), want: codeOK},
		{name: "GET", method: http.MethodGet, body: groupJSON("g", "", 1), want: codeHTTPParse},
		{name: "other group command", path: groupServicePrefix + "group_msg_recal", body: groupJSON("g", "", 1), want: codeGroupBadCommand},
		{name: "no sdkappid", query: func(q url.Values) { q.Del("sdkappid") }, body: groupJSON("g", "", 1), want: codeNoSDKAppID},
		{name: "other app", query: func(q url.Values) { q.Set("sdkappid", "1400000002") }, body: groupJSON("g", "", 1), want: codeBadSDKAppID},
		{name: "random out of range", query: func(q url.Values) { q.Set("random", "4294967296") }, body: groupJSON("g", "", 1), want: codeHTTPParse},
		{name: "contenttype", query: func(q url.Values) { q.Set("contenttype", "JSON") }, body: groupJSON("g", "", 1), want: codeBadURLParam},
		{name: "bad usersig", query: func(q url.Values) { q.Set("usersig", "x") }, body: groupJSON("g", "", 1), want: codeSigIllegal},
		{name: "not an admin", query: func(q url.Values) {
			q.Set("identifier", "ops")
			q.Set("usersig", userSig(t, testAppID, testKey, "ops", sigLife))
		}, body: groupJSON("g", "", 1), want: codeGroupNoPermission},
		{name: "body not JSON", body: "{", want: codeGroupBadParam},
		{name: "body an array", body: "[]", want: codeGroupBadParam},
		{name: "no GroupId", body: `{"MsgSeqList":[{"MsgSeq":1}]}`, want: codeGroupBadParam},
		{name: "GroupId miscased", body: `{"groupid":"g","MsgSeqList":[{"MsgSeq":1}]}`, want: codeGroupBadParam},
		{name: "GroupId a number", body: `{"GroupId":1,"MsgSeqList":[{"MsgSeq":1}]}`, want: codeGroupBadParam},
		{name: "no MsgSeqList", body: `{"GroupId":"g"}`, want: codeGroupBadParam},
		{name: "empty MsgSeqList", body: `{"GroupId":"g","MsgSeqList":[]}`, want: codeGroupBadParam},
		{name: "eleven seqs", body: elevenSeqs, want: codeGroupBadParam},
		{name: "ten seqs", body: groupJSON("g", "", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), want: codeOK},
		{name: "MsgSeq 0", body: `{"GroupId":"g","MsgSeqList":[{"MsgSeq":0}]}`, want: codeGroupBadParam},
		{name: "MsgSeq negative", body: `{"GroupId":"g","MsgSeqList":[{"MsgSeq":-1}]}`, want: codeGroupBadParam},
		{name: "MsgSeq a string", body: `{"GroupId":"g","MsgSeqList":[{"MsgSeq":"1"}]}`, want: codeGroupBadParam},
		{name: "MsgSeq a fraction", body: `{"GroupId":"g","MsgSeqList":[{"MsgSeq":1.5}]}`, want: codeGroupBadParam},
		{name: "item not an object", body: `{"GroupId":"g","MsgSeqList":[1]}`, want: codeGroupBadParam},
		{name: "TopicId a number", body: `{"GroupId":"g","TopicId":7,"MsgSeqList":[{"MsgSeq":1}]}`, want: codeGroupBadParam},
		{name: "unknown fields ignored", body: `{"GroupId":"g","Reason":"spam","MsgSeqList":[{"MsgSeq":2,"x":1}]}`, want: codeOK},
		{name: "forced", body: groupJSON("forced", "", 1), want: codeGroupInternal},
		{name: "unknown group", body: groupJSON("nope", "", 1), want: codeGroupBadID},
		{name: "dismissed group", body: groupJSON("gone", "", 1), want: codeGroupGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = GroupRecallPath
			}
			res := groupCall(t, s, method, path+"?"+query(t, tt.query), tt.body)
			if res.ErrorCode != tt.want {
				t.Fatalf("ErrorCode = %d (%s), want %d", res.ErrorCode, res.ErrorInfo, tt.want)
			}
			if tt.want != codeOK && res.RecallRetList != nil {
				t.Errorf("a failed call lists RetCodes: %+v", res.RecallRetList)
			}
			if tt.want == codeOK && len(res.RecallRetList) == 0 {
				t.Errorf("a successful call lists no RetCode")
			}
		})
	}
}

// TestGroupRetCodes pins every per-seq RetCode: one call answers 0 for
// the call while its seqs fail each their own way.
func TestGroupRetCodes(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	mustCreate(t, s, GroupSpec{GroupID: "g", Messages: 6})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetGroupMessage("g", "", 2, GroupMsgUnrecallable))
	must(s.SetGroupMessage("g", "", 3, GroupMsgGone))
	must(s.SetGroupMessage("g", "", 4, GroupMsgRecalled))
	s.ForceGroupSeq("g", "", 5, codeGroupRecallDisabled, 1)

	res := groupRecall(t, s, "g", "", 1, 2, 3, 4, 5, 99, 6, 6)
	want := []groupRet{{1, 0}, {2, codeGroupNotRecallable}, {3, codeGroupMsgNotFound}, {4, codeGroupMsgNotFound},
		{5, codeGroupRecallDisabled}, {99, codeGroupMsgNotFound}, {6, 0}, {6, codeGroupMsgNotFound}}
	if res.ErrorCode != 0 || !reflect.DeepEqual(res.RecallRetList, want) {
		t.Fatalf("answer %d %+v, want 0 %+v", res.ErrorCode, res.RecallRetList, want)
	}
	if st := s.GroupMessageState("g", "", 5); st != GroupMsgPresent {
		t.Errorf("a forced seq is %v, want untouched (present)", st)
	}
	if got := retCodes(groupRecall(t, s, "g", "", 5)); !reflect.DeepEqual(got, []int{0}) {
		t.Errorf("once the force is used up seq 5 answers %v, want [0]", got)
	}

	t.Run("past the window", func(t *testing.T) {
		mustCreate(t, s, GroupSpec{GroupID: "old", Messages: 2, SentAt: clock.Now().Add(-DefaultGroupRecallWindow - time.Second)})
		seq := s.PostGroupMessage("old", "", clock.Now().Add(-time.Hour))
		if got := retCodes(groupRecall(t, s, "old", "", 1, seq)); !reflect.DeepEqual(got, []int{codeGroupPastWindow, 0}) {
			t.Errorf("RetCodes %v, want [10031 0]", got)
		}
		s.SetGroupSettings(GroupSettings{Window: jsonDuration(time.Minute)})
		defer s.SetGroupSettings(GroupSettings{})
		if got := retCodes(groupRecall(t, s, "old", "", 2)); !reflect.DeepEqual(got, []int{codeGroupPastWindow}) {
			t.Errorf("with a 1m window: %v, want [10031]", got)
		}
	})
	t.Run("type forbids recall", func(t *testing.T) {
		mustCreate(t, s, GroupSpec{GroupID: "av", Messages: 2, TypeForbidsRecall: true})
		if got := retCodes(groupRecall(t, s, "av", "", 1, 2)); !reflect.DeepEqual(got, []int{codeGroupTypeNoRecall, codeGroupTypeNoRecall}) {
			t.Errorf("RetCodes %v, want [10033 10033]", got)
		}
	})
	t.Run("app has recall disabled", func(t *testing.T) {
		mustCreate(t, s, GroupSpec{GroupID: "d", Messages: 2})
		s.SetGroupSettings(GroupSettings{RecallDisabled: true})
		defer s.SetGroupSettings(GroupSettings{})
		if got := retCodes(groupRecall(t, s, "d", "", 1)); !reflect.DeepEqual(got, []int{codeGroupRecallDisabled}) {
			t.Errorf("RetCodes %v, want [10041]", got)
		}
		if st := s.GroupMessageState("d", "", 1); st != GroupMsgPresent {
			t.Errorf("message is %v after 10041, want present", st)
		}
	})
}

func TestGroupRecalledAgain(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		again RecalledAgain
		want  int
	}{{RecalledAgainNotFound, codeGroupMsgNotFound}, {RecalledAgainOK, codeOK}} {
		t.Run(fmt.Sprint(tt.want), func(t *testing.T) {
			s, _ := newTestSim(t, nil)
			s.SetGroupSettings(GroupSettings{RecalledAgain: tt.again})
			mustCreate(t, s, GroupSpec{GroupID: "g", Messages: 1})
			groupRecall(t, s, "g", "", 1)
			if got := retCodes(groupRecall(t, s, "g", "", 1)); !reflect.DeepEqual(got, []int{tt.want}) {
				t.Errorf("second recall: %v, want [%d]", got, tt.want)
			}
			if got := s.GroupFate("g", "", 1); !reflect.DeepEqual(got, []int{0, tt.want}) {
				t.Errorf("fate %v, want [0 %d]", got, tt.want)
			}
		})
	}
}

// TestGroupTopics: a topic has its own sequence, named by TopicId.
func TestGroupTopics(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	mustCreate(t, s, GroupSpec{GroupID: "c"})
	seq := s.PostGroupMessage("c", "c@TOPIC#_news", clock.Now())
	if got := retCodes(groupRecall(t, s, "c", "", seq)); !reflect.DeepEqual(got, []int{codeGroupMsgNotFound}) {
		t.Errorf("the seq without TopicId: %v, want [10030]", got)
	}
	if got := retCodes(groupRecall(t, s, "c", "c@TOPIC#_news", seq)); !reflect.DeepEqual(got, []int{0}) {
		t.Errorf("the seq with its TopicId: %v, want [0]", got)
	}
}

// TestGroupOwnCap: the group API has a cap of its own, answering 10006,
// which does not touch the one-to-one API's, and its own statistics.
func TestGroupOwnCap(t *testing.T) {
	t.Parallel()
	const capacity = 5
	s, _ := newTestSim(t, func(c *Config) { c.Cap = capacity }) // a clock that stands still: one window
	mustCreate(t, s, GroupSpec{GroupID: "g", Messages: 100})
	q := query(t, nil)
	for i := range capacity {
		if code := recall(t, s, q, "a", "b", fmt.Sprintf("%d_1_1", i+1)); code != codeOK {
			t.Fatalf("one-to-one call %d: %d", i, code)
		}
	}
	var codes []int
	for i := range capacity + 2 {
		codes = append(codes, groupRecall(t, s, "g", "", uint64(i+1)).ErrorCode)
	}
	want := []int{0, 0, 0, 0, 0, codeGroupTooFrequent, codeGroupTooFrequent}
	if !reflect.DeepEqual(codes, want) {
		t.Errorf("group calls after the one-to-one cap was reached: %v, want %v", codes, want)
	}
	gs, st := s.GroupStats(), s.Stats()
	if gs.MaxInAnyWindow != capacity+2 || gs.Counted != capacity+2 || gs.Rejected60007 != 2 || gs.ByCode[codeGroupTooFrequent] != 2 {
		t.Errorf("group stats %+v", gs)
	}
	if gs.Seqs != capacity || gs.ByRetCode[0] != capacity || len(gs.PerSecond) != 1 || gs.PerSecond[0] != capacity+2 {
		t.Errorf("group seq stats: seqs %d by_ret_code %v per_second %v", gs.Seqs, gs.ByRetCode, gs.PerSecond)
	}
	if st.Counted != capacity || st.Calls != capacity {
		t.Errorf("one-to-one stats counted %d calls %d, want %d: the group calls leaked in", st.Counted, st.Calls, capacity)
	}
	s.ResetStats()
	if gs := s.GroupStats(); gs.Calls != 0 || gs.Seqs != 0 || gs.Counted != 0 {
		t.Errorf("after ResetStats: %+v", gs)
	}
	if got := retCodes(groupRecall(t, s, "g", "", 1)); !reflect.DeepEqual(got, []int{codeGroupMsgNotFound}) {
		t.Errorf("ResetStats forgot the store: %v", got)
	}
}

// TestGroupFaults: the faults of the one-to-one API reach this one too.
func TestGroupFaults(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	mustCreate(t, s, GroupSpec{GroupID: "g", Messages: 3})

	s.SetFaults(Faults{FailRate: 1})
	if res := groupRecall(t, s, "g", "", 1); res.ErrorCode != codeGroupInternal {
		t.Errorf("FailRate 1: %d, want 10002", res.ErrorCode)
	}
	if st := s.GroupMessageState("g", "", 1); st != GroupMsgPresent {
		t.Errorf("after 10002 the message is %v, want present", st)
	}
	s.SetFaults(Faults{CodeUntil: clock.Now().Add(time.Second), Code: codeGroupTooFrequent})
	if res := groupRecall(t, s, "g", "", 1); res.ErrorCode != codeGroupTooFrequent {
		t.Errorf("CodeUntil: %d, want the injected 10006", res.ErrorCode)
	}
	if got := s.GroupFate("g", "", 1); !reflect.DeepEqual(got, []int{codeGroupInternal, codeGroupTooFrequent}) {
		t.Errorf("fate %v: call-level codes belong in every named seq's fate", got)
	}

	s.SetFaults(Faults{OutageUntil: clock.Now().Add(time.Second)})
	req := httptest.NewRequest(http.MethodPost, GroupRecallPath+"?"+query(t, nil), strings.NewReader(groupJSON("g", "", 2)))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadGateway {
		t.Errorf("outage: HTTP %d, want 502", rec.Code)
	}
	if gs := s.GroupStats(); gs.HTTPErrors != 1 {
		t.Errorf("outage not counted: %+v", gs)
	}
	s.SetFaults(Faults{})
	if got := retCodes(groupRecall(t, s, "g", "", 1, 2)); !reflect.DeepEqual(got, []int{0, 0}) {
		t.Errorf("after the faults: %v, want [0 0]", got)
	}
}

// TestSendGroupIsRecallable: a message SendGroup "sent" can be recalled.
func TestSendGroupIsRecallable(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	m, err := s.SendGroup(context.Background(), "spammer", "@TGS#lobby", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := retCodes(groupRecall(t, s, "@TGS#lobby", "", m.MsgSeq, m.MsgSeq+1)); !reflect.DeepEqual(got, []int{0, codeGroupMsgNotFound}) {
		t.Errorf("RetCodes %v, want [0 10030]", got)
	}
	s.Reset()
	if res := groupRecall(t, s, "@TGS#lobby", "", m.MsgSeq); res.ErrorCode != codeGroupBadID {
		t.Errorf("after Reset: %d, want 10015", res.ErrorCode)
	}
}

// TestSendGroupNumbersEachGroupApart: as in Tencent, each group numbers
// its messages 1, 2, 3... apart from the others and from one-to-one
// sends; a group created with messages goes on after its last; the
// callback carries the MsgSeq the message got, and each one recalls.
func TestSendGroupNumbersEachGroupApart(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	var seqs []float64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			t.Errorf("callback body: %v", err)
		}
		if seq, ok := b["MsgSeq"].(float64); ok && b["CallbackCommand"] == "Group.CallbackAfterSendMsg" {
			seqs = append(seqs, seq) // the sends below post one at a time
		}
		fmt.Fprint(w, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
	}))
	defer srv.Close()
	s.SetCallback(CallbackConfig{URL: srv.URL})
	if err := s.CreateGroup(GroupSpec{GroupID: "@TGS#old", Messages: 5}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	send := func(group string) uint64 {
		t.Helper()
		m, err := s.SendGroup(ctx, "spammer", group, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return m.MsgSeq
	}
	var got []uint64
	for _, group := range []string{"@TGS#a", "@TGS#b", "@TGS#a", "@TGS#old", "@TGS#b", "@TGS#a"} {
		if _, err := s.Send(ctx, "spammer", "victim", clock.Now()); err != nil {
			t.Fatal(err)
		}
		got = append(got, send(group))
	}
	if want := []uint64{1, 1, 2, 6, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("MsgSeqs %v, want %v: each group's own sequence", got, want)
	}
	if want := []float64{1, 1, 2, 6, 2, 3}; !reflect.DeepEqual(seqs, want) {
		t.Fatalf("callbacks' MsgSeqs %v, want %v", seqs, want)
	}
	if c := retCodes(groupRecall(t, s, "@TGS#a", "", 1, 2, 3, 4)); !reflect.DeepEqual(c, []int{0, 0, 0, codeGroupMsgNotFound}) {
		t.Fatalf("recall of @TGS#a 1-4: %v, want [0 0 0 10030]", c)
	}
	if c := retCodes(groupRecall(t, s, "@TGS#old", "", 6, 7)); !reflect.DeepEqual(c, []int{0, codeGroupMsgNotFound}) {
		t.Fatalf("recall of @TGS#old 6-7: %v, want [0 10030]", c)
	}
}

// TestSendTopicPostsItsTopicId: a topic's message is numbered in the
// topic's own sequence, its callback carries the TopicId (the community's
// own message's callback has none), and recalling it in its topic leaves
// the community's message of the same MsgSeq alone.
func TestSendTopicPostsItsTopicId(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			t.Errorf("callback body: %v", err)
		}
		bodies = append(bodies, b) // the sends below post one at a time
		fmt.Fprint(w, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
	}))
	defer srv.Close()
	s.SetCallback(CallbackConfig{URL: srv.URL})
	const group, topic = "@TGS#_@TGS#cQVLVHIM62CJ", "@TGS#_@TGS#cQVLVHIM62CJ@TOPIC#_spam"
	ctx := context.Background()
	own, err := s.SendGroup(ctx, "member", group, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.SendTopic(ctx, "spammer", group, topic, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if own.MsgSeq != 1 || m.MsgSeq != 1 || m.TopicID != topic {
		t.Fatalf("sent %+v and %+v, want MsgSeq 1 in each sequence", own, m)
	}
	if len(bodies) != 2 || bodies[0]["TopicId"] != nil || bodies[1]["TopicId"] != topic || bodies[1]["GroupId"] != group {
		t.Fatalf("callbacks %v, want no TopicId, then TopicId %q", bodies, topic)
	}
	if got := retCodes(groupRecall(t, s, group, topic, m.MsgSeq)); !reflect.DeepEqual(got, []int{0}) {
		t.Fatalf("recall in the topic: %v, want [0]", got)
	}
	if f := s.GroupFate(group, "", own.MsgSeq); f != nil {
		t.Fatalf("the community's own message was touched: %v", f)
	}
	if _, err := s.SendTopic(ctx, "spammer", group, "", clock.Now()); err == nil {
		t.Fatal("SendTopic without a TopicId: no error")
	}
}

// TestGroupControlEndpoints drives the group through /sim/group/ over HTTP.
func TestGroupControlEndpoints(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, nil)
	srv := newHTTPServer(t, s)
	post := func(path, body string, want int) []byte {
		t.Helper()
		r := httpDo(t, http.MethodPost, srv.URL+groupControlPrefix+path, body)
		if r.status != want {
			t.Fatalf("POST %s %s: HTTP %d %s, want %d", path, body, r.status, r.body, want)
		}
		return r.body
	}
	post("create", `{"GroupId":"g","Messages":3,"Age":"1h"}`, http.StatusOK)
	var posted struct{ MsgSeq uint64 }
	if err := json.Unmarshal(post("post", `{"GroupId":"g"}`, http.StatusOK), &posted); err != nil || posted.MsgSeq != 4 {
		t.Fatalf("post: %+v %v, want MsgSeq 4", posted, err)
	}
	post("message", `{"GroupId":"g","MsgSeq":2,"State":"unrecallable"}`, http.StatusOK)
	post("message", `{"GroupId":"g","MsgSeq":2,"State":"lost"}`, http.StatusBadRequest)
	post("message", `{"GroupId":"nope","MsgSeq":2,"State":"gone"}`, http.StatusNotFound)
	post("force", `{"GroupId":"g","MsgSeq":3,"Code":10031,"Times":1}`, http.StatusOK)
	post("settings", `{"RecalledAgain":"ok"}`, http.StatusOK)
	post("settings", `{"RecalledAgain":"maybe"}`, http.StatusBadRequest)
	post("create", `{"Messages":3}`, http.StatusBadRequest)

	if got := retCodes(groupRecall(t, s, "g", "", 1, 2, 3, 4, 1)); !reflect.DeepEqual(got, []int{0, codeGroupNotRecallable, codeGroupPastWindow, 0, 0}) {
		t.Errorf("RetCodes %v", got)
	}
	post("force", `{"GroupId":"g","Code":10002,"Times":1}`, http.StatusOK)
	if res := groupRecall(t, s, "g", "", 1); res.ErrorCode != codeGroupInternal {
		t.Errorf("forced call: %d, want 10002", res.ErrorCode)
	}
	post("dismiss", `{"GroupId":"g"}`, http.StatusOK)
	if res := groupRecall(t, s, "g", "", 1); res.ErrorCode != codeGroupGone {
		t.Errorf("dismissed: %d, want 10010", res.ErrorCode)
	}

	r := httpDo(t, http.MethodGet, srv.URL+groupControlPrefix+"fate?group=g&seq=1", "")
	var fate struct{ Codes []int }
	if err := json.Unmarshal(r.body, &fate); err != nil || !reflect.DeepEqual(fate.Codes, []int{0, 0, codeGroupInternal, codeGroupGone}) {
		t.Errorf("fate: %s (%v)", r.body, err)
	}
	r = httpDo(t, http.MethodGet, srv.URL+groupControlPrefix+"stats", "")
	var st map[string]any
	if err := json.Unmarshal(r.body, &st); err != nil || st["calls"] != 3.0 || st["seqs"] != 5.0 || st["max_in_any_window"] == nil {
		t.Errorf("stats: %s (%v)", r.body, err)
	}
	r = httpDo(t, http.MethodGet, srv.URL+groupControlPrefix+"settings", "")
	if !strings.Contains(string(r.body), `"RecalledAgain":"ok"`) {
		t.Errorf("settings: %s", r.body)
	}
	if r := httpDo(t, http.MethodGet, srv.URL+groupControlPrefix+"nothing", ""); r.status != http.StatusNotFound {
		t.Errorf("unknown endpoint: HTTP %d", r.status)
	}
	if r := httpDo(t, http.MethodPost, srv.URL+"/sim/reset", ""); r.status != http.StatusOK {
		t.Fatalf("reset: HTTP %d", r.status)
	}
	if res := groupRecall(t, s, "g", "", 1); res.ErrorCode != codeGroupBadID {
		t.Errorf("after /sim/reset: %d, want 10015", res.ErrorCode)
	}
}
