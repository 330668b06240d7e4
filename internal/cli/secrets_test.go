package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

// TestNoSecretReachesAnyOutput runs the worker, the dashboard and the intake
// as the command line runs them, with a known secret key, Redis password,
// dashboard password and intake token, drives recalls down every path that
// stores or prints an error (dead letter, configuration error, a broken
// connection whose Go error holds the whole URL, a refused UserSig), then
// searches every log line, every stored task error, every HTTP response and
// every metric for the secrets and for every UserSig the API received.
func TestNoSecretReachesAnyOutput(t *testing.T) {
	const (
		app       = 1400000000
		secretKey = "tim-secret-7c1d0e93a5b44f0e8a1f2d3c4b5a6978"
		redisPass = "redis-pass-4b1a7d2e9c"
		dashPass  = "dash-pass-93e1f0c2b7"
		token     = "intake-token-5d2e8f1a3c7b9e04"
	)
	rs := redistest.Start(t, "--requirepass", redisPass)
	redisURL := fmt.Sprintf("redis://:%s@%s/0", redisPass, rs.Addr)

	sim, err := imsim.New(imsim.Config{SDKAppID: app, SecretKey: secretKey})
	if err != nil {
		t.Fatal(err)
	}
	sigs := &seenSigs{}
	api := httptest.NewServer(sigs.wrap(sim))
	defer api.Close()

	ports := make([]string, 3)
	for i := range ports {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	metricsAddr, dashAddr, intakeAddr := ports[0], ports[1], ports[2]
	for k, v := range map[string]string{
		"REDIS_URL": redisURL, "TIM_SDKAPPID": fmt.Sprint(app), "TIM_SECRET_KEY": secretKey,
		"TIM_ENDPOINT": api.URL, "DASHBOARD_USER": "oncall", "DASHBOARD_PASSWORD": dashPass,
		"INTAKE_TOKEN": token, "LOG_LEVEL": "debug", "LOG_FORMAT": "json",
	} {
		t.Setenv(k, v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var outputs []*logtest.Buffer
	var wg sync.WaitGroup
	run := func(args ...string) {
		out, errOut := &logtest.Buffer{}, &logtest.Buffer{}
		outputs = append(outputs, out, errOut)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := Main(ctx, args, out, errOut); code != 0 {
				t.Errorf("recallq %s exited %d:\n%s", strings.Join(args, " "), code, errOut)
			}
		}()
	}
	run("worker", "--concurrency", "4", "--metrics-addr", metricsAddr)
	run("dashboard", "--addr", dashAddr)
	run("serve", "--addr", intakeAddr)
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, u := range []string{"http://" + metricsAddr + "/readyz", "http://" + dashAddr + "/healthz", "http://" + intakeAddr + "/readyz"} {
		waitOK(t, u)
	}

	// One recall down each path.
	rows := map[string]tasks.Recall{}
	add := func(name, msgKey string) tasks.Recall {
		r := tasks.Recall{SDKAppID: app, FromAccount: "from_" + name, ToAccount: "to_" + name, MsgKey: msgKey}
		rows[name] = r
		return r
	}
	add("recalled", "1_1_1")
	sim.ForgetMessage(add("dead", "2_2_2").FromAccount, "to_dead", "2_2_2")
	sim.Force(add("config", "3_3_3").MsgKey, 90009, 0)
	sim.Force(add("sig", "4_4_4").MsgKey, 70001, 1)
	sigs.breakOn(add("broken", "5_5_5").MsgKey)
	var batch []map[string]string
	for _, r := range rows {
		batch = append(batch, map[string]string{"From_Account": r.FromAccount, "To_Account": r.ToAccount, "MsgKey": r.MsgKey})
	}
	body, _ := json.Marshal(map[string]any{"recalls": batch})
	var responses []string
	responses = append(responses, do(t, "POST", "http://"+intakeAddr+"/v1/recalls", "Bearer "+token, body, http.StatusAccepted))

	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr, Password: redisPass})
	defer insp.Close()
	until := func(name string, ok func(*asynq.TaskInfo) bool) *asynq.TaskInfo {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			info, err := insp.GetTaskInfo(tasks.AppQueue(tasks.QueueUrgent, app), rows[name].TaskID())
			if err == nil && ok(info) {
				return info
			}
			if time.Now().After(deadline) {
				t.Fatalf("recall %q never reached its state: %+v %v", name, info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var stored []string
	for name, ok := range map[string]func(*asynq.TaskInfo) bool{
		"recalled": func(i *asynq.TaskInfo) bool { return i.State == asynq.TaskStateCompleted },
		"sig":      func(i *asynq.TaskInfo) bool { return i.State == asynq.TaskStateCompleted },
		"dead":     func(i *asynq.TaskInfo) bool { return i.State == asynq.TaskStateArchived },
		"config":   func(i *asynq.TaskInfo) bool { return strings.Contains(i.LastErr, "configuration error") },
		"broken":   func(i *asynq.TaskInfo) bool { return strings.Contains(i.LastErr, "no answer") },
	} {
		info := until(name, ok)
		stored = append(stored, info.LastErr)
		responses = append(responses, do(t, "GET", "http://"+intakeAddr+"/v1/recalls/"+info.ID, "Bearer "+token, nil, http.StatusOK))
	}
	if !strings.Contains(strings.Join(stored, "\n"), "usersig=REDACTED") {
		t.Fatal("the broken connection's stored error shows no redacted URL: the test did not reach the path it guards")
	}

	basic := "Basic " + basicAuth("oncall", dashPass)
	for _, path := range []string{"/", "/api/queues", "/api/redis_info", "/api/servers",
		"/api/queues/recall_urgent:1400000000/retry_tasks", "/api/queues/recall_urgent:1400000000/archived_tasks",
		"/api/queues/recall_urgent:1400000000/completed_tasks"} {
		responses = append(responses, do(t, "GET", "http://"+dashAddr+path, basic, nil, http.StatusOK))
	}
	metrics := do(t, "GET", "http://"+metricsAddr+"/metrics", "", nil, http.StatusOK)
	responses = append(responses, metrics, do(t, "GET", "http://"+intakeAddr+"/openapi.yaml", "", nil, http.StatusOK))

	cancel()
	wg.Wait()
	seen := sigs.all()
	if len(seen) == 0 {
		t.Fatal("no UserSig reached the API: the test proves nothing")
	}
	secrets := append([]string{secretKey, redisPass, dashPass, token}, seen...)
	check := func(where, text string) {
		for _, s := range secrets {
			if strings.Contains(text, s) || strings.Contains(text, url.QueryEscape(s)) {
				t.Errorf("%s contains a secret (%.12s...)", where, s)
			}
		}
	}
	for i, o := range outputs {
		check(fmt.Sprintf("output %d of the commands", i), o.String())
	}
	for i, s := range stored {
		check(fmt.Sprintf("stored task error %d", i), s)
	}
	for i, r := range responses {
		check(fmt.Sprintf("HTTP response %d", i), r)
	}
	for _, want := range []string{"configuration error", "usersig=REDACTED"} {
		if !strings.Contains(joined(outputs), want) {
			t.Errorf("the logs never say %q: the error paths were not exercised", want)
		}
	}
	for i, out := range configErrorOutputs(t, redisPass, token, rs.Addr) {
		check(fmt.Sprintf("configuration error %d", i), out)
	}
}

// configErrorOutputs runs each command with settings that are wrong in a
// way that involves a secret (a Redis URL that does not parse because of
// its password, a password given as a user name, a malformed tokens file,
// a refused password) and returns what each printed. Each must fail.
func configErrorOutputs(t *testing.T, redisPass, token, redisAddr string) []string {
	t.Helper()
	dir := t.TempDir()
	badTokens := dir + "/tokens"
	if err := os.WriteFile(badTokens, []byte("ops "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A password with the characters that end a URL's host part.
	slashy := "/" + redisPass + "?#"
	var outs []string
	for _, tc := range []struct {
		env  map[string]string
		args []string
	}{
		{map[string]string{"REDIS_URL": "redis://:" + slashy + "@" + redisAddr + "/0"}, []string{"worker"}},
		{map[string]string{"REDIS_URL": "redis://:" + slashy + "@" + redisAddr + "/0"}, []string{"serve"}},
		{map[string]string{"REDIS_URL": "redis://:" + slashy + "@" + redisAddr + "/0"}, []string{"dashboard"}},
		{map[string]string{"REDIS_URL": "redis-sentinel://:" + slashy + "@h1,h2/0?master=m"}, []string{"campaign", "status", "x"}},
		{map[string]string{"REDIS_URL": "redis://" + redisPass + "@" + redisAddr + "/0"}, []string{"enqueue", "--from", "a", "--to", "b", "--msgkey", "1_1_1"}},
		{map[string]string{"REDIS_URL": "redis://:" + redisPass + "x@" + redisAddr + "/0"}, []string{"enqueue", "--from", "a", "--to", "b", "--msgkey", "1_1_1"}},
		{map[string]string{"INTAKE_TOKEN": "", "INTAKE_TOKENS_FILE": badTokens}, []string{"serve"}},
		{map[string]string{"INTAKE_TOKEN": token + " x"}, []string{"serve"}},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out, errOut logtest.Buffer
		code := Main(ctx, tc.args, &out, &errOut)
		cancel()
		if code == exitOK {
			t.Errorf("recallq %s with %v succeeded; the bad setting was not reached", strings.Join(tc.args, " "), tc.env)
		}
		outs = append(outs, out.String()+errOut.String())
	}
	for i, want := range map[int]string{0: "percent-encode", 4: "no password", 5: "refused the password", 6: "line 1"} {
		if !strings.Contains(outs[i], want) {
			t.Errorf("configuration error %d does not say %q: the path was not reached:\n%s", i, want, outs[i])
		}
	}
	return outs
}

func joined(bs []*logtest.Buffer) string {
	var b strings.Builder
	for _, x := range bs {
		b.WriteString(x.String())
	}
	return b.String()
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func waitOK(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200 (%v)", u, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func do(t *testing.T, method, u, auth string, body []byte, want int) string {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, u, resp.StatusCode, want, b)
	}
	return string(b)
}

// seenSigs records every UserSig that reached the API, and breaks the
// connection of requests for chosen MsgKeys (the client then gets Go's
// *url.Error, whose text holds the whole URL).
type seenSigs struct {
	mu     sync.Mutex
	sigs   map[string]bool
	broken map[string]bool
}

func (s *seenSigs) breakOn(msgKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken == nil {
		s.broken = map[string]bool{}
	}
	s.broken[msgKey] = true
}

func (s *seenSigs) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct{ MsgKey string }
		_ = json.Unmarshal(body, &req)
		s.mu.Lock()
		if sig := r.URL.Query().Get("usersig"); sig != "" {
			if s.sigs == nil {
				s.sigs = map[string]bool{}
			}
			s.sigs[sig] = true
		}
		broken := s.broken[req.MsgKey]
		s.mu.Unlock()
		if broken {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *seenSigs) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sigs))
	for sig := range s.sigs {
		out = append(out, sig)
	}
	return out
}
