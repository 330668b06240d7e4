package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/redistest"
)

// SimCommand is the recallq subcommand that runs the simulator.
const SimCommand = "imsim"

// Bounds of the simulator's steps.
const (
	simReadyTimeout = 15 * time.Second
	// simCallTimeout bounds one control request.
	simCallTimeout = 10 * time.Second
)

// simProc is the simulator, running as a child process for the whole
// suite: every run resets it.
type simProc struct {
	proc *child
	addr string
	url  string
	http *http.Client
}

// startSim starts "recallq imsim" on a free loopback port with the latency
// and fail rate of o, and waits until it answers. A port taken between the
// choice and the listen is tried again with another.
func startSim(ctx context.Context, procs *children, dir string, o Options, env []string) (*simProc, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := redistest.FreePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args := []string{SimCommand, "--addr", addr, "--latency", o.LatencyMin.String() + "-" + o.LatencyMax.String(),
			"--fail-rate", strconv.FormatFloat(o.FailRate, 'g', -1, 64), "--log-level", o.SimLogLevel}
		c, err := procs.Start(dir, fmt.Sprintf("imsim-%d", attempt), o.Exe, args, env)
		if err != nil {
			return nil, err
		}
		s := &simProc{proc: c, addr: addr, url: "http://" + addr, http: &http.Client{
			Timeout:   simCallTimeout,
			Transport: &http.Transport{MaxIdleConnsPerHost: fateWorkers, IdleConnTimeout: 30 * time.Second},
		}}
		if lastErr = s.waitReady(ctx); lastErr == nil {
			return s, nil
		}
		c.Signal(syscall.SIGKILL)
		c.Wait(5 * time.Second)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = fmt.Errorf("%w; its log ends:\n%s", lastErr, c.Tail(10))
	}
	return nil, fmt.Errorf("start the simulator: %w", lastErr)
}

// waitReady polls GET /sim/stats until it answers, the process exits, or
// simReadyTimeout passes.
func (s *simProc) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(simReadyTimeout)
	for {
		if _, err := s.stats(ctx); err == nil {
			return nil
		}
		if s.proc.Exited() {
			return fmt.Errorf("the simulator exited: %v", s.proc.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the simulator did not answer within %s", simReadyTimeout)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// callAttempts is how many times a control request is sent when no answer
// comes back: every control request is idempotent, and a connection the
// simulator closed during a refusal may still sit in the client's pool.
const callAttempts = 3

// call sends a control request with in (if not nil) as its JSON body and
// decodes the JSON answer into out (if not nil).
func (s *simProc) call(ctx context.Context, method, path string, in, out any) error {
	var payload []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		payload = b
	}
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, s.url+path, body)
		if err != nil {
			return err
		}
		resp, err = s.http.Do(req)
		if err == nil {
			break
		}
		if attempt == callAttempts || ctx.Err() != nil {
			return fmt.Errorf("simulator %s %s: %w", method, path, err)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("simulator %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simulator %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("simulator %s %s: %w", method, path, err)
		}
	}
	return nil
}

// reset clears the simulator's store, faults and statistics.
func (s *simProc) reset(ctx context.Context) error {
	return s.call(ctx, http.MethodPost, "/sim/reset", nil, nil)
}

// simFaults is the body of POST /sim/faults. It replaces every fault, so
// each one carries the run's latency and fail rate.
type simFaults struct {
	FailRate    float64
	LatencyMin  string
	LatencyMax  string
	RefuseFor   string `json:",omitempty"`
	CodeFor     string `json:",omitempty"`
	Code        int    `json:",omitempty"`
	AnswerDelay string `json:",omitempty"`
}

// setFaults sets the simulator's faults.
func (s *simProc) setFaults(ctx context.Context, f simFaults) error {
	return s.call(ctx, http.MethodPost, "/sim/faults", f, nil)
}

// forget makes a message not exist: its recall answers 20022.
func (s *simProc) forget(ctx context.Context, m message) error {
	return s.call(ctx, http.MethodPost, "/sim/forget",
		map[string]string{"From_Account": m.from, "To_Account": m.to, "MsgKey": m.key}, nil)
}

// fate lists every code the simulator answered for the message.
func (s *simProc) fate(ctx context.Context, m message) ([]int, error) {
	q := url.Values{"from": {m.from}, "to": {m.to}, "msgkey": {m.key}}
	var out struct {
		Codes []int `json:"codes"`
	}
	if err := s.call(ctx, http.MethodGet, "/sim/fate?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return out.Codes, nil
}

// stats reads GET /sim/stats.
func (s *simProc) stats(ctx context.Context) (imsim.Stats, error) {
	var st imsim.Stats
	err := s.call(ctx, http.MethodGet, "/sim/stats", nil, &st)
	return st, err
}

// refused reports whether a new connection to the simulator is refused now.
func (s *simProc) refused() bool {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// stop stops the simulator gracefully.
func (s *simProc) stop() error {
	return s.proc.Stop(imsim.ShutdownTimeout + 2*time.Second)
}
