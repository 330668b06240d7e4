package faults

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one process the suite started: the simulator, a worker or a
// redis-server. Its output goes to a log file in the suite's directory.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// children is every process the suite started and has not reaped, so that
// all of them are killed on the way out, whatever the way.
type children struct {
	mu  sync.Mutex
	set map[*child]struct{}
}

// start starts exe with args and env (nil: the suite's own environment),
// its output appended to dir/name.log. The child gets a process group of
// its own (a Ctrl-C at the terminal reaches the suite, which then stops its
// children itself) and, on Linux, is killed by the kernel should the suite
// die without doing so.
func (cs *children) start(dir, name, exe string, args, env []string) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	cs.mu.Lock()
	if cs.set == nil {
		cs.set = make(map[*child]struct{})
	}
	cs.set[c] = struct{}{}
	cs.mu.Unlock()
	go func() {
		c.err = cmd.Wait()
		close(c.done)
		cs.mu.Lock()
		delete(cs.set, c)
		cs.mu.Unlock()
	}()
	return c, nil
}

// killAll kills every child still running and waits for them, at most a
// few seconds in all.
func (cs *children) killAll() {
	cs.mu.Lock()
	list := make([]*child, 0, len(cs.set))
	for c := range cs.set {
		list = append(list, c)
	}
	cs.mu.Unlock()
	for _, c := range list {
		c.signal(syscall.SIGKILL)
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

// pid is the child's process ID.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// signal sends sig unless the process has exited; it does not wait.
func (c *child) signal(sig syscall.Signal) {
	if !c.exited() {
		_ = c.cmd.Process.Signal(sig)
	}
}

// wait waits up to d for the process to exit and reports whether it did.
func (c *child) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns an error when it had to kill it.
func (c *child) stop(grace time.Duration) error {
	c.signal(syscall.SIGTERM)
	if c.wait(grace) {
		return nil
	}
	c.signal(syscall.SIGKILL)
	c.wait(5 * time.Second)
	return fmt.Errorf("%s (pid %d) did not stop within %s of SIGTERM and was killed", c.name, c.pid(), grace)
}

// tail returns the last lines of the child's log, for an error message.
func (c *child) tail(lines int) string {
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

// countLines counts the lines of the child's log that contain s.
func (c *child) countLines(s string) int {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(s))
}

// childEnv is the suite's environment without the settings a child could
// pick up by mistake (another Redis, another app, a metrics port, a log
// format), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TIM_") || strings.HasPrefix(name, "LOG_") ||
			name == "REDIS_URL" || name == "RECALL_RATE" || name == "METRICS_ADDR" || strings.HasPrefix(name, "REDIS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
