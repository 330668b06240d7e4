package dashboard

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/logtest"
)

// A dashboard on every interface with a one-character password says so,
// loudly, and says it serves plain HTTP; on loopback with a long password
// it says neither.
func TestWarnsOfWeakPasswordAndPlainHTTPOnAPublicAddress(t *testing.T) {
	for _, tc := range []struct {
		addr, password string
		want           []string
		notWant        []string
	}{
		{"0.0.0.0:0", "x", []string{"password is short", "plain HTTP"}, nil},
		{"127.0.0.1:0", "x", []string{"password is short"}, []string{"plain HTTP"}},
		{"127.0.0.1:0", "a long and random password 7f3e", nil, []string{"password is short", "plain HTTP"}},
	} {
		logs := &logtest.Buffer{}
		d := newTestDashboard(t, Config{Addr: tc.addr, Username: "oncall", Password: tc.password,
			Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.ListenAndServe(ctx, func(string) { cancel() }) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ListenAndServe did not return")
		}
		out := logs.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) || !strings.Contains(out, `"level":"WARN"`) {
				t.Errorf("%s, password of %d: no warning %q:\n%s", tc.addr, len(tc.password), w, out)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(out, w) {
				t.Errorf("%s, password of %d: warns %q:\n%s", tc.addr, len(tc.password), w, out)
			}
		}
		if strings.Contains(out, tc.password+`"`) {
			t.Errorf("the log shows the password:\n%s", out)
		}
	}
}
