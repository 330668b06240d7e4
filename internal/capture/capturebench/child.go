package capturebench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/childproc"
)

// childCapture is `recallq capture` as a process of its own, so that its
// CPU can be told from the generator's.
type childCapture struct {
	proc *childproc.Child
	url  string // base URL
}

// childReadyTimeout bounds the child's start; childStopGrace its stop.
const (
	childReadyTimeout = 15 * time.Second
	childStopGrace    = 15 * time.Second
)

// startChild runs exe's capture command against redisURL, its output in
// dir/capture.log, on a port the kernel picks, and returns once it
// listens: the URL is read from its "capture: listening" log line, so no
// port is chosen before it binds.
func startChild(ctx context.Context, procs *childproc.Group, dir, exe, redisURL string) (*childCapture, error) {
	env := childproc.Env("REDIS_URL="+redisURL, "TIM_SDKAPPID="+strconv.Itoa(benchApp),
		"CAPTURE_TOKEN="+benchToken, "CAPTURE_ALLOW_IPS=", "CAPTURE_PATH_SECRET=", "CAPTURE_SDKAPPIDS=")
	c, err := procs.Start(dir, "capture", exe, []string{"capture", "--addr", "127.0.0.1:0", "--log-format", "json"}, env)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(childReadyTimeout)
	for {
		if url := listeningURL(filepath.Join(dir, "capture.log")); url != "" {
			return &childCapture{proc: c, url: url}, nil
		}
		if c.Exited() {
			return nil, fmt.Errorf("the capture exited before it listened (%v); its log ends:\n%s", c.Err(), c.Tail(10))
		}
		if time.Now().After(deadline) {
			c.Kill()
			return nil, fmt.Errorf("the capture did not listen within %s; its log ends:\n%s", childReadyTimeout, c.Tail(10))
		}
		select {
		case <-ctx.Done():
			c.Kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// listeningURL is the url of the "capture: listening" line of the JSON log
// at path, "" before there is one.
func listeningURL(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			URL string `json:"url"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "capture: listening" {
			return line.URL
		}
	}
	return ""
}

// stop ends the child (SIGTERM, then SIGKILL after childStopGrace).
func (c *childCapture) stop() { _ = c.proc.Stop(childStopGrace) }

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
	b, err := os.ReadFile("/proc/" + strconv.Itoa(c.proc.PID()) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis (state is field 3; utime 14, stime 15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if errors.Join(err1, err2) != nil {
		return 0, false
	}
	const ticks = 100 // USER_HZ, fixed at 100 on Linux
	return time.Duration(ut+st) * time.Second / ticks, true
}
