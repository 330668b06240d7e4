// Package redistest starts a real redis-server for tests.
//
// Tests of Redis behaviour run against the real thing, never an in-memory
// fake: each call to Start launches its own redis-server on a free loopback
// port (so tests do not share state) and stops it when the test ends. Set
// TEST_REDIS_URL to use an existing server instead; each test then gets the
// database it names, flushed first.
//
// The other deployments recallq supports have helpers of their own, which
// always start their own servers: StartTLS (TLS only, certificates of a
// throwaway CA, client certificates required), StartCluster (a Redis
// Cluster of three masters) and StartSentinelSet (a primary, a replica and
// three sentinels). Each has a Launch form for use outside a test.
package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one running redis-server.
type Server struct {
	// Addr is host:port.
	Addr string
	// URL is a redis:// URL for Addr, database 0 (rediss:// for a server
	// of StartTLS). It has no password.
	URL string
	// TLS, for a server of StartTLS, is a client configuration that trusts
	// the server's CA and presents a client certificate; nil otherwise.
	TLS *tls.Config
	// Certs, for a server of StartTLS, are the files behind TLS and the
	// server's certificate; nil otherwise.
	Certs *Certs

	cmd      *exec.Cmd
	dir      string
	password string        // requirepass set by a helper of this package
	tempDir  bool          // dir is LaunchTemp's: Stop removes it
	exited   chan struct{} // closed when cmd has exited
	busPort  int           // cluster bus port of a cluster node
}

// Start starts a redis-server for t on a free port with the given extra
// arguments (for example "--requirepass", "x") and stops it when t ends.
// It fails the test with the reason when redis-server cannot be started.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if u := os.Getenv("TEST_REDIS_URL"); u != "" && len(args) == 0 {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("TEST_REDIS_URL: %v", err)
		}
		c := redis.NewClient(opt)
		defer c.Close()
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("TEST_REDIS_URL: flush: %v", err)
		}
		return &Server{Addr: opt.Addr, URL: u}
	}
	s, err := Launch(t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch starts a redis-server whose files live in dir, outside of any test
// (benchmarks and the fault suite use it). The caller must call Stop.
func Launch(dir string, args ...string) (*Server, error) {
	return launch(dir, nil, func(s *Server, port int) ([]string, error) {
		return append(append([]string{"--port", fmt.Sprint(port)}, baseArgs(s.dir, port)...), args...), nil
	})
}

// LaunchTemp is Launch in a new temporary directory, named after pattern
// as os.MkdirTemp names it, for a lab's run: Dir names the directory (for
// the run's other files), and Stop also removes it.
func LaunchTemp(pattern string) (*Server, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, err
	}
	s, err := Launch(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.tempDir = true
	return s, nil
}

// Dir is the directory the server keeps its files in.
func (s *Server) Dir() string { return s.dir }

// baseArgs are the arguments every data server on port starts with, but
// the port's own: loopback, no persistence, files in dir.
func baseArgs(dir string, port int) []string {
	return []string{
		"--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
	}
}

// launch starts redis-server with the arguments args gives for a free
// port (args may set up s, and fail), and waits until it answers (over TLS
// when tlsCfg is set). A port taken in between, by a server that started
// first (another test binary's, say) or by anything else, is retried with
// another: the server that answers must be the process launch started.
func launch(dir string, tlsCfg *tls.Config, args func(s *Server, port int) ([]string, error)) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH: install it (Debian: apt-get install redis-server) or set TEST_REDIS_URL")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, TLS: tlsCfg}
		s.URL = "redis://" + s.Addr + "/0"
		if tlsCfg != nil {
			s.URL = "rediss://" + s.Addr + "/0"
		}
		a, err := args(s, port)
		if err != nil {
			return nil, err
		}
		s.cmd = exec.Command(bin, a...)
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		s.exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) {
			_ = cmd.Wait()
			close(exited)
		}(s.cmd, s.exited)
		if lastErr = s.waitReady(5*time.Second, requirePass(a)); lastErr == nil {
			return s, nil
		}
		s.Stop()
	}
	return nil, fmt.Errorf("redis-server did not become ready: %w", lastErr)
}

// freePort is FreePort; a test replaces it to hand out a taken port.
var freePort = FreePort

// requirePass is the value of --requirepass in args, "" without one.
func requirePass(args []string) string {
	for i, a := range args {
		if a == "--requirepass" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// waitReady polls until the server answers INFO, and checks that the
// process answering is the one s started: a redis-server that lost the race
// for its port exits, and a PING would be answered by the winner, whose
// data the test would then share (and lose when the winner's test ends).
// password is what the server's arguments require, if anything.
func (s *Server) waitReady(limit time.Duration, password string) error {
	if s.password != "" {
		password = s.password
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: password, TLSConfig: s.TLS,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, PoolSize: 1})
	defer c.Close()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ServedBy(ctx, c, s.cmd.Process.Pid)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrPortTaken) {
			return fmt.Errorf("%s: %w", s.Addr, err)
		}
		if strings.HasPrefix(err.Error(), "NOPERM") {
			// A server whose user may not run INFO (an ACL test's) cannot
			// say who it is. One that lost its port exits at once, before
			// it would serve: take it as ours if it is still running a
			// moment after the port answered.
			select {
			case <-s.exited:
				return fmt.Errorf("redis-server on %s exited: the port was taken (see %s)", s.Addr, s.dir)
			case <-time.After(100 * time.Millisecond):
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("redis-server on %s exited before it answered (see %s): %v", s.Addr, s.dir, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

// ProcessID is the process ID the redis-server behind c reports (INFO
// server).
func ProcessID(ctx context.Context, c redis.UniversalClient) (int, error) {
	info, err := c.InfoMap(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(info["Server"]["process_id"])
}

// Pause stops the server's process (SIGSTOP) until resume is called or t
// ends: its sockets stay open and nothing answers, as behind a dead
// network or a primary that hangs.
func (s *Server) Pause(t testing.TB) (resume func()) {
	t.Helper()
	pid, err := ProcessID(context.Background(), s.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resume = func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(resume)
	return resume
}

// ErrPortTaken: the redis-server answering is not the process started.
var ErrPortTaken = errors.New("the port was taken by another redis-server")

// ServedBy checks that the redis-server behind c is process pid, to tell a
// server one started from another that holds its port (one that lost the
// race for it exits, and the winner answers in its place). It returns nil,
// an error wrapping ErrPortTaken, or INFO's error.
func ServedBy(ctx context.Context, c redis.UniversalClient, pid int) error {
	got, err := ProcessID(ctx, c)
	if err != nil {
		return err
	}
	if got != pid {
		return fmt.Errorf("%w: process %d answers, not %d", ErrPortTaken, got, pid)
	}
	return nil
}

// Stop kills the server (SIGKILL: no shutdown, no save), as a crash
// would, and removes the directory of LaunchTemp. It is safe to call more
// than once.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
	if s.tempDir {
		os.RemoveAll(s.dir)
		s.tempDir = false
	}
}

// Client returns a go-redis client for the server, closed when t ends. It
// speaks TLS to a server of StartTLS and knows the password of a node of
// StartCluster or StartSentinelSet.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if s.password != "" {
		opt.Password = s.password
	}
	if s.TLS != nil {
		opt.TLSConfig = s.TLS.Clone()
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Version is redis-server's version, as it reports it, for a lab's
// heading.
func Version() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return "redis-server version unknown"
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return "redis-server " + v
		}
	}
	return strings.TrimSpace(string(out))
}
