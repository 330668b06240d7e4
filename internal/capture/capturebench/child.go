package capturebench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/childproc"
)

// childCapture is `recallq capture` as a process of its own, so that its
// CPU can be told from the generator's.
type childCapture struct {
	cmd    *exec.Cmd
	url    string // base URL
	exited chan struct{}
}

// childReadyTimeout bounds the child's start.
const childReadyTimeout = 15 * time.Second

// startChild runs exe's capture command on a port the kernel picks,
// against redisURL, and returns once it listens: the URL is read from its
// "capture: listening" log line, so no port is chosen before it binds.
func startChild(ctx context.Context, exe, redisURL string) (*childCapture, error) {
	cmd := exec.Command(exe, "capture", "--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "info")
	cmd.Env = childproc.Env("REDIS_URL="+redisURL, "TIM_SDKAPPID="+strconv.Itoa(benchApp),
		"CAPTURE_TOKEN="+benchToken, "CAPTURE_ALLOW_IPS=", "CAPTURE_PATH_SECRET=", "CAPTURE_SDKAPPIDS=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s capture: %w", exe, err)
	}
	c := &childCapture{cmd: cmd, exited: make(chan struct{})}
	found := make(chan string, 1)
	var tail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "capture: listening" {
				select {
				case found <- line.URL:
				default:
				}
			}
			if len(tail) < 20 {
				tail = append(tail, sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	select {
	case c.url = <-found:
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("the capture exited before it listened: %v", strings.Join(tail, "\n"))
	case <-time.After(childReadyTimeout):
	case <-ctx.Done():
	}
	c.stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("the capture did not listen within %s", childReadyTimeout)
}

// stop ends the child (SIGTERM, then SIGKILL after a few seconds).
func (c *childCapture) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// stats is the child's GET /stats.
func (c *childCapture) stats() (capture.Stats, error) {
	var st capture.Stats
	resp, err := http.Get(c.url + "/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// cpu is the CPU time the child used so far, from /proc/PID/stat (Linux:
// user and system time, 10 ms ticks); ok is false elsewhere.
func (c *childCapture) cpu() (time.Duration, bool) {
	return procCPU(c.cmd.Process.Pid)
}

// procCPU reads utime+stime of pid from /proc.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis (state is field 3; utime 14, stime 15).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, false
	}
	const ticks = 100 // USER_HZ, fixed at 100 on Linux
	return time.Duration(ut+st) * time.Second / ticks, true
}
