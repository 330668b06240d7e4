package redistest

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartServesAndIsolates(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers share %s", a.Addr)
	}
	ctx := context.Background()
	if err := a.Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client(t).Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("second server sees the first's key: n=%d err=%v", n, err)
	}
}

func TestStartTLSServesOnlyTLSWithClientCertificates(t *testing.T) {
	s := StartTLS(t)
	ctx := context.Background()
	if err := s.Client(t).Ping(ctx).Err(); err != nil {
		t.Fatalf("TLS client with the test CA and client certificate: %v", err)
	}
	plain := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plain-text PING was answered: the server should speak TLS only")
	}
	noCert := s.TLS.Clone()
	noCert.Certificates = nil
	anon := redis.NewClient(&redis.Options{Addr: s.Addr, TLSConfig: noCert, MaxRetries: -1})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil {
		t.Fatal("a client without a certificate was served: tls-auth-clients should be on")
	}
}

func TestLaunchTempRemovesItsDirectoryOnStop(t *testing.T) {
	s, err := LaunchTemp("recallq-redistest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if err := s.Client(t).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if _, err := os.Stat(s.Dir()); err != nil {
		t.Fatalf("the server's directory: %v", err)
	}
	s.Stop()
	if _, err := os.Stat(s.Dir()); !os.IsNotExist(err) {
		t.Fatalf("after Stop, the directory %s is still there (%v)", s.Dir(), err)
	}
	s.Stop() // a second Stop is harmless
}

// TestATakenPortIsNotMistakenForOurs: two test binaries can be handed the
// same free port; the second redis-server cannot bind it and exits, and a
// PING on the port is answered by the first. Launch must see that the
// server answering is not its own and take another port, or two tests
// share one server and the first to end takes it from the other (CI saw
// that: keys of one package's test in another's, then "connection
// refused").
func TestATakenPortIsNotMistakenForOurs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no password", nil},
		{"password", []string{"--requirepass", "pw-1"}},
		{"INFO denied", []string{"--user", "default", "on", "nopass", "~*", "&*", "+@all", "-info"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := Start(t, tc.args...)
			_, port, _ := net.SplitHostPort(first.Addr)
			taken, _ := strconv.Atoi(port)
			handed := 0
			freePort = func() (int, error) {
				handed++
				if handed == 1 {
					return taken, nil
				}
				return FreePort()
			}
			t.Cleanup(func() { freePort = FreePort })

			second := Start(t, tc.args...)
			if second.Addr == first.Addr {
				t.Fatalf("the second server took the first's address %s: both tests would share one server", first.Addr)
			}
			if handed < 2 {
				t.Fatalf("launch asked for %d port(s): it never saw the first was taken", handed)
			}
			c := redis.NewClient(&redis.Options{Addr: second.Addr, Password: requirePass(tc.args)})
			defer c.Close()
			pid, err := ProcessID(context.Background(), c)
			if err != nil && strings.HasPrefix(err.Error(), "NOPERM") {
				return // it cannot say who it is; the address was the test
			}
			if err != nil {
				t.Fatal(err)
			}
			if pid != second.cmd.Process.Pid {
				t.Fatalf("%s is served by process %d, not the one launched (%d)", second.Addr, pid, second.cmd.Process.Pid)
			}
		})
	}
}
