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
	for _, k := range []string{"INTAKE_TOKENS_FILE", "INTAKE_TOKEN", "INTAKE_ADDR", "INTAKE_RATE", "INTAKE_BURST", "INTAKE_MAX_BATCH", "INTAKE_MAX_BODY", "TIM_APPS_FILE"} {
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
	limitedFile := writeFile(t, dir, "limited", "ops:"+serveTestSecret+" apps=1400000000,7\n")
	appsFile := writeFile(t, dir, "apps.yaml", twoAppsFile)
	badApps := writeFile(t, dir, "bad.yaml", "apps:\n  - secret_key_file: k\n")
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
		{"apps file and an app", map[string]string{"INTAKE_TOKEN": serveTestSecret, "TIM_APPS_FILE": appsFile}, nil, "both TIM_APPS_FILE and TIM_SDKAPPID (--sdkappid) are set"},
		{"bad apps file", map[string]string{"INTAKE_TOKEN": serveTestSecret, "TIM_SDKAPPID": "", "TIM_APPS_FILE": badApps}, nil, "TIM_APPS_FILE: app 1: sdkappid is missing"},
		{"token of an app not served", map[string]string{"INTAKE_TOKENS_FILE": limitedFile}, nil, `the token "ops" may use app 7, which the intake does not serve`},
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
			base, _, logs, exited, stop := startServe(t, "--log-level", "debug")
			defer stop()

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

// twoAppsFile is an apps file of two apps whose key files do not exist:
// the intake never reads them.
const twoAppsFile = `apps:
  - sdkappid: 1400000000
    name: prod
    secret_key_file: /nonexistent/tim_key_prod
  - sdkappid: 1400000001
    secret_key_file: /nonexistent/tim_key_staging
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeServesTheAppsFile: with TIM_APPS_FILE, the intake serves its
// apps without their key files; a POST names its app and lands in that
// app's queue; a token limited to one app is refused another.
func TestServeServesTheAppsFile(t *testing.T) {
	clearServeEnv(t)
	dir := t.TempDir()
	rs := redistest.Start(t)
	t.Setenv("REDIS_URL", rs.URL)
	t.Setenv("TIM_SDKAPPID", "")
	t.Setenv("TIM_APPS_FILE", writeFile(t, dir, "apps.yaml", twoAppsFile))
	t.Setenv("INTAKE_TOKENS_FILE", writeFile(t, dir, "tokens", "support-desk:"+serveTestSecret+" apps=1400000001\n"))
	t.Setenv("INTAKE_ADDR", "127.0.0.1:0")
	base, line, logs, exited, stop := startServe(t)
	defer stop()
	if !strings.Contains(line, "(apps 1400000000 (prod), 1400000001, 1 clients)") {
		t.Errorf("the start line does not name the apps: %q", line)
	}
	post := func(query string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/recalls"+query,
			strings.NewReader(`{"From_Account":"vinson","To_Account":"dramon","MsgKey":"31906_833502_1572869830"}`))
		req.Header.Set("Authorization", "Bearer "+serveTestSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("?sdkappid=1400000001")
	var got intake.Queued
	err := json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST for app 1400000001: %d %+v %v", resp.StatusCode, got, err)
	}
	info, err := asynq.NewInspectorFromRedisClient(rs.Client(t)).GetTaskInfo(tasks.AppQueue(tasks.QueueUrgent, 1400000001), got.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := tasks.Decode(info.Payload); err != nil || r.SDKAppID != 1400000001 || r.RequestedBy != "support-desk" {
		t.Fatalf("queued %+v (%v); want app 1400000001's, by support-desk", r, err)
	}
	for query, want := range map[string]int{"?sdkappid=1400000000": http.StatusForbidden, "": http.StatusUnprocessableEntity} {
		resp := post(query)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %q: %d, want %d", query, resp.StatusCode, want)
		}
	}
	stop()
	if code := <-exited; code != exitOK {
		t.Fatalf("serve exited with %d after cancel: %s", code, logs)
	}
	if strings.Contains(logs.String(), serveTestSecret) {
		t.Fatalf("the token reached the log:\n%s", logs)
	}
}

// startServe runs "recallq serve args..." until stop, and waits until it
// listens: it returns the base URL, the start line, the log, the exit code
// channel and stop.
func startServe(t *testing.T, args ...string) (base, line string, logs *logtest.Buffer, exited chan int, stop func()) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	out, logs := &logtest.Buffer{}, &logtest.Buffer{}
	exited = make(chan int, 1)
	go func() { exited <- Main(ctx, append([]string{"serve"}, args...), out, logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if line, ok := strings.CutPrefix(out.String(), "intake listening on "); ok {
			return strings.Fields(line)[0], line, logs, exited, stop
		}
		select {
		case code := <-exited:
			stop()
			t.Fatalf("serve exited with %d: %s", code, logs)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("serve did not start: %s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
