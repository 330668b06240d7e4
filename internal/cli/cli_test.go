package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recallq/recallq/internal/redistest"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestEnqueueQueuesOnceThenSaysAlreadyQueued(t *testing.T) {
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	t.Setenv("TIM_SDKAPPID", "1400000000")
	args := []string{"enqueue", "--from", "vinson", "--to", "dramon", "--msgkey", "31906_833502_1572869830"}
	code, out, errOut := run(t, args...)
	if code != 0 || !strings.HasSuffix(out, " queued\n") || strings.Contains(out, "already") {
		t.Fatalf("first: code=%d out=%q err=%q", code, out, errOut)
	}
	id := strings.Fields(out)[0]
	code, out, _ = run(t, args...)
	if code != 0 || out != id+" already queued\n" {
		t.Fatalf("second: code=%d out=%q; want %q", code, out, id+" already queued\n")
	}
}

// TestEnqueueGroupQueuesOneTaskPerSeq: --group with --seq queues one task
// per seq, one line each; a seq queued before says so.
func TestEnqueueGroupQueuesOneTaskPerSeq(t *testing.T) {
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	t.Setenv("TIM_SDKAPPID", "1400000000")
	code, out, errOut := run(t, "enqueue", "--group", "@TGS#2J4SZEAEL", "--seq", "101,102")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "grecall_") || !strings.HasSuffix(lines[1], " queued") {
		t.Fatalf("first: code=%d out=%q err=%q", code, out, errOut)
	}
	code, out, errOut = run(t, "enqueue", "--group", "@TGS#2J4SZEAEL", "--seq", "102,103", "--reason", "spam")
	lines2 := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines2) != 2 || lines2[0] != strings.Fields(lines[1])[0]+" already queued" || strings.Contains(lines2[1], "already") {
		t.Fatalf("second: code=%d out=%q err=%q", code, out, errOut)
	}
}

func TestBadInputSaysWhatToFix(t *testing.T) {
	t.Setenv("TIM_SDKAPPID", "1400000000")
	t.Setenv("TIM_SECRET_KEY", "")
	t.Setenv("TIM_SECRET_KEY_FILE", "")
	empty := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no msgkey", nil, []string{"enqueue", "--from", "a", "--to", "b"}, "--msgkey: is empty"},
		{"long account", nil, []string{"enqueue", "--from", strings.Repeat("a", 33), "--to", "b", "--msgkey", "k"}, "--from: is 33 bytes long"},
		{"spaces around an account", nil, []string{"enqueue", "--from", " u5 ", "--to", "b", "--msgkey", "k"}, "--from: starts or ends with a space"},
		{"newline in a msgkey", nil, []string{"enqueue", "--from", "a", "--to", "b", "--msgkey", "multi\nline"}, "--msgkey: holds the control character U+000A"},
		{"bad app", map[string]string{"TIM_SDKAPPID": "14x"}, []string{"enqueue", "--from", "a", "--to", "b", "--msgkey", "k"}, "TIM_SDKAPPID \"14x\" is not a number"},
		{"no app", map[string]string{"TIM_SDKAPPID": ""}, []string{"worker"}, "TIM_SDKAPPID is not set"},
		{"no key", nil, []string{"worker"}, "the secret key is not set"},
		{"empty key file", map[string]string{"TIM_SECRET_KEY_FILE": empty}, []string{"worker"}, "is empty"},
		{"rate above the cap", map[string]string{"RECALL_RATE": "250", "TIM_SECRET_KEY": "k"}, []string{"worker"}, "RECALL_RATE must be"},
		{"bad redis url", map[string]string{"TIM_SECRET_KEY": "k"}, []string{"worker", "--redis-url", "http://:hunter2@x"}, "use redis://host:port/db"},
		{"bad region", map[string]string{"TIM_SECRET_KEY": "k"}, []string{"worker", "--region", "mars"}, "mars"},
		{"unknown flag", nil, []string{"enqueue", "--secret-key", "x"}, "unknown flag"},
		{"group without seq", nil, []string{"enqueue", "--group", "g"}, "--seq: give the messages' MsgSeqs"},
		{"group seq 0", nil, []string{"enqueue", "--group", "g", "--seq", "1,0"}, "--seq: \"0\" is not a MsgSeq"},
		{"seq without group", nil, []string{"enqueue", "--seq", "5"}, "--group: is empty"},
		{"group and msgkey", nil, []string{"enqueue", "--group", "g", "--seq", "1", "--msgkey", "k"}, "give one or the other"},
		{"long group", nil, []string{"enqueue", "--group", strings.Repeat("g", 49), "--seq", "1"}, "--group: is 49 bytes long"},
		{"bad latency", map[string]string{"TIM_SECRET_KEY": "k"}, []string{"imsim", "--latency", "fast"}, "--latency \"fast\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := run(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, exitUsage, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("stderr leaks a password: %q", errOut)
			}
		})
	}
}
