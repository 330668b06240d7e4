// Package redistest starts a real redis-server for tests.
//
// Tests of Redis behaviour run against the real thing, never an in-memory
// fake: each call to Start launches its own redis-server on a free loopback
// port (so tests do not share state) and stops it when the test ends. Set
// TEST_REDIS_URL to use an existing server instead; each test then gets the
// database it names, flushed first.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one running redis-server.
type Server struct {
	// Addr is host:port.
	Addr string
	// URL is a redis:// URL for Addr, database 0.
	URL string

	cmd *exec.Cmd
	dir string
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH: install it (Debian: apt-get install redis-server) or set TEST_REDIS_URL")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
		s.URL = "redis://" + s.Addr + "/0"
		base := []string{
			"--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
		}
		s.cmd = exec.Command(bin, append(base, args...)...)
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		if lastErr = s.waitReady(5 * time.Second); lastErr == nil {
			return s, nil
		}
		s.Stop()
	}
	return nil, fmt.Errorf("redis-server did not become ready: %w", lastErr)
}

// waitReady polls until the server accepts a connection and answers PING
// (or asks for a password, which also means it is up).
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		var conn net.Conn
		conn, err = net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write([]byte("PING\r\n"))
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if rerr == nil && (strings.HasPrefix(line, "+PONG") || strings.Contains(line, "NOAUTH")) {
				return nil
			}
			err = fmt.Errorf("unexpected answer %q (%v)", line, rerr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// Stop kills the server. It is safe to call more than once.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// Client returns a go-redis client for the server, closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
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
