package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/redistest"
)

// Each bad setting is reported as what was given and what to give, once.
func TestBadSettingsSayWhatWasGiven(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
		not  []string
	}{
		{"rate not a number", map[string]string{"RECALL_RATE": "fast"}, []string{"worker"},
			[]string{`RECALL_RATE "fast"`}, []string{"-1"}},
		{"empty admin", nil, []string{"worker", "--admin", ""},
			[]string{"--admin", "TIM_ADMIN", "empty"}, nil},
		{"negative demo count", nil, []string{"demo", "--count", "-5"},
			[]string{"--count", "-5"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TIM_SDKAPPID", "1400000000")
			t.Setenv("TIM_SECRET_KEY", "k")
			t.Setenv("RECALL_RATE", "")
			t.Setenv("TIM_ADMIN", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			t.Setenv("REDIS_URL", "redis://127.0.0.1:1/0")                          // never reached: the setting is refused first
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // today's code runs on
			defer cancel()
			var out, errb bytes.Buffer
			code := Main(ctx, tc.args, &out, &errb)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %s", code, exitUsage, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q does not say %q", errb.String(), w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q says %q", errb.String(), w)
				}
			}
		})
	}
}

// A Redis that cannot be reached is reported once, in the command's error,
// without go-redis's own unstructured pool.go lines on the process's
// stderr before it.
func TestUnreachableRedisIsReportedOnce(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDIS_URL", fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	t.Setenv("TIM_SDKAPPID", "1400000000")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"enqueue", "--from", "a", "--to", "b", "--msgkey", "1_1_1"}, &out, &errb)
	os.Stderr = stderr
	w.Close()
	raw, _ := io.ReadAll(r)
	if code == exitOK {
		t.Fatal("enqueue succeeded with no Redis")
	}
	if strings.Contains(string(raw), "pool.go") {
		t.Errorf("go-redis wrote to the process's stderr:\n%s", raw)
	}
	if !strings.Contains(errb.String(), "is Redis at") {
		t.Errorf("the error does not ask whether Redis is up: %s", errb.String())
	}
}
