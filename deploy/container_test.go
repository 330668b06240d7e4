package deploy

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/intake"
	"github.com/recallq/recallq/internal/lab"
	"github.com/recallq/recallq/worker"
)

// container is one recallq process as a compose service or a Kubernetes
// Deployment describes it, in the terms both share.
type container struct {
	where string   // for messages: "docker-compose.yml service worker"
	args  []string // after the entrypoint /recallq
	// env is the process's environment. A value the file does not give
	// (compose's "NAME:" with nothing, a fieldRef) is "".
	env map[string]string
	// files are the files mounted into the container that the program
	// may read, by path in the container: the secrets.
	files map[string]string
	// ports are the container ports the file expects the process to
	// listen on (a probe's, a Service's or a published port).
	ports []int
	// probes are the HTTP probes: path and container port.
	probes []probe
	// grace is how long the orchestrator waits after SIGTERM.
	grace time.Duration
}

type probe struct {
	kind string // readiness, liveness, startup
	path string
	port int
}

// listenSetting is the setting, an environment variable or a "--flag",
// that holds the address each serving command listens on. The program
// decides whether that name exists, and its default: see listenAddr.
var listenSetting = map[string]string{
	"worker":    "METRICS_ADDR",
	"dashboard": "DASHBOARD_ADDR",
	"serve":     "INTAKE_ADDR",
	"imsim":     "--addr",
	"capture":   "CAPTURE_ADDR",
}

// parsed is a container's command line as the program parses it in the
// container's environment.
type parsed struct {
	cmd   lab.CommandInfo
	flags map[string]string
}

// parse resolves c's command line with the program's own parser, with the
// process environment set to c's (and every other variable the program
// reads cleared), so flag defaults that come from the environment are what
// they would be in the container.
func (p *program) parse(t *testing.T, c container) (parsed, error) {
	t.Helper()
	for name := range p.allEnv() {
		t.Setenv(name, "")
		os.Unsetenv(name) // t.Setenv restores it at the end of the test
	}
	for name, v := range c.env {
		t.Setenv(name, v)
	}
	info, flags, err := lab.ParseCommandLine(c.args)
	return parsed{info, flags}, err
}

// checkContainer checks what every container must get right: a command
// and flags the program has, environment variables its command reads, no
// secret in plain text, *_FILE variables that name a mounted file, and
// ports and probes where the command listens and serves.
func checkContainer(t *testing.T, p *program, c container) {
	t.Helper()
	pc, err := p.parse(t, c)
	if err != nil {
		t.Errorf("%s: command line %q: %v", c.where, c.args, err)
		return
	}
	path := pc.cmd.Path
	reads := p.commandEnv(path)
	secret := p.secretEnv()
	for _, name := range sortedKeys(c.env) {
		switch {
		case !reads[name]:
			t.Errorf("%s: sets %s, which `recallq %s` does not read (it reads %s)", c.where, name, path, strings.Join(sortedKeys(reads), ", "))
		case secret[name] && c.env[name] != "":
			t.Errorf("%s: sets the secret %s in plain text: mount it as a file and set %s_FILE", c.where, name, name)
		case strings.HasSuffix(name, "_FILE"):
			if _, ok := c.files[c.env[name]]; !ok {
				t.Errorf("%s: %s=%s, but no secret is mounted there (mounted: %v)", c.where, name, c.env[name], sortedKeys(c.files))
			}
		}
	}
	for f := range c.files {
		used := false
		for name, v := range c.env {
			used = used || (strings.HasSuffix(name, "_FILE") && v == f)
		}
		if !used {
			t.Errorf("%s: mounts %s but no *_FILE variable points at it", c.where, f)
		}
	}
	if len(c.ports) == 0 && len(c.probes) == 0 {
		return
	}
	addr, err := p.listenAddr(t, c, pc)
	if err != nil {
		t.Errorf("%s: %v", c.where, err)
		return
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s: `recallq %s` listens on %q: %v", c.where, path, addr, err)
		return
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		t.Errorf("%s: `recallq %s` listens on %s, a loopback address: nothing outside the container can reach it; set %s to :%s", c.where, path, addr, listenSetting[path], portText)
	}
	port, _ := strconv.Atoi(portText)
	for _, want := range c.ports {
		if want != port {
			t.Errorf("%s: expects port %d, but `recallq %s` listens on %s", c.where, want, path, addr)
		}
	}
	for _, pr := range c.probes {
		if pr.port != port {
			t.Errorf("%s: %s probe on port %d, but `recallq %s` listens on %s", c.where, pr.kind, pr.port, path, addr)
		}
		if !p.serves(path, pr.path) {
			t.Errorf("%s: %s probe GET %s, but `recallq %s` registers no handler for it (it serves %v)", c.where, pr.kind, pr.path, path, sortedKeys(p.reached(path).paths))
		}
	}
}

// listenAddr is where the container's command listens: its listen
// setting's value from the command line, the container's environment or
// the program's default, in that order, as the program itself resolves it.
func (p *program) listenAddr(t *testing.T, c container, pc parsed) (string, error) {
	path := pc.cmd.Path
	setting, ok := listenSetting[path]
	if !ok {
		return "", fmt.Errorf("`recallq %s` is not a command that listens, but the file gives it ports or probes", path)
	}
	if flag, ok := strings.CutPrefix(setting, "--"); ok {
		v, ok := pc.flags[flag]
		if !ok {
			return "", fmt.Errorf("`recallq %s` has no %s flag to say where it listens", path, setting)
		}
		return v, nil
	}
	if f, ok := p.flagForEnv(path, setting); ok {
		return pc.flags[f.Name], nil
	}
	if !p.commandEnv(path)[setting] {
		return "", fmt.Errorf("`recallq %s` does not read %s, so where it listens cannot be set", path, setting)
	}
	if v, ok := c.env[setting]; ok {
		return v, nil
	}
	if v, ok := p.reached(path).defaults[setting]; ok {
		return v, nil
	}
	return "", fmt.Errorf("`recallq %s` reads %s but no default for it was found: set it", path, setting)
}

// checkShutdownGrace checks that a worker, an intake or a capture is given
// longer than its shutdown bound between SIGTERM and SIGKILL.
func checkShutdownGrace(t *testing.T, c container, cmd string) {
	t.Helper()
	bound, name := map[string]time.Duration{
		"worker":  worker.DefaultShutdownTimeout,
		"serve":   intake.DefaultShutdownTimeout,
		"capture": capture.DefaultShutdownTimeout,
	}[cmd], cmd
	if bound == 0 {
		return
	}
	if c.grace <= bound {
		t.Errorf("%s: %v between SIGTERM and SIGKILL, not more than the %s's shutdown bound (%v): requests or calls in flight would be killed", c.where, c.grace, name, bound)
	}
}
