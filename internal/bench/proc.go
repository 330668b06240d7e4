package bench

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

// child is one process the benchmark started: the simulator or a worker.
// Its output goes to a log file in the benchmark's directory.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed

	onPurpose atomic.Bool // killed by the kill run
}

// children is every process the benchmark started and has not reaped, so
// that they can all be killed on the way out, whatever the way.
type children struct {
	mu  sync.Mutex
	set map[*child]struct{}
}

// start starts exe with args and env, its output appended to a log file
// named after name in dir. The child gets a process group of its own (a
// Ctrl-C at the terminal reaches the benchmark, which then stops its
// children itself) and, on Linux, is killed by the kernel if the benchmark
// dies without doing so.
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

// killAll kills every child still running and waits for each, at most a few
// seconds in all.
func (cs *children) killAll() {
	cs.mu.Lock()
	list := make([]*child, 0, len(cs.set))
	for c := range cs.set {
		list = append(list, c)
	}
	cs.mu.Unlock()
	for _, c := range list {
		c.kill()
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

// exited reports whether the process has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL; it does not wait.
func (c *child) kill() {
	if !c.exited() {
		_ = c.cmd.Process.Kill()
	}
}

// killOnPurpose kills the process as the kill run's victim.
func (c *child) killOnPurpose() {
	c.onPurpose.Store(true)
	c.kill()
}

// killedByUs reports whether killOnPurpose was called.
func (c *child) killedByUs() bool { return c.onPurpose.Load() }

// stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns the process's exit error, or an error saying it had
// to be killed.
func (c *child) stop(grace time.Duration) error {
	if !c.exited() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.done:
		return c.err
	case <-time.After(grace):
	}
	c.kill()
	<-c.done
	return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", c.name, grace)
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

// childEnv is the benchmark's environment without the settings a child
// could pick up by mistake (another Redis, another app, a log format),
// plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TIM_") || strings.HasPrefix(name, "LOG_") || name == "REDIS_URL" || name == "RECALL_RATE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
