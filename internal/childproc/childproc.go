// Package childproc runs the child processes of recallq's benchmark and
// fault suite (the simulator, workers, redis-server): each with its output
// in a log file, its own process group, killed by the kernel if the parent
// dies, and all of them killed on the way out, whatever the way.
package childproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Child is one started process.
type Child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed

	onPurpose atomic.Bool
}

// Group is every process started and not yet reaped.
type Group struct {
	mu  sync.Mutex
	set map[*Child]struct{}
}

// Start starts exe with args and env (nil: this process's environment), its
// output appended to dir/name.log.
func (g *Group) Start(dir, name, exe string, args, env []string) (*Child, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &Child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	g.mu.Lock()
	if g.set == nil {
		g.set = make(map[*Child]struct{})
	}
	g.set[c] = struct{}{}
	g.mu.Unlock()
	go func() {
		c.err = cmd.Wait()
		close(c.done)
		g.mu.Lock()
		delete(g.set, c)
		g.mu.Unlock()
	}()
	return c, nil
}

// KillAll kills every child still running and waits for them, at most a
// few seconds in all.
func (g *Group) KillAll() {
	g.mu.Lock()
	list := make([]*Child, 0, len(g.set))
	for c := range g.set {
		list = append(list, c)
	}
	g.mu.Unlock()
	for _, c := range list {
		c.Kill()
	}
	deadline := time.After(5 * time.Second)
	for _, c := range list {
		select {
		case <-c.done:
		case <-deadline:
			return
		}
	}
}

// Name is the name the child was started with.
func (c *Child) Name() string { return c.name }

// PID is the child's process ID.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// Done is closed when the process has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is the process's exit status, once Done is closed.
func (c *Child) Err() error { return c.err }

// ProcessState is the exited process's state, nil while it runs.
func (c *Child) ProcessState() *os.ProcessState {
	if !c.Exited() {
		return nil
	}
	return c.cmd.ProcessState
}

// Exited reports whether the process has exited.
func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Signal sends sig unless the process has exited; it does not wait.
func (c *Child) Signal(sig syscall.Signal) {
	if !c.Exited() {
		_ = c.cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL; it does not wait.
func (c *Child) Kill() { c.Signal(syscall.SIGKILL) }

// KillOnPurpose kills the process as a planned victim (a kill run).
func (c *Child) KillOnPurpose() {
	c.onPurpose.Store(true)
	c.Kill()
}

// KilledOnPurpose reports whether KillOnPurpose was called.
func (c *Child) KilledOnPurpose() bool { return c.onPurpose.Load() }

// Wait waits up to d for the process to exit and reports whether it did.
func (c *Child) Wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns the process's exit error, or an error saying it had
// to be killed.
func (c *Child) Stop(grace time.Duration) error {
	c.Signal(syscall.SIGTERM)
	if c.Wait(grace) {
		return c.err
	}
	c.Kill()
	c.Wait(5 * time.Second)
	return fmt.Errorf("%s (pid %d) did not stop within %s of SIGTERM and was killed", c.name, c.PID(), grace)
}

// StopAll stops every child of cs at once (Stop with grace each) and
// returns their errors in cs's order; a nil child is passed over.
func StopAll(cs []*Child, grace time.Duration) []error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Stop(grace)
		}()
	}
	wg.Wait()
	return errs
}

// Tail returns the last lines of the child's log, for an error message.
func (c *Child) Tail(lines int) string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return ""
	}
	all := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// TailLine is Tail joined into one line, for a note.
func (c *Child) TailLine(lines int) string { return strings.Join(strings.Fields(c.Tail(lines)), " ") }

// CountLines counts the occurrences of s in the child's log.
func (c *Child) CountLines(s string) int {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(s))
}

// Env is this process's environment without the settings a child could
// pick up by mistake (another Redis, another app, a metrics port, a log
// format), plus extra.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TIM_") || strings.HasPrefix(name, "LOG_") || strings.HasPrefix(name, "REDIS_") ||
			name == "RECALL_RATE" || name == "METRICS_ADDR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// LoadAverage is the machine's 1-minute load average, or "?": the machine
// may be shared, and a busy one explains a noisy row of a lab's table.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
