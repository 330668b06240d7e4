package cli

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/logtest"
)

// clearDashboardEnv unsets every dashboard setting for the test.
func clearDashboardEnv(t *testing.T) {
	for _, k := range []string{"DASHBOARD_ADDR", "DASHBOARD_USER", "DASHBOARD_PASSWORD", "DASHBOARD_PASSWORD_FILE", "DASHBOARD_READ_ONLY"} {
		t.Setenv(k, "")
	}
}

func TestDashboardRefusesToStartAndSaysWhatToSet(t *testing.T) {
	clearDashboardEnv(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"no credentials", nil, []string{"dashboard"},
			[]string{"DASHBOARD_USER", "DASHBOARD_PASSWORD", "DASHBOARD_PASSWORD_FILE", "--open"}},
		{"no credentials on a public address", map[string]string{"DASHBOARD_ADDR": "0.0.0.0:8080"}, []string{"dashboard"},
			[]string{"DASHBOARD_USER and DASHBOARD_PASSWORD"}},
		{"user without password", map[string]string{"DASHBOARD_USER": "oncall"}, []string{"dashboard"},
			[]string{"DASHBOARD_USER is set but no password", "DASHBOARD_PASSWORD_FILE"}},
		{"password without user", map[string]string{"DASHBOARD_PASSWORD": "hunter2"}, []string{"dashboard"},
			[]string{"DASHBOARD_USER is not"}},
		{"password twice", map[string]string{"DASHBOARD_USER": "oncall", "DASHBOARD_PASSWORD": "hunter2", "DASHBOARD_PASSWORD_FILE": empty}, []string{"dashboard"},
			[]string{"both DASHBOARD_PASSWORD and DASHBOARD_PASSWORD_FILE"}},
		{"empty password file", map[string]string{"DASHBOARD_USER": "oncall", "DASHBOARD_PASSWORD_FILE": empty}, []string{"dashboard"},
			[]string{"DASHBOARD_PASSWORD_FILE", "is empty"}},
		{"missing password file", map[string]string{"DASHBOARD_USER": "oncall", "DASHBOARD_PASSWORD_FILE": filepath.Join(dir, "nope")}, []string{"dashboard"},
			[]string{"DASHBOARD_PASSWORD_FILE: cannot read"}},
		{"open on every interface", nil, []string{"dashboard", "--open", "--addr", "0.0.0.0:8080"},
			[]string{"--open", "only on a loopback address", "0.0.0.0:8080", "DASHBOARD_USER"}},
		{"open on a public address from the environment", map[string]string{"DASHBOARD_ADDR": ":8080"}, []string{"dashboard", "--open"},
			[]string{"only on a loopback address", ":8080"}},
		{"open with credentials", map[string]string{"DASHBOARD_USER": "oncall", "DASHBOARD_PASSWORD": "hunter2"}, []string{"dashboard", "--open"},
			[]string{"--open", "unset them"}},
		{"bad read-only", map[string]string{"DASHBOARD_USER": "oncall", "DASHBOARD_PASSWORD": "hunter2", "DASHBOARD_READ_ONLY": "sometimes"}, []string{"dashboard"},
			[]string{"DASHBOARD_READ_ONLY \"sometimes\": use true or false"}},
		{"bad address", map[string]string{"DASHBOARD_USER": "oncall", "DASHBOARD_PASSWORD": "hunter2"}, []string{"dashboard", "--addr", "8080"},
			[]string{"--addr \"8080\": give host:port"}},
		{"password is not a flag", nil, []string{"dashboard", "--password", "hunter2"},
			[]string{"unknown flag: --password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := run(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, exitUsage, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("stderr shows the password: %q", errOut)
			}
		})
	}
}

// lineWriter hands each complete line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default:
		}
		w.buf = w.buf[i+1:]
	}
}

func TestDashboardServesBehindPasswordFileAndStopsOnCancel(t *testing.T) {
	clearDashboardEnv(t)
	const password = "file-pw-7c1e"
	file := filepath.Join(t.TempDir(), "dashboard_password")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDIS_URL", "redis://:redis-pw-0d9a@127.0.0.1:1/0") // never dialled here
	t.Setenv("DASHBOARD_USER", "oncall")
	t.Setenv("DASHBOARD_PASSWORD_FILE", file)
	t.Setenv("DASHBOARD_READ_ONLY", "true")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lineWriter{lines: make(chan string, 4)}
	var stderr logtest.Buffer
	exit := make(chan int, 1)
	go func() { exit <- Main(ctx, []string{"dashboard", "--addr", "127.0.0.1:0"}, stdout, &stderr) }()

	var line string
	select {
	case line = <-stdout.lines:
	case code := <-exit:
		t.Fatalf("dashboard exited with %d before listening: %s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("dashboard printed no address; stderr: %s", stderr.String())
	}
	// "dashboard on http://127.0.0.1:PORT (user oncall, read-only; queues in redis://:xxxxx@...)"
	f := strings.Fields(line)
	if len(f) < 3 || !strings.HasPrefix(f[2], "http://127.0.0.1:") || !strings.Contains(line, "read-only") {
		t.Fatalf("stdout %q: want the URL and read-only", line)
	}
	url := f[2]

	get := func(path, user, pass string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, bufio.NewReader(res.Body))
		res.Body.Close()
		return res.StatusCode
	}
	if code := get("/healthz", "", ""); code != http.StatusOK {
		t.Errorf("/healthz without credentials: %d, want 200", code)
	}
	if code := get("/", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/ without credentials: %d, want 401", code)
	}
	if code := get("/", "oncall", password+"\n"); code != http.StatusUnauthorized {
		t.Errorf("/ with the file's line break in the password: %d, want 401", code)
	}
	if code := get("/", "oncall", password); code != http.StatusOK {
		t.Errorf("/ with the password from the file: %d, want 200", code)
	}

	cancel()
	select {
	case code := <-exit:
		if code != exitOK {
			t.Errorf("exit code after cancel = %d, want 0; stderr: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dashboard did not stop after its context was cancelled")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "addr="+strings.TrimPrefix(url, "http://")) {
		t.Errorf("the log does not name the address:\n%s", logs)
	}
	for _, secret := range []string{password, "redis-pw-0d9a"} {
		if strings.Contains(logs, secret) || strings.Contains(line, secret) {
			t.Errorf("output shows the secret %q:\nstdout %q\nstderr %s", secret, line, logs)
		}
	}
}
