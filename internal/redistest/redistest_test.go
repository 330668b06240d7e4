package redistest

import (
	"context"
	"os"
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
