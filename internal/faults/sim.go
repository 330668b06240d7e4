package faults

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/recallq/recallq/internal/simproc"
)

// SimCommand is the recallq subcommand that runs the simulator.
const SimCommand = simproc.Command

// simCallTimeout bounds one control request.
const simCallTimeout = 10 * time.Second

// callAttempts is how many times a control request is sent when no answer
// comes back: every control request is idempotent, and a connection the
// simulator closed during a refusal may still sit in the client's pool.
const callAttempts = 3

// simProc is the simulator, running as a child process for the whole
// suite (package simproc): every run resets it.
type simProc struct{ *simproc.Sim }

// startSim starts "recallq imsim" on a free loopback port with the latency
// and fail rate of o, raises its priority (simproc.Nice), and waits until
// it answers.
func startSim(ctx context.Context, procs *children, dir string, o Options, env []string) (*simProc, error) {
	sim, err := simproc.Start(ctx, procs, simproc.Config{
		Exe: o.Exe,
		Args: []string{"--latency", o.LatencyMin.String() + "-" + o.LatencyMax.String(),
			"--fail-rate", strconv.FormatFloat(o.FailRate, 'g', -1, 64), "--log-level", o.SimLogLevel},
		Env: env,
		Dir: dir,
		HTTP: &http.Client{
			Timeout:   simCallTimeout,
			Transport: &http.Transport{MaxIdleConnsPerHost: fateWorkers, IdleConnTimeout: 30 * time.Second},
		},
		Attempts: callAttempts,
		Favour:   true,
	})
	if err != nil {
		return nil, err
	}
	return &simProc{sim}, nil
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
	return s.Call(ctx, http.MethodPost, "/sim/faults", f, nil)
}

// forget makes a message not exist: its recall answers 20022.
func (s *simProc) forget(ctx context.Context, m message) error {
	return s.Call(ctx, http.MethodPost, "/sim/forget",
		map[string]string{"From_Account": m.from, "To_Account": m.to, "MsgKey": m.key}, nil)
}

// fate lists every code the simulator answered for the message.
func (s *simProc) fate(ctx context.Context, m message) ([]int, error) {
	return s.codes(ctx, "/sim/fate", url.Values{"from": {m.from}, "to": {m.to}, "msgkey": {m.key}})
}

// codes reads a fate endpoint's answer, {"codes": [...]}.
func (s *simProc) codes(ctx context.Context, path string, q url.Values) ([]int, error) {
	var out struct {
		Codes []int `json:"codes"`
	}
	if err := s.Call(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return out.Codes, nil
}

// refused reports whether a new connection to the simulator is refused now.
func (s *simProc) refused() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
