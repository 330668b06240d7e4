package intake

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
			strings.Contains(body.String(), "did not answer") {
			t.Errorf("answer %d %s: want 503 saying Redis refused the intake's password", res.StatusCode, body)
		}
	}
	if out := logs.String(); !strings.Contains(out, "refused the password") || strings.Contains(out, "wrong-pass-8") {
		t.Errorf("the log does not say the password was refused, or shows it:\n%s", out)
	}
}
