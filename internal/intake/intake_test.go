package intake

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
)

// The settings REDIS_URL cannot hold (a private CA and a client
// certificate, the sentinels' own password) reach the queues as they
// reach /readyz: when /readyz says ready, a POST queues.
func TestPostQueuesWithTheRedisEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (url string)
	}{
		{"private CA and client certificate", func(t *testing.T) string {
			rs := redistest.StartTLS(t)
			t.Setenv(redisconn.EnvCAFile, rs.Certs.CAFile)
			t.Setenv(redisconn.EnvCertFile, rs.Certs.ClientCertFile)
			t.Setenv(redisconn.EnvKeyFile, rs.Certs.ClientKeyFile)
			return "rediss://" + rs.Addr + "/0"
		}},
		{"sentinels with a password of their own", func(t *testing.T) string {
			ss := redistest.StartSentinelSet(t, redistest.SentinelConfig{Password: "primary-pw-3Kd", SentinelPassword: "sentinel-pw-5Rt"})
			t.Setenv(redisconn.EnvSentinelPassword, "sentinel-pw-5Rt")
			return ss.URL
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logtest.Buffer{}
			s, err := New(Config{RedisURL: tc.start(t), SDKAppID: testApp, Tokens: []Token{opsToken},
				Logger: slog.New(slog.NewJSONHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			e := &env{s: s, logs: logs}
			if rec := e.do(t, http.MethodGet, "/readyz", "", ""); rec.Code != http.StatusOK {
				t.Fatalf("readyz %d %s", rec.Code, rec.Body)
			}
			if rec := e.post(t, recallJSON("vinson", "dramon", "31906_833502_1572869830")); rec.Code != http.StatusAccepted {
				t.Fatalf("POST /v1/recalls: %d %s\nlog: %s", rec.Code, rec.Body, logs)
			}
		})
	}
}
