package intake

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

func TestPostOneRecallIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"From_Account":"vinson","To_Account":"dramon","MsgKey":"31906_833502_1572869830","reason":"abuse report 7731"}`
	want := taskID("vinson", "dramon", "31906_833502_1572869830")

	rec := e.post(t, body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("first POST: %d %s", rec.Code, rec.Body)
	}
	if got := decodeAs[Queued](t, rec); got != (Queued{TaskID: want, Status: StatusQueued}) {
		t.Fatalf("first POST answered %+v, want %s queued", got, want)
	}
	// The same message again, asked by another client for another reason.
	again := `{"From_Account":"vinson","To_Account":"dramon","MsgKey":"31906_833502_1572869830","reason":"duplicate report"}`
	rec = e.do(t, http.MethodPost, "/v1/recalls", billingToken.Secret, again)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("second POST: %d %s", rec.Code, rec.Body)
	}
	if got := decodeAs[Queued](t, rec); got != (Queued{TaskID: want, Status: StatusAlreadyQueued}) {
		t.Fatalf("second POST answered %+v, want %s already_queued", got, want)
	}
	if n := e.queued(t); n != 1 {
		t.Fatalf("%d tasks queued, want 1", n)
	}
	// The task carries the app, who asked (the token's name) and why.
	info, err := e.inspector(t).GetTaskInfo(urgentQ, want)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tasks.Decode(info.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if r.SDKAppID != testApp || r.RequestedBy != "ops-console" || r.Reason != "abuse report 7731" {
		t.Fatalf("queued payload %+v: want the app, requested_by ops-console and the first reason", r)
	}
}

func TestPostBatchIsIdempotentPerRecall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := batchJSON(recallJSON("s", "u1", "1_1_1"), recallJSON("s", "u2", "1_1_2"))
	rec := e.post(t, first)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("first batch: %d %s", rec.Code, rec.Body)
	}
	got := decodeAs[BatchResponse](t, rec)
	want := []Queued{{taskID("s", "u1", "1_1_1"), StatusQueued}, {taskID("s", "u2", "1_1_2"), StatusQueued}}
	if !slices.Equal(got.Recalls, want) {
		t.Fatalf("first batch answered %+v, want %+v", got.Recalls, want)
	}

	// Again, with a new recall in the middle and the first one twice.
	second := batchJSON(recallJSON("s", "u1", "1_1_1"), recallJSON("s", "u3", "1_1_3"),
		recallJSON("s", "u2", "1_1_2"), recallJSON("s", "u3", "1_1_3"))
	rec = e.post(t, second)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("second batch: %d %s", rec.Code, rec.Body)
	}
	got = decodeAs[BatchResponse](t, rec)
	want = []Queued{
		{taskID("s", "u1", "1_1_1"), StatusAlreadyQueued},
		{taskID("s", "u3", "1_1_3"), StatusQueued},
		{taskID("s", "u2", "1_1_2"), StatusAlreadyQueued},
		{taskID("s", "u3", "1_1_3"), StatusAlreadyQueued}, // earlier in the same batch
	}
	if !slices.Equal(got.Recalls, want) {
		t.Fatalf("second batch answered %+v, want %+v", got.Recalls, want)
	}
	if n := e.queued(t); n != 3 {
		t.Fatalf("%d tasks queued, want 3", n)
	}
}

func TestBadRequestsNameTheFieldAndRow(t *testing.T) {
	t.Parallel()
	good := recallJSON("s", "u1", "1_1_1")
	for _, tc := range []refusal{
		{"single with an empty MsgKey", `{"From_Account":"a","To_Account":"b","MsgKey":""}`,
			422, []string{"MsgKey"}, []int{-1}, "the recall is invalid; nothing was queued: MsgKey: is empty: give the MsgKey"},
		{"single without To_Account", `{"From_Account":"a","MsgKey":"k"}`,
			422, []string{"To_Account"}, []int{-1}, "To_Account: is empty"},
		{"account too long", recallJSON(strings.Repeat("a", 33), "b", "k"),
			422, []string{"From_Account"}, []int{-1}, "From_Account: is 33 bytes long; at most 32"},
		{"reason too long", `{"From_Account":"a","To_Account":"b","MsgKey":"k","reason":"` + strings.Repeat("r", 513) + `"}`,
			422, []string{"reason"}, []int{-1}, "reason: is 513 bytes long"},
		{"batch with two bad rows", batchJSON(good, recallJSON("s", "", "k"), good, recallJSON("s", "u", "")),
			422, []string{"recalls[1].To_Account", "recalls[3].MsgKey"}, []int{1, 3},
			"2 of 4 recalls are invalid; nothing was queued: recalls[1].To_Account: is empty"},
		{"empty batch", `{"recalls":[]}`, 422, []string{"recalls"}, []int{-1}, "recalls: is empty"},
		{"unknown field", `{"From_Account":"a","To_Account":"b","msgkey":"k"}`,
			400, []string{"msgkey"}, []int{-1}, "msgkey: is not a field of a recall"},
		{"requested_by is the token's, not the body's", `{"From_Account":"a","To_Account":"b","MsgKey":"k","requested_by":"x"}`,
			400, []string{"requested_by"}, []int{-1}, "requested_by: is not a field of a recall"},
		{"unknown field in a row, empty value in another", batchJSON(`{"From_Account":"a","To_Account":"b","MsgKey":"k","Reason":"x"}`, recallJSON("", "b", "k")),
			400, []string{"recalls[0].Reason", "recalls[1].From_Account"}, []int{0, 1}, "2 of 2 recalls are invalid"},
		{"not a string", `{"From_Account":"a","To_Account":"b","MsgKey":31906}`,
			400, []string{"MsgKey"}, []int{-1}, "MsgKey: must be a string"},
		{"row not an object", batchJSON(good, `"1_1_1"`),
			400, []string{"recalls[1]"}, []int{1}, "recalls[1]: is not a JSON object"},
		{"batch with recall fields beside it", `{"recalls":[` + good + `],"MsgKey":"k"}`,
			400, []string{"MsgKey"}, []int{-1}, "MsgKey: is not a field of a batch"},
		{"recalls not an array", `{"recalls":{"From_Account":"a"}}`,
			400, []string{"recalls"}, []int{-1}, "recalls: must be an array"},
		{"not JSON", `{"From_Account":"a",`, 400, nil, nil, "the body is not valid JSON"},
		{"two JSON values", good + good, 400, nil, nil, "the body is not valid JSON"},
		{"an array", `[` + good + `]`, 400, nil, nil, "the body is not a JSON object"},
		{"null", `null`, 400, nil, nil, "the body is not a JSON object"},
		{"empty body", ``, 400, nil, nil, "the body is empty"},
		// Issue 10: values the JSON decoder used to change or let through.
		{"invalid UTF-8 in MsgKey", "{\"From_Account\":\"a\",\"To_Account\":\"b\",\"MsgKey\":\"1_\xff\xfe\"}",
			422, []string{"MsgKey"}, []int{-1}, "MsgKey: is not valid UTF-8"},
		{"lone surrogate escape in an account", `{"From_Account":"\udc00","To_Account":"b","MsgKey":"k"}`,
			422, []string{"From_Account"}, []int{-1}, "From_Account: is not valid UTF-8"},
		{"invalid UTF-8 in a batch row", batchJSON(good, "{\"From_Account\":\"a\",\"To_Account\":\"\xc3\",\"MsgKey\":\"k\"}"),
			422, []string{"recalls[1].To_Account"}, []int{1}, "recalls[1].To_Account: is not valid UTF-8"},
		{"MsgKey twice", `{"From_Account":"a","To_Account":"b","MsgKey":"k1","MsgKey":"k2"}`,
			400, []string{"MsgKey"}, []int{-1}, "MsgKey: is given twice"},
		{"MsgKey twice in a batch row", batchJSON(good, `{"From_Account":"a","To_Account":"b","MsgKey":"k1","MsgKey":"k2"}`),
			400, []string{"recalls[1].MsgKey"}, []int{1}, "recalls[1].MsgKey: is given twice"},
		{"recalls twice", `{"recalls":[` + good + `],"recalls":[` + good + `]}`,
			400, []string{"recalls"}, []int{-1}, "recalls: is given twice"},
		{"miscased name says the right one", `{"from_account":"a","To_Account":"b","MsgKey":"k"}`,
			400, []string{"from_account"}, []int{-1}, "names are case-sensitive: write From_Account"},
		{"spaces around an account", recallJSON(" u5 ", "b", "k"),
			422, []string{"From_Account"}, []int{-1}, "From_Account: starts or ends with a space"},
		{"newline in a MsgKey", recallJSON("a", "b", "multi\nline"),
			422, []string{"MsgKey"}, []int{-1}, "MsgKey: holds the control character U+000A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rec := e.post(t, tc.body)
			e.checkRefused(t, rec, tc)
		})
	}
}

func TestBatchLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxBatch = 5 })
	rows := func(n int) string {
		var rs []string
		for i := range n {
			rs = append(rs, recallJSON("s", "u", fmt.Sprintf("1_%d_1", i)))
		}
		return batchJSON(rs...)
	}
	rec := e.post(t, rows(6))
	if rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("6 recalls with a limit of 5: %d, want 422 (%s)", rec.Code, rec.Body)
	}
	if got := decodeAs[ErrorResponse](t, rec); !strings.Contains(got.Error, "recalls: has 6 recalls; at most 5") {
		t.Fatalf("error %q does not give the limit", got.Error)
	}
	if n := e.queued(t); n != 0 {
		t.Fatalf("an oversized batch queued %d tasks", n)
	}
	if rec := e.post(t, rows(5)); rec.Code != http.StatusAccepted {
		t.Fatalf("5 recalls with a limit of 5: %d (%s)", rec.Code, rec.Body)
	}
	if n := e.queued(t); n != 5 {
		t.Fatalf("%d tasks queued, want 5", n)
	}
}

func TestDefaultBatchLimitIsAThousand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var rs []string
	for i := range DefaultMaxBatch + 1 {
		rs = append(rs, recallJSON("s", "u", fmt.Sprint(i)))
	}
	if rec := e.post(t, batchJSON(rs...)); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("%d recalls: %d, want 422", len(rs), rec.Code)
	}
	rec := e.post(t, batchJSON(rs[:DefaultMaxBatch]...))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("%d recalls: %d (%s)", DefaultMaxBatch, rec.Code, rec.Body)
	}
	got := decodeAs[BatchResponse](t, rec)
	for i, q := range got.Recalls {
		if q.Status != StatusQueued || q.TaskID != taskID("s", "u", fmt.Sprint(i)) {
			t.Fatalf("row %d answered %+v", i, q)
		}
	}
	if n := e.queued(t); n != DefaultMaxBatch {
		t.Fatalf("%d tasks queued, want %d", n, DefaultMaxBatch)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		limit int64 // 0 = the default
	}{
		{"configured", 2048},
		{"default", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.MaxBodyBytes = tc.limit })
			limit := tc.limit
			if limit == 0 {
				limit = DefaultMaxBodyBytes
			}
			// A well-formed body one byte over the limit.
			pad := int(limit) + 1 - len(`{"From_Account":"a","To_Account":"b","MsgKey":"k","reason":""}`)
			body := `{"From_Account":"a","To_Account":"b","MsgKey":"k","reason":"` + strings.Repeat(" ", pad) + `"}`
			rec := e.post(t, body)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d-byte body: %d, want 413 (%.200s)", len(body), rec.Code, rec.Body)
			}
			if got := decodeAs[ErrorResponse](t, rec); !strings.Contains(got.Error, fmt.Sprintf("larger than %d bytes", limit)) {
				t.Fatalf("413 says %q", got.Error)
			}
			if n := e.queued(t); n != 0 {
				t.Fatalf("an oversized body queued %d tasks", n)
			}
		})
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	t.Parallel()
	if os.Getenv("TEST_REDIS_URL") != "" {
		t.Skip("TEST_REDIS_URL is set: the shared server cannot be stopped")
	}
	e := newEnv(t)
	e.redis.Stop()
	rec := e.post(t, recallJSON("a", "b", "1_1_1"))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST with Redis down: %d, want 503 (%s)", rec.Code, rec.Body)
	}
	if got := decodeAs[ErrorResponse](t, rec); !strings.Contains(got.Error, "Sending the same request again is safe") {
		t.Fatalf("503 says %q", got.Error)
	}
	if rec := e.do(t, http.MethodGet, "/v1/recalls/"+taskID("a", "b", "1_1_1"), opsToken.Secret, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET with Redis down: %d, want 503 (%s)", rec.Code, rec.Body)
	}
	if rec := e.do(t, http.MethodGet, "/readyz", "", ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %d, want 503", rec.Code)
	}
	if rec := e.do(t, http.MethodGet, "/healthz", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %d, want 200", rec.Code)
	}
}

// Redis fills up in the middle of a batch (maxmemory, noeviction): the 503
// says, row by row in the request's order, which recalls were queued and
// which were not, as the spec describes it, so a client knows what its
// retry will do.
func TestPartlyQueuedBatchSaysWhatWasQueued(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t, "--maxmemory-policy", "noeviction") // a server of its own, whose memory the test caps
	e := newEnvOn(t, rs)
	rdb := rs.Client(t)
	info, err := rdb.Info(t.Context(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	var mem int64
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			mem, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	// Room for a part of the batch only: 1 MiB, about a fifth of it.
	if err := rdb.ConfigSet(t.Context(), "maxmemory", strconv.FormatInt(mem+1<<20, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	reason := strings.Repeat("r", 500)
	var rows, ids []string
	for i := range 999 {
		rows = append(rows, fmt.Sprintf(`{"From_Account":"s","To_Account":"u%d","MsgKey":"%d_1_1","reason":%q}`, i, i, reason))
		ids = append(ids, taskID("s", fmt.Sprintf("u%d", i), fmt.Sprintf("%d_1_1", i)))
	}
	rows, ids = append(rows, rows[0]), append(ids, ids[0]) // the last row repeats the first

	req := newRequest(http.MethodPost, "/v1/recalls", batchJSON(rows...))
	req.Header.Set("Authorization", "Bearer "+opsToken.Secret)
	rec := checkAgainstSpec(t, loadSpec(t), "POST /v1/recalls", e.s, req, nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("answer %d, want 503: %.300s", rec.Code, rec.Body)
	}
	got := decodeAs[ErrorResponse](t, rec)
	pending, err := e.inspector(t).ListPendingTasks(urgentQ, asynq.PageSize(2000))
	if err != nil {
		t.Fatal(err)
	}
	inRedis := map[string]bool{}
	for _, ti := range pending {
		inRedis[ti.ID] = true
	}
	if len(inRedis) == 0 || len(inRedis) == len(ids)-1 {
		t.Fatalf("%d of %d recalls queued: not a partial failure; the test's maxmemory needs adjusting", len(inRedis), len(ids)-1)
	}
	if len(got.Recalls) != len(ids) {
		t.Fatalf("503 lists %d recalls, want %d: %.300s", len(got.Recalls), len(ids), rec.Body)
	}
	var notQueued int
	for i, q := range got.Recalls {
		want := StatusNotQueued
		switch {
		case i == len(ids)-1 && inRedis[ids[i]]:
			want = StatusAlreadyQueued
		case i < len(ids)-1 && inRedis[ids[i]]:
			want = StatusQueued
		}
		if q != (Queued{TaskID: ids[i], Status: want}) {
			t.Errorf("recalls[%d] = %+v, want %s %s", i, q, ids[i], want)
		}
		if want == StatusNotQueued {
			notQueued++
		}
	}
	if !strings.Contains(got.Error, fmt.Sprintf("%d of %d recalls were not queued", notQueued, len(ids))) ||
		!strings.Contains(got.Error, "Sending the same request again is safe") {
		t.Errorf("503 says %q", got.Error)
	}
	if logs := e.logs.String(); !strings.Contains(logs, fmt.Sprintf(`"queued":%d,`, len(inRedis))) {
		t.Errorf("the log does not count the %d recalls queued:\n%.2000s", len(inRedis), logs)
	}
}
