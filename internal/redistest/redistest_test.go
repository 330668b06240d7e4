package redistest

import (
	"context"
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
