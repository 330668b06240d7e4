package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/redistest"
)

// SimCommand is the recallq subcommand that runs the simulator.
const SimCommand = "imsim"

// simReadyTimeout bounds the simulator's start.
const simReadyTimeout = 15 * time.Second

// simProc is the simulator, running as a child process.
type simProc struct {
	proc     *child
	url      string
	http     *http.Client
	priority string // how it is scheduled, for the table's heading
}

// startSim starts "recallq imsim" on a free loopback port with the spread
// and fail rate, and waits until it answers. A port taken between the
// choice and the listen is tried again with another.
func (b *bench) startSim(ctx context.Context, sp Spread) (*simProc, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := redistest.FreePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args := append([]string{SimCommand, "--addr", addr}, sp.simArgs()...)
		args = append(args, "--fail-rate", strconv.FormatFloat(b.o.FailRate, 'g', -1, 64), "--log-level", "warn")
		if b.o.OutsideRate > 0 {
			// Reset, before every configuration, restarts it.
			args = append(args, "--outside-rate", strconv.FormatFloat(b.o.OutsideRate, 'g', -1, 64))
		}
		c, err := b.procs.Start(b.dir, fmt.Sprintf("imsim-%s-%d", strings.ReplaceAll(sp.String(), ":", "-"), attempt), b.o.Exe, args, b.appEnv())
		if err != nil {
			return nil, err
		}
		s := &simProc{proc: c, url: "http://" + addr, http: &http.Client{Timeout: 5 * time.Second}}
		if err := favour(c.PID()); err != nil {
			s.priority = fmt.Sprintf("default priority (raising it failed: %v)", err)
		} else {
			s.priority = fmt.Sprintf("nice %d", simNice)
		}
		if lastErr = s.waitReady(ctx); lastErr == nil {
			return s, nil
		}
		c.Kill()
		<-c.Done()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = fmt.Errorf("%w; its log ends:\n%s", lastErr, c.Tail(10))
	}
	return nil, fmt.Errorf("start the simulator: %w", lastErr)
}

// waitReady polls GET /sim/stats until it answers 200, the process exits,
// or simReadyTimeout passes.
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
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// reset clears the simulator's store, faults and statistics.
func (s *simProc) reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/sim/reset", bytes.NewReader(nil))
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("reset the simulator: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset the simulator: HTTP %d", resp.StatusCode)
	}
	return nil
}

// stats reads GET /sim/stats.
func (s *simProc) stats(ctx context.Context) (imsim.Stats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/sim/stats", nil)
	if err != nil {
		return imsim.Stats{}, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return imsim.Stats{}, fmt.Errorf("read the simulator's stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return imsim.Stats{}, fmt.Errorf("read the simulator's stats: HTTP %d", resp.StatusCode)
	}
	var st imsim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return imsim.Stats{}, fmt.Errorf("read the simulator's stats: %w", err)
	}
	return st, nil
}

// stop stops the simulator gracefully.
func (s *simProc) stop() error {
	return s.proc.Stop(imsim.ShutdownTimeout + 2*time.Second)
}
