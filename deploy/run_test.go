package deploy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redistest"
)

// composeSecretFixture is what the test puts in the secret files of
// docker-compose.yml, which are not in the repository, by the variable
// that names them. (The Kubernetes pods get the Secret template's values.)
var composeSecretFixture = map[string]string{
	"TIM_SECRET_KEY_FILE":     "devkey\n",
	"DASHBOARD_PASSWORD_FILE": "a-test-password\n",
	"INTAKE_TOKENS_FILE":      "ci:0123456789abcdef0123456789abcdef\n",
	"CAPTURE_TOKEN_FILE":      "a-test-callback-token\n",
}

// probeTimeout bounds how long a started process may take to answer its
// probes. Generous: CI machines are shared.
const probeTimeout = 20 * time.Second

// TestDeployedServicesRun starts the binary the Dockerfile builds as every
// recallq service of docker-compose.yml (the trial, with the simulator)
// and every container of the Kubernetes Deployments, each with the
// environment, command line and secret files the file gives it, against a
// real Redis; waits until it answers each of its probes (Kubernetes) or
// its port (Compose) as the orchestrator would; then sends SIGTERM and
// wants a clean exit within the grace period the file gives.
func TestDeployedServicesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds recallq and runs each service")
	}
	p := loadProgram(t)
	bin := recallqBinary(t)
	redis := redistest.Start(t)

	var cs []container
	f := loadCompose(t, p.root, composeEnvTrial)
	for _, name := range sortedKeys(f.Services) {
		s := f.Services[name]
		if !s.isRecallq() {
			continue
		}
		c := composeContainer(name, s, func(path string) string {
			for k, v := range s.Environment {
				if v != nil && *v == path {
					if fx, ok := composeSecretFixture[k]; ok {
						return fx
					}
					t.Errorf("service %s: no test content for the secret file of %s", name, k)
				}
			}
			return ""
		})
		cs = append(cs, c)
	}
	objs, _, _ := k8sManifests(t, p.root)
	for _, pod := range k8sContainers(t, objs) {
		cs = append(cs, pod.c)
	}
	for _, c := range cs {
		t.Run(strings.NewReplacer(" ", "_", "/", "_").Replace(c.where), func(t *testing.T) {
			runContainer(t, p, bin, redis.URL, c)
		})
	}
}

func runContainer(t *testing.T, p *program, bin, redisURL string, c container) {
	pc, err := p.parse(t, c)
	if err != nil {
		t.Fatalf("%s: %v", c.where, err) // TestComposeNamesExistInProgram / TestK8sNamesExistInProgram say more
	}
	path := pc.cmd.Path
	env := map[string]string{}
	for k, v := range c.env {
		env[k] = v
	}
	if _, ok := env["REDIS_URL"]; ok {
		env["REDIS_URL"] = redisURL
	}
	// The secrets, at a path of their own on this machine.
	dir := t.TempDir()
	for i, f := range sortedKeys(c.files) {
		local := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(local, []byte(c.files[f]), 0o600); err != nil {
			t.Fatal(err)
		}
		for k, v := range env {
			if v == f {
				env[k] = local
			}
		}
	}
	// Listen on a free loopback port instead of the container's.
	args := slices.Clone(c.args)
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	setting, serving := listenSetting[path]
	if serving {
		if flag, ok := strings.CutPrefix(setting, "--"); ok {
			args = append(args, "--"+flag+"="+addr)
		} else {
			env[setting] = addr
			if f, ok := p.flagForEnv(path, setting); ok && slices.ContainsFunc(args, func(a string) bool {
				return a == "--"+f.Name || strings.HasPrefix(a, "--"+f.Name+"=")
			}) {
				args = append(args, "--"+f.Name+"="+addr)
			}
		}
	}

	var out logtest.Buffer
	cmd := exec.Command(bin, args...)
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: recallq %s: %s\noutput:\n%s", c.where, strings.Join(c.args, " "), fmt.Sprintf(format, args...), out.String())
	}

	if !serving {
		fail("does not serve anything to wait for")
	}
	var checks []probe
	checks = append(checks, c.probes...)
	if len(checks) == 0 && p.serves(path, "/healthz") {
		checks = append(checks, probe{kind: "health", path: "/healthz"})
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(probeTimeout)
	if len(checks) == 0 {
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				fail("nothing listens on %s (the container's port) after %v", addr, probeTimeout)
			}
			select {
			case err := <-exited:
				stopped = true
				fail("exited before it listened: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	for _, pr := range checks {
		for {
			status, err := get(client, "http://"+addr+pr.path)
			if err == nil && status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				fail("%s GET %s: status %d, %v after %v; want 200", pr.kind, pr.path, status, err, probeTimeout)
			}
			select {
			case err := <-exited:
				stopped = true
				fail("exited while its %s probe GET %s was tried: %v", pr.kind, pr.path, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			fail("SIGTERM: exit status %d, want 0", ee.ExitCode())
		} else if err != nil {
			fail("SIGTERM: %v", err)
		}
		t.Logf("%s: answered %d probe(s), stopped %v after SIGTERM (grace %v)", c.where, len(checks), time.Since(start).Round(time.Millisecond), c.grace)
	case <-time.After(c.grace):
		fail("still running %v after SIGTERM, the grace period: it would be killed", c.grace)
	}
}

func get(client *http.Client, url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
