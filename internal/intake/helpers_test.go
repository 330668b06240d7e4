package intake

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

const testApp = 1400000000

// urgentQ is the test app's urgent queue.
var urgentQ = tasks.AppQueue(tasks.QueueUrgent, testApp)

// The test tokens. Their secrets must never appear in a log.
var (
	opsToken     = Token{Name: "ops-console", Secret: "tok-ops-6f1d9c2a8b7e4f30"}
	billingToken = Token{Name: "billing", Secret: "tok-billing-0a9b8c7d6e5f4a3b"}
)

// env is an intake under test with its Redis and its log.
type env struct {
	s     *Server
	redis *redistest.Server
	logs  *logtest.Buffer
}

// newEnv starts a redis-server and an intake on it; edit adjusts the Config.
func newEnv(t *testing.T, edit ...func(*Config)) *env {
	t.Helper()
	return newEnvOn(t, redistest.Start(t), edit...)
}

// newEnvOn is newEnv on the redis-server rs.
func newEnvOn(t *testing.T, rs *redistest.Server, edit ...func(*Config)) *env {
	t.Helper()
	logs := &logtest.Buffer{}
	cfg := Config{
		RedisURL: rs.URL,
		SDKAppID: testApp,
		Tokens:   []Token{opsToken, billingToken},
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &env{s: s, redis: rs, logs: logs}
}

// do sends a request straight to the handler. token "" sends none.
func (e *env) do(t *testing.T, method, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.s.ServeHTTP(rec, req)
	return rec
}

// post sends body to POST /v1/recalls with the ops token.
func (e *env) post(t *testing.T, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, http.MethodPost, "/v1/recalls", opsToken.Secret, body)
}

// refusal is a request the intake must refuse, and how.
type refusal struct {
	name    string
	body    string
	status  int
	fields  []string // every problem's field, in order
	rows    []int    // every problem's row (-1 = none)
	message string   // in the error
}

// checkRefused checks the answer to a request that must be refused as
// want says: its status, that its error says the message, every
// problem's field and row in order, each with a reason, and that nothing
// was queued.
func (e *env) checkRefused(t *testing.T, rec *httptest.ResponseRecorder, want refusal) {
	t.Helper()
	status, message, wantFields, wantRows := want.status, want.message, want.fields, want.rows
	if rec.Code != status {
		t.Fatalf("status %d, want %d (%s)", rec.Code, status, rec.Body)
	}
	got := decodeAs[ErrorResponse](t, rec)
	if !strings.Contains(got.Error, message) {
		t.Errorf("error %q does not say %q", got.Error, message)
	}
	var fields []string
	var rows []int
	for _, p := range got.Invalid {
		fields = append(fields, p.Field)
		row := -1
		if p.Row != nil {
			row = *p.Row
		}
		rows = append(rows, row)
		if p.Reason == "" {
			t.Errorf("problem %s has no reason", p.Field)
		}
	}
	if !slices.Equal(fields, wantFields) || !slices.Equal(rows, wantRows) {
		t.Errorf("problems %+v: fields %q rows %v, want %q %v", got.Invalid, fields, rows, wantFields, wantRows)
	}
	if n := e.queued(t); n != 0 {
		t.Errorf("a rejected request queued %d tasks", n)
	}
}

// inspector reads the intake's Redis directly.
func (e *env) inspector(t *testing.T) *asynq.Inspector {
	t.Helper()
	i := asynq.NewInspectorFromRedisClient(e.redis.Client(t))
	return i
}

// queued returns how many tasks the urgent lane holds.
func (e *env) queued(t *testing.T) int {
	t.Helper()
	qi, err := e.inspector(t).GetQueueInfo(urgentQ)
	if err != nil {
		return 0 // the queue was never used
	}
	return qi.Size
}

// decodeAs decodes a response body into a T, failing the test otherwise.
func decodeAs[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %d %q: %v", v, rec.Code, rec.Body.String(), err)
	}
	return v
}

// recallJSON is one recall's JSON.
func recallJSON(from, to, key string) string {
	b, _ := json.Marshal(RecallRequest{FromAccount: from, ToAccount: to, MsgKey: key})
	return string(b)
}

// batchJSON is a batch of the rows' JSON.
func batchJSON(rows ...string) string { return `{"recalls":[` + strings.Join(rows, ",") + `]}` }

// taskID is the task ID the intake gives a recall of the test app.
func taskID(from, to, key string) string {
	return tasks.Recall{SDKAppID: testApp, FromAccount: from, ToAccount: to, MsgKey: key}.TaskID()
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newRequest(method, path, body string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return httptest.NewRequest(method, path, r)
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
