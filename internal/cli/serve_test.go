package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/intake"
	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

const serveTestSecret = "tok-7c1e0b5d9a2f48e3b6d1"

// clearServeEnv unsets the intake's settings for the test.
func clearServeEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"INTAKE_TOKENS_FILE", "INTAKE_TOKEN", "INTAKE_ADDR", "INTAKE_RATE", "INTAKE_BURST", "INTAKE_MAX_BATCH", "INTAKE_MAX_BODY"} {
		t.Setenv(k, "")
	}
}

func TestServeRefusesToStartAndSaysWhatToSet(t *testing.T) {
	clearServeEnv(t)
	t.Setenv("TIM_SDKAPPID", "1400000000")
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad")
	if err := os.WriteFile(badFile, []byte("# clients\nops "+serveTestSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodFile := filepath.Join(dir, "good")
	if err := os.WriteFile(goodFile, []byte("ops:"+serveTestSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no token", nil, nil, "no bearer token is set: the intake refuses to run open; put name:token lines in a file named by INTAKE_TOKENS_FILE, or one token in INTAKE_TOKEN"},
		{"both", map[string]string{"INTAKE_TOKEN": serveTestSecret, "INTAKE_TOKENS_FILE": goodFile}, nil, "both INTAKE_TOKENS_FILE and INTAKE_TOKEN are set"},
		{"missing file", map[string]string{"INTAKE_TOKENS_FILE": filepath.Join(dir, "nope")}, nil, "INTAKE_TOKENS_FILE: cannot read the tokens"},
		{"malformed file", map[string]string{"INTAKE_TOKENS_FILE": badFile}, nil, "line 2 has no \":\": write name:token"},
		{"token as a flag", map[string]string{"INTAKE_TOKEN": serveTestSecret}, []string{"--token", serveTestSecret}, "unknown flag: --token"},
		{"no app", map[string]string{"INTAKE_TOKEN": serveTestSecret, "TIM_SDKAPPID": ""}, nil, "TIM_SDKAPPID is not set: the intake needs"},
		{"rate not a number", map[string]string{"INTAKE_TOKEN": serveTestSecret, "INTAKE_RATE": "fast"}, nil, `INTAKE_RATE "fast" is not a number of requests per second`},
		{"zero rate", map[string]string{"INTAKE_TOKEN": serveTestSecret}, []string{"--rate", "0"}, "--rate (INTAKE_RATE) must be above 0"},
		{"zero batch", map[string]string{"INTAKE_TOKEN": serveTestSecret, "INTAKE_MAX_BATCH": "0"}, nil, "--max-batch (INTAKE_MAX_BATCH) must be at least 1"},
		{"bad redis url", map[string]string{"INTAKE_TOKEN": serveTestSecret}, []string{"--redis-url", "http://:hunter2@x"}, "use redis://host:port/db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := run(t, append([]string{"serve"}, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, exitUsage, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
			if strings.Contains(errOut, serveTestSecret) || strings.Contains(errOut, "hunter2") {
				t.Errorf("stderr leaks a secret: %q", errOut)
			}
		})
	}
}

func TestServeQueuesAsTheTokensNameAndStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# who:token\nsupport-desk:"+serveTestSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		who  string
	}{
		{"tokens file", map[string]string{"INTAKE_TOKENS_FILE": file}, "support-desk"},
		{"single token", map[string]string{"INTAKE_TOKEN": serveTestSecret}, "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearServeEnv(t)
			rs := redistest.Start(t)
			t.Setenv("REDIS_URL", rs.URL)
			t.Setenv("TIM_SDKAPPID", "1400000000")
			t.Setenv("INTAKE_ADDR", "127.0.0.1:0")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			out, logs := &logtest.Buffer{}, &logtest.Buffer{}
			exited := make(chan int, 1)
			go func() { exited <- Main(ctx, []string{"serve", "--log-level", "debug"}, out, logs) }()

			var base string
			deadline := time.Now().Add(10 * time.Second)
			for base == "" {
				if line, ok := strings.CutPrefix(out.String(), "intake listening on "); ok {
					base = strings.Fields(line)[0]
					break
				}
				select {
				case code := <-exited:
					t.Fatalf("serve exited with %d: %s", code, logs)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("serve did not start: %s", logs)
				}
				time.Sleep(10 * time.Millisecond)
			}

			req, _ := http.NewRequest(http.MethodPost, base+"/v1/recalls",
				strings.NewReader(`{"From_Account":"vinson","To_Account":"dramon","MsgKey":"31906_833502_1572869830"}`))
			req.Header.Set("Authorization", "Bearer "+serveTestSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got intake.Queued
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusAccepted || got.Status != intake.StatusQueued {
				t.Fatalf("POST: %d %+v %v", resp.StatusCode, got, err)
			}
			info, err := asynq.NewInspectorFromRedisClient(rs.Client(t)).GetTaskInfo(tasks.AppQueue(tasks.QueueUrgent, 1400000000), got.TaskID)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := tasks.Decode(info.Payload); err != nil || r.RequestedBy != tc.who || r.SDKAppID != 1400000000 {
				t.Fatalf("queued %+v (%v); want requested_by %q", r, err, tc.who)
			}

			stop()
			select {
			case code := <-exited:
				if code != exitOK {
					t.Fatalf("serve exited with %d after cancel: %s", code, logs)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("serve did not stop after cancel")
			}
			if strings.Contains(logs.String(), serveTestSecret) {
				t.Fatalf("the token reached the log:\n%s", logs)
			}
			if !strings.Contains(logs.String(), "client="+tc.who) {
				t.Fatalf("the log does not name the client %q:\n%s", tc.who, logs)
			}
		})
	}
}
