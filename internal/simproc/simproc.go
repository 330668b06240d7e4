// Package simproc runs the simulator (`recallq imsim`) as a child process
// of the lab's benchmark and fault suite: on a free loopback port, waited
// for until it answers, and driven through its /sim/ control endpoints.
// It also names the simulated app the simulator and the lab's workers
// share: SDKAppID, a fresh secret key per run, and the children's
// environment that carries them.
package simproc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/recallq/recallq/internal/childproc"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/redistest"
)

// Command is the recallq subcommand that runs the simulator.
const Command = "imsim"

// SDKAppID is the simulated app: nothing real.
const SDKAppID = 1400000000

// NewSecret returns a random secret key for the simulated app, 64 hex
// digits: a new one for every run.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AppEnv is a child's environment (childproc.Env) naming the simulated
// app and its secret key.
func AppEnv(secret string) []string {
	return childproc.Env("TIM_SDKAPPID="+strconv.Itoa(SDKAppID), "TIM_SECRET_KEY="+secret)
}

// ReadyTimeout bounds the simulator's start.
const ReadyTimeout = 15 * time.Second

// Defaults of Config.
const (
	// DefaultCallTimeout bounds one control request.
	DefaultCallTimeout = 5 * time.Second
	// DefaultAttempts: a control request is sent once.
	DefaultAttempts = 1
)

// startAttempts is how many free ports Start tries.
const startAttempts = 3

// Config configures Start.
type Config struct {
	// Exe is the binary whose Command runs the simulator. Required.
	Exe string
	// Args follow "imsim --addr HOST:PORT": latency, fail rate, log level.
	Args []string
	// Env is the child's environment (nil: this process's).
	Env []string
	// Dir receives the log, Name-ATTEMPT.log. Required.
	Dir string
	// Name names the log. Default "imsim".
	Name string
	// HTTP sends the control requests. Default: a client with
	// DefaultCallTimeout.
	HTTP *http.Client
	// Attempts is how many times a control request is sent when no answer
	// comes back (every control request is idempotent). Default
	// DefaultAttempts.
	Attempts int
	// Favour raises the process's priority to Nice (Favour): it stands
	// in for a remote server, whose counting this machine's load must not
	// stall. Sim.Priority says how it went.
	Favour bool
}

// Sim is the simulator running as a child process.
type Sim struct {
	// Proc is the process.
	Proc *childproc.Child
	// Addr is where it listens, HOST:PORT; URL is its base URL.
	Addr, URL string
	// Priority is how it is scheduled, for a report: "nice -10", or the
	// default priority and why; "" without Config.Favour.
	Priority string

	http     *http.Client
	attempts int
}

// Start starts the simulator on a free loopback port and waits until it
// answers. A port taken between the choice and the listen is tried again
// with another. The process belongs to procs.
func Start(ctx context.Context, procs *childproc.Group, cfg Config) (*Sim, error) {
	if cfg.Name == "" {
		cfg.Name = "imsim"
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: DefaultCallTimeout}
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	var lastErr error
	for attempt := range startAttempts {
		port, err := redistest.FreePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args := append([]string{Command, "--addr", addr}, cfg.Args...)
		c, err := procs.Start(cfg.Dir, fmt.Sprintf("%s-%d", cfg.Name, attempt), cfg.Exe, args, cfg.Env)
		if err != nil {
			return nil, err
		}
		s := &Sim{Proc: c, Addr: addr, URL: "http://" + addr, http: cfg.HTTP, attempts: cfg.Attempts}
		if cfg.Favour {
			s.Priority = fmt.Sprintf("nice %d", Nice)
			if err := Favour(c.PID()); err != nil {
				s.Priority = fmt.Sprintf("default priority (raising it failed: %v)", err)
			}
		}
		if lastErr = s.waitReady(ctx); lastErr == nil {
			return s, nil
		}
		c.Kill()
		c.Wait(5 * time.Second)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = fmt.Errorf("%w; its log ends:\n%s", lastErr, c.Tail(10))
	}
	return nil, fmt.Errorf("start the simulator: %w", lastErr)
}

// waitReady polls GET /sim/stats until it answers, the process exits, or
// ReadyTimeout passes. The answer must come from s's own process: one that
// lost its port to another simulator (another suite's, started first)
// exits, and the winner would answer in its place.
func (s *Sim) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(ReadyTimeout)
	for {
		if st, err := s.Stats(ctx); err == nil {
			if st.PID != s.Proc.PID() {
				return fmt.Errorf("%s is served by another process (%d, not %d): the port was taken", s.Addr, st.PID, s.Proc.PID())
			}
			return nil
		}
		if s.Proc.Exited() {
			return fmt.Errorf("the simulator exited: %v", s.Proc.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the simulator did not answer within %s", ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Call sends a control request with in (if not nil) as its JSON body and
// decodes the JSON answer into out (if not nil). A request that gets no
// answer is sent again, up to Config.Attempts times in all.
func (s *Sim) Call(ctx context.Context, method, path string, in, out any) error {
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
		req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
		if err != nil {
			return err
		}
		resp, err = s.http.Do(req)
		if err == nil {
			break
		}
		if attempt >= s.attempts || ctx.Err() != nil {
			return fmt.Errorf("simulator %s %s: %w", method, path, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
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

// Reset clears the simulator's store, faults and statistics.
func (s *Sim) Reset(ctx context.Context) error {
	return s.Call(ctx, http.MethodPost, "/sim/reset", nil, nil)
}

// Stats reads GET /sim/stats.
func (s *Sim) Stats(ctx context.Context) (imsim.Stats, error) {
	var st imsim.Stats
	err := s.Call(ctx, http.MethodGet, "/sim/stats", nil, &st)
	return st, err
}

// Stop stops the simulator gracefully.
func (s *Sim) Stop() error {
	return s.Proc.Stop(imsim.ShutdownTimeout + 2*time.Second)
}
