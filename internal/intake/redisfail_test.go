package intake

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redistest"
)

// An intake whose Redis refuses its password says that, to the client and
// in its log, rather than "Redis did not answer", which sends people
// looking for an outage.
func TestRefusedRedisPasswordIsNamed(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t, "--requirepass", "right-pass-7")
	logs := &logtest.Buffer{}
	s, err := New(Config{RedisURL: "redis://:wrong-pass-8@" + rs.Addr + "/0", SDKAppID: testApp,
		Tokens: []Token{opsToken}, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := &env{s: s, redis: rs, logs: logs}
	for _, rec := range []*httptest.ResponseRecorder{
		e.post(t, recallJSON("a", "b", "1_1_1")),
		e.do(t, http.MethodGet, "/v1/recalls/"+taskID("a", "b", "1_1_1"), opsToken.Secret, ""),
	} {
		res, body := rec.Result(), rec.Body
		if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.String(), "refused") ||
			strings.Contains(body.String(), "did not answer") || strings.Contains(body.String(), "again later") {
			t.Errorf("answer %d %s: want 503 saying Redis refused the intake's password, and not to try again later", res.StatusCode, body)
		}
	}
	if out := logs.String(); !strings.Contains(out, "refused the password") || strings.Contains(out, "wrong-pass-8") {
		t.Errorf("the log does not say the password was refused, or shows it:\n%s", out)
	}
}

// Once the intake has queued, asynq flattens Redis's refusals into text;
// they are still named, not reported as "Redis did not answer": a
// password changed while the intake runs, and a Redis out of memory.
func TestRedisRefusalAfterFirstEnqueueIsNamed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		refuse     []any // the CONFIG SET that makes Redis refuse
		answer     string
		log        string
		killClient bool
	}{
		{"password changed", []any{"requirepass", "new-pass-2"}, "refused the intake's password", "refused the password", true},
		{"out of memory", []any{"maxmemory", "1"}, "refused the write: out of memory", "out of memory", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t, "--requirepass", "old-pass-1")
			logs := &logtest.Buffer{}
			s, err := New(Config{RedisURL: "redis://:old-pass-1@" + rs.Addr + "/0", SDKAppID: testApp,
				Tokens: []Token{opsToken}, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			e := &env{s: s, redis: rs, logs: logs}
			if rec := e.post(t, recallJSON("a", "b", "1_1_1")); rec.Code != http.StatusAccepted {
				t.Fatalf("first POST %d %s", rec.Code, rec.Body)
			}
			admin := redis.NewClient(&redis.Options{Addr: rs.Addr, Password: "old-pass-1"})
			defer admin.Close()
			if err := admin.Do(t.Context(), append([]any{"CONFIG", "SET"}, tc.refuse...)...).Err(); err != nil {
				t.Fatal(err)
			}
			if tc.killClient { // the intake's connections log in again
				admin.Do(t.Context(), "CLIENT", "KILL", "TYPE", "normal")
			}
			rec := e.post(t, recallJSON("c", "d", "2_2_2"))
			body, out := rec.Body.String(), logs.String()
			if rec.Code != http.StatusServiceUnavailable || !strings.Contains(body, tc.answer) || strings.Contains(body, "did not answer") {
				t.Errorf("answer %d %s: want 503 saying %q", rec.Code, body, tc.answer)
			}
			if !strings.Contains(out, tc.log) || strings.Contains(out, "is Redis at") {
				t.Errorf("the log does not say %q:\n%s", tc.log, out)
			}
			if strings.Contains(body+out, "-pass-") {
				t.Errorf("a password shows:\n%s\n%s", body, out)
			}
		})
	}
}
