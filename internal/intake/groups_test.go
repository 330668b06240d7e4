package intake

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/tasks"
)

// postGroup sends body to POST /v1/group-recalls with token.
func (e *env) postGroup(t *testing.T, token, body string) *http.Response {
	t.Helper()
	return e.do(t, http.MethodPost, "/v1/group-recalls", token, body).Result()
}

// groupJSON is a group recall request's JSON.
func groupJSON(group, topic string, seqs ...uint64) string {
	b, _ := json.Marshal(GroupRecallRequest{GroupID: group, TopicID: topic, MsgSeq: seqs})
	return string(b)
}

// groupTaskID is the task ID the intake gives a group recall of the test app.
func groupTaskID(group, topic string, seq uint64) string {
	return tasks.GroupRecall{SDKAppID: testApp, GroupID: group, TopicID: topic, MsgSeq: seq}.TaskID()
}

// groupQueued is what a group request that queues every seq answers.
func groupQueued(group, topic string, status string, seqs ...uint64) []Queued {
	out := make([]Queued, len(seqs))
	for i, seq := range seqs {
		out[i] = Queued{TaskID: groupTaskID(group, topic, seq), Status: status}
	}
	return out
}

func TestPostGroupRecallQueuesOneTaskPerSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"GroupId":"@TGS#2J4SZEAEL","TopicId":"@TGS#2J4SZEAEL@TOPIC#_news","MsgSeq":[101,102,105],"reason":"spam wave"}`
	rec := e.do(t, http.MethodPost, "/v1/group-recalls", opsToken.Secret, body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	const group, topic = "@TGS#2J4SZEAEL", "@TGS#2J4SZEAEL@TOPIC#_news"
	want := groupQueued(group, topic, StatusQueued, 101, 102, 105)
	if got := decodeAs[BatchResponse](t, rec); !slices.Equal(got.Recalls, want) {
		t.Fatalf("POST answered %+v, want %+v", got.Recalls, want)
	}
	if n := e.queued(t); n != 3 {
		t.Fatalf("%d tasks queued, want 3", n)
	}
	// Each task carries its seq, the group, the topic, who asked and why.
	for i, seq := range []uint64{101, 102, 105} {
		info, err := e.inspector(t).GetTaskInfo(urgentQ, want[i].TaskID)
		if err != nil {
			t.Fatal(err)
		}
		g, err := tasks.DecodeGroupRecall(info.Payload)
		if err != nil {
			t.Fatal(err)
		}
		wantG := tasks.GroupRecall{SDKAppID: testApp, GroupID: group, TopicID: topic, MsgSeq: seq,
			RequestedBy: opsToken.Name, Reason: "spam wave"}
		if info.Type != tasks.TypeGroupRecall || g != wantG {
			t.Fatalf("queued %s %+v, want %s %+v", info.Type, g, tasks.TypeGroupRecall, wantG)
		}
	}
}

func TestPostGroupRecallIsIdempotentPerSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const g = "@TGS#group1"
	if res := e.postGroup(t, opsToken.Secret, groupJSON(g, "", 1, 2)); res.StatusCode != http.StatusAccepted {
		t.Fatalf("first POST: %d", res.StatusCode)
	}
	// Again from another client: a new seq in the middle, one seq twice,
	// and a seq of the same number in a topic, which is another message.
	rec := e.do(t, http.MethodPost, "/v1/group-recalls", billingToken.Secret, groupJSON(g, "", 1, 3, 2, 3))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("second POST: %d %s", rec.Code, rec.Body)
	}
	want := []Queued{
		{groupTaskID(g, "", 1), StatusAlreadyQueued},
		{groupTaskID(g, "", 3), StatusQueued},
		{groupTaskID(g, "", 2), StatusAlreadyQueued},
		{groupTaskID(g, "", 3), StatusAlreadyQueued}, // earlier in the same request
	}
	if got := decodeAs[BatchResponse](t, rec); !slices.Equal(got.Recalls, want) {
		t.Fatalf("second POST answered %+v, want %+v", got.Recalls, want)
	}
	rec = e.do(t, http.MethodPost, "/v1/group-recalls", opsToken.Secret, groupJSON(g, g+"@TOPIC#_a", 1))
	if got := decodeAs[BatchResponse](t, rec); !slices.Equal(got.Recalls, groupQueued(g, g+"@TOPIC#_a", StatusQueued, 1)) {
		t.Fatalf("the same seq in a topic answered %+v, want queued", got.Recalls)
	}
	// A one-to-one recall never collides with a group recall.
	if rec := e.post(t, recallJSON(g, "x", "1")); decodeAs[Queued](t, rec).Status != StatusQueued {
		t.Fatalf("a one-to-one recall after group recalls: %s", rec.Body)
	}
	if n := e.queued(t); n != 5 {
		t.Fatalf("%d tasks queued, want 5", n)
	}
}

// A task the intake queues is the task enqueue.GroupRecall queues for the
// same message, who asked and why: same ID, type, queue, payload, retry
// budget, timeout and retention. The worker cannot tell the doors apart.
func TestGroupTaskIsWhatEnqueueQueues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	g := tasks.GroupRecall{GroupID: "@TGS#same", TopicID: "@TGS#same@TOPIC#_t", MsgSeq: 42,
		RequestedBy: opsToken.Name, Reason: "leaked data"}
	body := `{"GroupId":"@TGS#same","TopicId":"@TGS#same@TOPIC#_t","MsgSeq":[42],"reason":"leaked data"}`
	if res := e.postGroup(t, opsToken.Secret, body); res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", res.StatusCode)
	}
	insp := e.inspector(t)
	id := groupTaskID(g.GroupID, g.TopicID, g.MsgSeq)
	viaIntake, err := insp.GetTaskInfo(urgentQ, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := insp.DeleteTask(urgentQ, id); err != nil {
		t.Fatal(err)
	}
	c, err := enqueue.New(enqueue.Config{RedisURL: e.redis.URL, SDKAppID: testApp})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.GroupRecall(ctx, g)
	if err != nil || res.TaskID != id || res.AlreadyQueued {
		t.Fatalf("enqueue.GroupRecall: %+v, %v; want %s queued", res, err, id)
	}
	viaLibrary, err := insp.GetTaskInfo(urgentQ, id)
	if err != nil {
		t.Fatal(err)
	}
	type task struct {
		ID, Type, Queue, Payload string
		MaxRetry                 int
		Timeout, Retention       time.Duration
	}
	a := task{viaIntake.ID, viaIntake.Type, viaIntake.Queue, string(viaIntake.Payload), viaIntake.MaxRetry, viaIntake.Timeout, viaIntake.Retention}
	b := task{viaLibrary.ID, viaLibrary.Type, viaLibrary.Queue, string(viaLibrary.Payload), viaLibrary.MaxRetry, viaLibrary.Timeout, viaLibrary.Retention}
	if a != b {
		t.Fatalf("the intake queued\n%+v\nenqueue.GroupRecall queues\n%+v", a, b)
	}
}

func TestBadGroupRequestsNameTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []refusal{
		{"empty GroupId", `{"GroupId":"","MsgSeq":[1]}`,
			422, []string{"GroupId"}, []int{-1}, "the group recall is invalid; nothing was queued: GroupId: is empty: give the GroupId"},
		{"no GroupId", `{"MsgSeq":[1]}`, 422, []string{"GroupId"}, []int{-1}, "GroupId: is empty"},
		{"GroupId too long", groupJSON(strings.Repeat("g", 49), "", 1),
			422, []string{"GroupId"}, []int{-1}, "GroupId: is 49 bytes long; at most 48"},
		{"spaces around GroupId", groupJSON(" g ", "", 1),
			422, []string{"GroupId"}, []int{-1}, "GroupId: starts or ends with a space"},
		{"newline in TopicId", `{"GroupId":"g","TopicId":"t\n","MsgSeq":[1]}`,
			422, []string{"TopicId"}, []int{-1}, "TopicId: holds the control character U+000A"},
		{"TopicId too long", groupJSON("g", strings.Repeat("t", 129), 1),
			422, []string{"TopicId"}, []int{-1}, "TopicId: is 129 bytes long; at most 128"},
		{"reason too long", `{"GroupId":"g","MsgSeq":[1],"reason":"` + strings.Repeat("r", 513) + `"}`,
			422, []string{"reason"}, []int{-1}, "reason: is 513 bytes long"},
		{"invalid UTF-8 in GroupId", "{\"GroupId\":\"g\xff\",\"MsgSeq\":[1]}",
			422, []string{"GroupId"}, []int{-1}, "GroupId: is not valid UTF-8"},
		{"no MsgSeq", `{"GroupId":"g"}`, 422, []string{"MsgSeq"}, []int{-1}, "MsgSeq: is missing: give the MsgSeq of each message"},
		{"empty MsgSeq", `{"GroupId":"g","MsgSeq":[]}`, 422, []string{"MsgSeq"}, []int{-1}, "MsgSeq: is empty"},
		{"MsgSeq 0 and negative", `{"GroupId":"g","MsgSeq":[1,0,-3]}`,
			422, []string{"MsgSeq[1]", "MsgSeq[2]"}, []int{1, 2}, "MsgSeq[1]: must be at least 1: give the MsgSeq Tencent gave the message in the group (they start at 1) (and 1 more"},
		{"MsgSeq beyond uint64", `{"GroupId":"g","MsgSeq":[18446744073709551616]}`,
			422, []string{"MsgSeq[0]"}, []int{0}, "MsgSeq[0]: is larger than 18446744073709551615"},
		{"empty GroupId and a bad seq, both listed", `{"GroupId":"","MsgSeq":[0]}`,
			422, []string{"GroupId", "MsgSeq[0]"}, []int{-1, 0}, "GroupId: is empty"},
		{"MsgSeq not an array", `{"GroupId":"g","MsgSeq":101}`,
			400, []string{"MsgSeq"}, []int{-1}, "MsgSeq: must be an array of MsgSeq numbers, such as [101,102], even for one message: [101]"},
		{"a seq as a string", `{"GroupId":"g","MsgSeq":[1,"101"]}`,
			400, []string{"MsgSeq[1]"}, []int{1}, `MsgSeq[1]: must be a number, not a string: write 101, not "101"`},
		{"a seq with a fraction", `{"GroupId":"g","MsgSeq":[1.5]}`,
			400, []string{"MsgSeq[0]"}, []int{0}, "MsgSeq[0]: must be a whole number written in digits"},
		{"a seq with an exponent", `{"GroupId":"g","MsgSeq":[1e3]}`,
			400, []string{"MsgSeq[0]"}, []int{0}, "must be a whole number written in digits"},
		{"a seq as an object", `{"GroupId":"g","MsgSeq":[{"MsgSeq":1}]}`,
			400, []string{"MsgSeq[0]"}, []int{0}, "MsgSeq[0]: must be a number"},
		{"a null seq", `{"GroupId":"g","MsgSeq":[null]}`,
			400, []string{"MsgSeq[0]"}, []int{0}, "MsgSeq[0]: must be a number"},
		{"GroupId not a string", `{"GroupId":7,"MsgSeq":[1]}`,
			400, []string{"GroupId"}, []int{-1}, "GroupId: must be a string"},
		{"unknown field", `{"GroupId":"g","MsgSeq":[1],"MsgSeqList":[{"MsgSeq":1}]}`,
			400, []string{"MsgSeqList"}, []int{-1}, "MsgSeqList: is not a field of a group recall: use GroupId, MsgSeq, TopicId and reason"},
		{"miscased name says the right one", `{"GroupID":"g","MsgSeq":[1]}`,
			400, []string{"GroupID", "GroupId"}, []int{-1, -1}, "GroupID: is not a field of a group recall: names are case-sensitive: write GroupId"},
		{"requested_by is the token's, not the body's", `{"GroupId":"g","MsgSeq":[1],"requested_by":"x"}`,
			400, []string{"requested_by"}, []int{-1}, "requested_by: is not a field of a group recall"},
		{"GroupId twice", `{"GroupId":"g1","GroupId":"g2","MsgSeq":[1]}`,
			400, []string{"GroupId"}, []int{-1}, "GroupId: is given twice"},
		{"a field twice inside a seq", `{"GroupId":"g","MsgSeq":[1,{"a":1,"a":2}]}`,
			400, []string{"MsgSeq[1].a"}, []int{1}, "MsgSeq[1].a: is given twice"},
		{"a one-to-one recall sent here", recallJSON("a", "b", "k"),
			400, []string{"From_Account", "MsgKey", "To_Account", "GroupId", "MsgSeq"}, []int{-1, -1, -1, -1, -1}, "From_Account: is not a field of a group recall"},
		{"not JSON", `{"GroupId":"g",`, 400, nil, nil, "the body is not valid JSON"},
		{"two JSON values", groupJSON("g", "", 1) + groupJSON("g", "", 2), 400, nil, nil, "the body is not valid JSON"},
		{"an array", `[` + groupJSON("g", "", 1) + `]`, 400, nil, nil, `the body is not a JSON object: send {"GroupId":"...","MsgSeq":[1,2,3]`},
		{"empty body", ``, 400, nil, nil, "the body is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do(t, http.MethodPost, "/v1/group-recalls", opsToken.Secret, tc.body)
			e.checkRefused(t, rec, tc)
		})
	}
}

// A group request carries at most MaxBatch seqs, the bound of a batch of
// one-to-one recalls: 1000 unless configured.
func TestGroupSeqLimit(t *testing.T) {
	t.Parallel()
	seqs := func(n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(i + 1)
		}
		return out
	}
	e := newEnv(t, func(c *Config) { c.MaxBatch = 5 })
	rec := e.do(t, http.MethodPost, "/v1/group-recalls", opsToken.Secret, groupJSON("g", "", seqs(6)...))
	e.checkRefused(t, rec, refusal{status: http.StatusUnprocessableEntity, fields: []string{"MsgSeq"}, rows: []int{-1},
		message: "MsgSeq: has 6 MsgSeq; at most 5 are allowed in one request: split them"})
	if res := e.postGroup(t, opsToken.Secret, groupJSON("g", "", seqs(5)...)); res.StatusCode != http.StatusAccepted {
		t.Fatalf("5 seqs with a limit of 5: %d", res.StatusCode)
	}
	if n := e.queued(t); n != 5 {
		t.Fatalf("%d tasks queued, want 5", n)
	}

	d := newEnv(t)
	if res := d.postGroup(t, opsToken.Secret, groupJSON("g", "", seqs(DefaultMaxBatch+1)...)); res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("%d seqs by default: %d, want 422", DefaultMaxBatch+1, res.StatusCode)
	}
	rec = d.do(t, http.MethodPost, "/v1/group-recalls", opsToken.Secret, groupJSON("g", "", seqs(DefaultMaxBatch)...))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("%d seqs by default: %d (%.300s)", DefaultMaxBatch, rec.Code, rec.Body)
	}
	if got := decodeAs[BatchResponse](t, rec); !slices.Equal(got.Recalls, groupQueued("g", "", StatusQueued, seqs(DefaultMaxBatch)...)) {
		t.Fatal("a full request was not answered queued, seq by seq, in order")
	}
	if n := d.queued(t); n != DefaultMaxBatch {
		t.Fatalf("%d tasks queued, want %d", n, DefaultMaxBatch)
	}
}

func TestGroupBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 2048 })
	body := `{"GroupId":"g","MsgSeq":[1],"reason":"` + strings.Repeat(" ", 2048) + `"}`
	rec := e.do(t, http.MethodPost, "/v1/group-recalls", opsToken.Secret, body)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d-byte body: %d, want 413 (%.200s)", len(body), rec.Code, rec.Body)
	}
	if got := decodeAs[ErrorResponse](t, rec); !strings.Contains(got.Error, "larger than 2048 bytes") {
		t.Fatalf("413 says %q", got.Error)
	}
	if n := e.queued(t); n != 0 {
		t.Fatalf("an oversized body queued %d tasks", n)
	}
}

// The group door is guarded as /v1/recalls is: a bearer token, the
// token's rate, the flood guard.
func TestGroupRecallsNeedAToken(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Now()}
	e := newEnv(t, func(c *Config) { c.Rate, c.Burst, c.Now = 0.001, 1, clock.Now })
	body := groupJSON("g", "", 1)
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"unknown token", "tok-not-issued-1234567", http.StatusUnauthorized},
		{"good token", opsToken.Secret, http.StatusAccepted},
		{"good token past its rate", opsToken.Secret, http.StatusTooManyRequests},
		{"another token has its own rate", billingToken.Secret, http.StatusAccepted},
	} {
		res := e.postGroup(t, tc.token, body)
		if res.StatusCode != tc.status {
			t.Fatalf("%s: %d, want %d", tc.name, res.StatusCode, tc.status)
		}
		if tc.status == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: 429 without Retry-After", tc.name)
		}
	}
	if n := e.queued(t); n != 1 {
		t.Fatalf("%d tasks queued, want 1", n)
	}
	if strings.Contains(e.logs.String(), "tok-not-issued-1234567") {
		t.Fatal("the log shows the presented token")
	}
}

func TestGroupRecallsRedisDownIsUnavailable(t *testing.T) {
	t.Parallel()
	if os.Getenv("TEST_REDIS_URL") != "" {
		t.Skip("TEST_REDIS_URL is set: the shared server cannot be stopped")
	}
	e := newEnv(t)
	e.redis.Stop()
	rec := e.do(t, http.MethodPost, "/v1/group-recalls", opsToken.Secret, groupJSON("g", "", 1, 2))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST with Redis down: %d, want 503 (%s)", rec.Code, rec.Body)
	}
	if got := decodeAs[ErrorResponse](t, rec); !strings.Contains(got.Error, "Sending the same request again is safe") {
		t.Fatalf("503 says %q", got.Error)
	}
	if rec := e.do(t, http.MethodGet, "/v1/recalls/"+groupTaskID("g", "", 1), opsToken.Secret, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET of a group task with Redis down: %d, want 503 (%s)", rec.Code, rec.Body)
	}
}

// GET /v1/recalls/{id} answers for a group task as for a one-to-one one,
// naming the message, to the token that queued it only.
func TestGetGroupTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const group, topic = "@TGS#g", "@TGS#g@TOPIC#_t"
	rec := e.do(t, http.MethodPost, "/v1/group-recalls", opsToken.Secret, groupJSON(group, topic, 7))
	id := decodeAs[BatchResponse](t, rec).Recalls[0].TaskID

	rec = e.do(t, http.MethodGet, "/v1/recalls/"+id, opsToken.Secret, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	got := decodeAs[Task](t, rec)
	if got.ID != id || got.Type != tasks.TypeGroupRecall || got.GroupID != group || got.TopicID != topic || got.MsgSeq != 7 ||
		got.Queue != urgentQ || got.State != "pending" || got.MaxRetry != tasks.DefaultMaxRetry ||
		got.FromAccount != "" || got.MsgKey != "" {
		t.Fatalf("GET answered %+v; want %s, pending group %s topic %s seq 7", got, id, group, topic)
	}
	if other := e.do(t, http.MethodGet, "/v1/recalls/"+id, billingToken.Secret, ""); other.Code != http.StatusNotFound {
		t.Fatalf("another token: %d %s, want 404", other.Code, other.Body)
	}
	for _, id := range []string{
		groupTaskID(group, topic, 8), // never queued
		"grecall_" + strings.Repeat("A", 32),
		"grecall_" + strings.Repeat("0", 31),
		tasks.TaskIDPrefix + strings.TrimPrefix(id, tasks.GroupTaskIDPrefix), // the group task's hash as a one-to-one ID
	} {
		rec := e.do(t, http.MethodGet, "/v1/recalls/"+id, opsToken.Secret, "")
		if rec.Code != http.StatusNotFound || !strings.Contains(decodeAs[ErrorResponse](t, rec).Error, "no recall task") {
			t.Fatalf("GET %s: %d %s, want 404", id, rec.Code, rec.Body)
		}
	}

	// A one-to-one task names its message the same way.
	rec = e.post(t, recallJSON("vinson", "dramon", "1_2_3"))
	rec = e.do(t, http.MethodGet, "/v1/recalls/"+decodeAs[Queued](t, rec).TaskID, opsToken.Secret, "")
	if got := decodeAs[Task](t, rec); got.Type != tasks.TypeRecall || got.FromAccount != "vinson" || got.ToAccount != "dramon" ||
		got.MsgKey != "1_2_3" || got.GroupID != "" || got.MsgSeq != 0 {
		t.Fatalf("GET of a one-to-one task answered %+v", got)
	}
}
