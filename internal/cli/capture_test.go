package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redistest"
)

func TestCaptureRefusesToRunOpen(t *testing.T) {
	campaignEnv(t)
	t.Setenv("CAPTURE_TOKEN", "")
	t.Setenv("CAPTURE_PATH_SECRET", "")
	t.Setenv("CAPTURE_ALLOW_IPS", "")
	code, _, errOut := run(t, "capture", "--addr", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(errOut, "no authentication") ||
		!strings.Contains(errOut, "CAPTURE_TOKEN_FILE") || !strings.Contains(errOut, "CAPTURE_ALLOW_IPS") || !strings.Contains(errOut, "CAPTURE_PATH_SECRET") {
		t.Fatalf("exit %d, %q; want a usage error naming the missing authentication and the settings that give it", code, errOut)
	}
	code, _, errOut = run(t, "capture", "--addr", "127.0.0.1:0", "--allow-ips", "10.0.0.0/8,not-an-ip")
	if code != exitUsage || !strings.Contains(errOut, `"not-an-ip" is not an address`) {
		t.Fatalf("exit %d, %q; want the bad address named", code, errOut)
	}
}

// TestCaptureKeepsItsSecretsOutOfEveryOutput runs the capture as the
// command line does, with a callback token, a secret path and a Redis
// password, sends it good and bad callbacks, and searches its output and
// its answers for the secrets.
func TestCaptureKeepsItsSecretsOutOfEveryOutput(t *testing.T) {
	const (
		token     = "capture-token-8e2f1a9c4b7d"
		pathSec   = "path-secret-5c3e7a1f"
		redisPass = "redis-pass-2d9b4e6a1c"
	)
	rs := redistest.Start(t, "--requirepass", redisPass)
	t.Setenv("REDIS_URL", fmt.Sprintf("redis://:%s@%s/0", redisPass, rs.Addr))
	t.Setenv("TIM_SDKAPPID", "1400000000")
	t.Setenv("CAPTURE_TOKEN", token)
	t.Setenv("CAPTURE_PATH_SECRET", pathSec)
	t.Setenv("CAPTURE_ALLOW_IPS", "")
	addr, out, errOut, stop := runCapture(t, "--log-level", "debug")
	base := "http://" + addr + capture.CallbackPath
	var answers strings.Builder
	post := func(target, body string) int {
		resp, err := http.Post(target, "application/json", strings.NewReader(body))
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers.Write(b)
		return resp.StatusCode
	}
	now := time.Now().Unix()
	q := func(tok string) string {
		return fmt.Sprintf("?SdkAppid=1400000000&CallbackCommand=C2C.CallbackAfterSendMsg&contenttype=json&RequestTime=%d&Sign=%s", now, capture.SignFor(tok, now))
	}
	body := fmt.Sprintf(`{"From_Account":"a","To_Account":"b","MsgSeq":1,"MsgRandom":2,"MsgTime":%d,"MsgKey":"1_2_%d","SendMsgResult":0}`, now, now)
	deadline := time.Now().Add(10 * time.Second)
	for post(base+"/"+pathSec+q(token), body) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("the capture did not answer a good callback; stderr:\n%s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for target, want := range map[string]int{
		base + "/" + pathSec + q("wrong-token"): http.StatusForbidden,
		base + q(token):                         http.StatusNotFound,
		base + "/" + pathSec + q(token) + "x":   http.StatusForbidden,
	} {
		if got := post(target, body); got != want {
			t.Errorf("%s answered %d, want %d", strings.ReplaceAll(target, token, "TOKEN"), got, want)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("capture exit %d: %s", code, errOut.String())
	}
	all := out.String() + errOut.String() + answers.String()
	for _, secret := range []string{token, pathSec, redisPass} {
		if strings.Contains(all, secret) {
			t.Errorf("a secret reached the output or an answer: %q", secret)
		}
	}
	if !strings.Contains(errOut.String(), "refused") {
		t.Errorf("the debug log does not show the refusals:\n%s", errOut.String())
	}
}

// TestCaptureServesEveryAppOfTheAppsFile: in a deployment of several apps
// (TIM_APPS_FILE, no TIM_SDKAPPID) the capture accepts the callbacks of
// each app of the file, as the intake serves each; it refused to start.
func TestCaptureServesEveryAppOfTheAppsFile(t *testing.T) {
	campaignEnv(t)
	t.Setenv("TIM_SDKAPPID", "")
	writeAppsFile(t, true)
	const token = "capture-token-apps-3f9a"
	t.Setenv("CAPTURE_TOKEN", token)
	t.Setenv("CAPTURE_PATH_SECRET", "")
	t.Setenv("CAPTURE_ALLOW_IPS", "")
	addr, _, errOut, stop := runCapture(t)
	now := time.Now().Unix()
	post := func(app uint64) int {
		target := fmt.Sprintf("http://%s%s?SdkAppid=%d&CallbackCommand=C2C.CallbackAfterSendMsg&contenttype=json&RequestTime=%d&Sign=%s",
			addr, capture.CallbackPath, app, now, capture.SignFor(token, now))
		body := fmt.Sprintf(`{"From_Account":"a","To_Account":"b","MsgSeq":1,"MsgRandom":2,"MsgTime":%d,"MsgKey":"1_2_%d","SendMsgResult":0}`, now, now)
		resp, err := http.Post(target, "application/json", strings.NewReader(body))
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for post(1400000000) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("the capture did not accept a callback of the first app; stderr:\n%s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := post(1400000001); got != http.StatusOK {
		t.Errorf("a callback of the file's second app answered %d, want 200", got)
	}
	if got := post(1400000007); got == http.StatusOK {
		t.Errorf("a callback of an app not in the file was accepted")
	}
	if code := stop(); code != 0 {
		t.Fatalf("capture exit %d: %s", code, errOut.String())
	}
}

// runCapture runs `recallq capture` on a free port with args until stop,
// which returns its exit code (a stop it was not asked for ends the test
// too, through the cleanup).
func runCapture(t *testing.T, args ...string) (addr string, out, errOut *logtest.Buffer, stop func() int) {
	t.Helper()
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut = &logtest.Buffer{}, &logtest.Buffer{}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, append([]string{"capture", "--addr", addr}, args...), out, errOut) }()
	stopped, code := false, 0
	stop = func() int {
		if !stopped {
			cancel()
			code, stopped = <-done, true
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return addr, out, errOut, stop
}
