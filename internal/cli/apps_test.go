package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/internal/redistest"
)

// writeAppsFile writes an apps file listing chat-prod (1400000000) and,
// with two, chat-staging (1400000001), each with a key file of its own,
// and points TIM_APPS_FILE at it.
func writeAppsFile(t *testing.T, two bool) {
	t.Helper()
	dir := t.TempDir()
	yaml := "apps:\n"
	for i, name := range []string{"chat-prod", "chat-staging"} {
		if i == 1 && !two {
			break
		}
		key := fmt.Sprintf("%s.key", name)
		if err := os.WriteFile(filepath.Join(dir, key), []byte("secret-of-"+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		yaml += fmt.Sprintf("  - sdkappid: %d\n    name: %s\n    endpoint: http://127.0.0.1:1\n    secret_key_file: %s\n    rate: 50\n", 1400000000+i, name, key)
	}
	path := filepath.Join(dir, "apps.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TIM_APPS_FILE", path)
}

// `recallq worker` with an apps file serves every app in one process: one
// asynq server per app on its app's queues, one /metrics with each app's
// series, ready once both have started, and a cancel (SIGTERM) stops both.
func TestWorkerServesEveryAppOfTheAppsFile(t *testing.T) {
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	writeAppsFile(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, stderr := startWorker(t, ctx)
	base := "http://" + addr
	_, body := metricsProbe(base + "/metrics")
	for _, want := range []string{metrics.ConfigErrors + `{app="chat-prod"} 0`, metrics.ConfigErrors + `{app="chat-staging"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Each app's bucket runs at its own rate from the file (50), paced a
	// little below it.
	for _, app := range []string{"chat-prod", "chat-staging"} {
		var r float64
		_, line, _ := strings.Cut(body, "\n"+metrics.LimiterRate+`{api="admin_msgwithdraw",app="`+app+`"} `)
		if _, err := fmt.Sscan(line, &r); err != nil || r <= 0 || r > 50 {
			t.Errorf("%s{app=%q} = %v (%v), want in (0, 50]", metrics.LimiterRate, app, r, err)
		}
	}
	if n := strings.Count(body, "\ngo_goroutines "); n != 1 {
		t.Errorf("/metrics has go_goroutines %d times, want once", n)
	}
	if strings.Contains(body, "secret-of-") || strings.Contains(stderr.String(), "secret-of-") {
		t.Error("a secret key shows in /metrics or the log")
	}

	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.Addr})
	defer insp.Close()
	servers, err := insp.Servers()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, srv := range servers {
		for q := range srv.Queues {
			served[q] = true
		}
	}
	for _, q := range []string{"recall_urgent:1400000000", "recall_bulk:1400000000", "recall_urgent:1400000001", "recall_bulk:1400000001"} {
		if !served[q] {
			t.Errorf("no asynq server of the process serves %s (servers: %d)", q, len(servers))
		}
	}

	cancel() // SIGTERM
	waitExit(t, done, stderr)
	if n := strings.Count(stderr.String(), `"msg":"worker stopped"`); n != 2 {
		t.Errorf("%d workers said they stopped, want 2:\n%s", n, stderr.String())
	}
}

// With an apps file, the commands that act on one app take it from
// --sdkappid; with one app in the file nobody has to name it.
func TestSDKAppIDPicksTheApp(t *testing.T) {
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	enqueueArgs := []string{"enqueue", "--from", "vinson", "--to", "dramon", "--msgkey", "31906_833502_1572869830"}
	for _, tc := range []struct {
		name      string
		two       bool
		env       map[string]string
		args      []string
		wantCode  int
		wantErr   string
		wantQueue string
	}{
		{name: "several apps, none named", two: true, wantCode: exitUsage,
			wantErr: "TIM_APPS_FILE lists 2 apps: say which one enqueue is for with --sdkappid (chat-prod (1400000000), chat-staging (1400000001))"},
		{name: "several apps, one named", two: true, args: []string{"--sdkappid", "1400000001"}, wantQueue: "recall_urgent:1400000001"},
		{name: "an app not in the file", two: true, args: []string{"--sdkappid", "1400000007"}, wantCode: exitUsage,
			wantErr: "--sdkappid 1400000007 is not in TIM_APPS_FILE"},
		{name: "not a number", two: true, args: []string{"--sdkappid", "prod"}, wantCode: exitUsage,
			wantErr: `--sdkappid "prod" is not a number`},
		{name: "one app, not named", wantQueue: "recall_urgent:1400000000"},
		{name: "apps file and TIM_SDKAPPID", env: map[string]string{"TIM_SDKAPPID": "1400000000"}, wantCode: exitUsage,
			wantErr: "TIM_APPS_FILE is set, and so is TIM_SDKAPPID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeAppsFile(t, tc.two)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, out, errOut := run(t, append(enqueueArgs, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("code %d, stderr %q; want %d and %q (stdout %q)", code, errOut, tc.wantCode, tc.wantErr, out)
			}
			if tc.wantQueue == "" {
				return
			}
			insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.Addr})
			defer insp.Close()
			id := strings.Fields(out)[0]
			if _, err := insp.GetTaskInfo(tc.wantQueue, id); err != nil {
				t.Errorf("task %s is not in %s: %v", id, tc.wantQueue, err)
			}
		})
	}
}

// A producer needs no secret key: enqueue reads the apps file without its
// key files, which the worker cannot do without (and says which app's).
func TestEnqueueNeedsNoKeyFile(t *testing.T) {
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	writeAppsFile(t, true)
	if err := os.Remove(filepath.Join(filepath.Dir(os.Getenv("TIM_APPS_FILE")), "chat-staging.key")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "enqueue", "--sdkappid", "1400000001", "--from", "vinson", "--to", "dramon", "--msgkey", "31906_833502_1572869830")
	if code != 0 || !strings.HasSuffix(out, " queued\n") {
		t.Fatalf("enqueue without the key file: code %d, %q %q", code, out, errOut)
	}
	code, _, errOut = run(t, "worker", "--metrics-addr", "")
	if code != exitUsage || !strings.Contains(errOut, "app 2 (sdkappid 1400000001): secret_key_file") {
		t.Fatalf("worker without chat-staging's key file: code %d, %q; want 2 naming the app and secret_key_file", code, errOut)
	}
}

// campaign list and status name each campaign's app by its name from the
// apps file.
func TestCampaignListNamesTheApp(t *testing.T) {
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	writeAppsFile(t, true)
	csv := filepath.Join(t.TempDir(), "spam.csv")
	if err := os.WriteFile(csv, []byte("From_Account,To_Account,MsgKey\nvinson,dramon,31906_833502_1572869830\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "campaign", "start", "--name", "spam", "--sdkappid", "1400000001", csv); code != 0 {
		t.Fatalf("campaign start: %d %q %q", code, out, errOut)
	}
	code, out, errOut := run(t, "campaign", "list")
	if code != 0 || !strings.Contains(out, "chat-staging (1400000001)") {
		t.Errorf("campaign list: %d %q %q; want the app chat-staging (1400000001)", code, out, errOut)
	}
	code, out, errOut = run(t, "campaign", "status", "spam")
	if code != 0 || !strings.Contains(out, "campaign spam (app chat-staging (1400000001))") {
		t.Errorf("campaign status: %d %q %q; want the app chat-staging (1400000001)", code, out, errOut)
	}
}

// The worker refuses a single-app setting beside an apps file, naming it,
// and an --sdkappid that is not in the file.
func TestWorkerRefusesMixedSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"TIM_SECRET_KEY", map[string]string{"TIM_SECRET_KEY": "k"}, nil, "TIM_APPS_FILE is set, and so is TIM_SECRET_KEY"},
		{"--rate", nil, []string{"--rate", "100"}, "TIM_APPS_FILE is set, and so is --rate"},
		{"RECALL_RATE and --endpoint", map[string]string{"RECALL_RATE": "100"}, []string{"--endpoint", "http://127.0.0.1:1"},
			"TIM_APPS_FILE is set, and so is RECALL_RATE, --endpoint"},
		{"an app not in the file", nil, []string{"--sdkappid", "1400000007"}, "--sdkappid 1400000007 is not in TIM_APPS_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeAppsFile(t, true)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := run(t, append([]string{"worker", "--metrics-addr", ""}, tc.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("code %d, stderr %q; want %d and %q", code, errOut, exitUsage, tc.wantErr)
			}
			if strings.Contains(errOut, "secret-of-") {
				t.Errorf("the error shows a key: %q", errOut)
			}
		})
	}
}

// A worker run from an apps file whose app is answered a configuration
// error (60006) names the fix in the app's field of the file, not
// TIM_SDKAPPID, which is refused beside the file.
func TestAppsFileWorkerFixNamesTheFile(t *testing.T) {
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	tencent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"ActionStatus":"FAIL","ErrorCode":60006,"ErrorInfo":"SDKAppID invalid"}`)
	}))
	defer tencent.Close()
	writeAppsFile(t, false)
	path := os.Getenv("TIM_APPS_FILE")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "http://127.0.0.1:1", tencent.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, done, stderr := startWorker(t, ctx)
	if code, out, errOut := run(t, "enqueue", "--from", "vinson", "--to", "dramon", "--msgkey", "31906_833502_1572869830"); code != 0 {
		t.Fatalf("enqueue: %d %s %s", code, out, errOut)
	}
	const want = `"fix":"check sdkappid against the Chat console (app chat-prod in TIM_APPS_FILE)"`
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(stderr.String(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if log := stderr.String(); !strings.Contains(log, want) || strings.Contains(log, "TIM_SDKAPPID") {
		t.Errorf("the log lacks %s, or names TIM_SDKAPPID:\n%s", want, log)
	}
	cancel()
	waitExit(t, done, stderr)
}
