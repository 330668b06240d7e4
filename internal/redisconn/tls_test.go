package redisconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

// The TLS server has a password too, and asks for a client certificate
// (redis-server's default, tls-auth-clients yes).
func TestTLSWithPrivateCA(t *testing.T) {
	s := redistest.StartTLS(t, "--requirepass", "tls-pw-3Kd")
	c := s.Certs
	url := "rediss://:tls-pw-3Kd@" + s.Addr + "/0"
	withCert := redisconn.Options{CAFile: c.CAFile, CertFile: c.ClientCertFile, KeyFile: c.ClientKeyFile}

	t.Run("CA file and client certificate", func(t *testing.T) {
		conn, err := redisconn.ParseWith(url, withCert)
		if err != nil {
			t.Fatal(err)
		}
		checkQueuesAndLimiter(t, conn)
	})

	t.Run("settings from the environment", func(t *testing.T) {
		t.Setenv(redisconn.EnvCAFile, c.CAFile)
		t.Setenv(redisconn.EnvCertFile, c.ClientCertFile)
		t.Setenv(redisconn.EnvKeyFile, c.ClientKeyFile)
		conn, err := redisconn.ParseEnv(url)
		if err != nil {
			t.Fatal(err)
		}
		checkQueuesAndLimiter(t, conn)
	})

	t.Run("insecure skip verify accepts the unknown CA", func(t *testing.T) {
		conn, err := redisconn.ParseWith(url, redisconn.Options{InsecureSkipVerify: true,
			CertFile: c.ClientCertFile, KeyFile: c.ClientKeyFile})
		if err != nil {
			t.Fatal(err)
		}
		checkQueuesAndLimiter(t, conn)
	})

	t.Run("system roots refuse the private CA", func(t *testing.T) {
		conn, err := redisconn.ParseWith(url, redisconn.Options{CertFile: c.ClientCertFile, KeyFile: c.ClientKeyFile})
		if err != nil {
			t.Fatal(err)
		}
		errs := reach(t, conn)
		for path, err := range errs {
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) {
				t.Errorf("%s: err = %v, want a certificate verification error", path, err)
			}
		}
	})

	t.Run("no client certificate is refused", func(t *testing.T) {
		conn, err := redisconn.ParseWith(url, redisconn.Options{CAFile: c.CAFile})
		if err != nil {
			t.Fatal(err)
		}
		for path, err := range reach(t, conn) {
			if err == nil {
				t.Errorf("%s: served without a client certificate", path)
			}
		}
	})

	t.Run("plain text is refused", func(t *testing.T) {
		conn, err := redisconn.Parse(strings.Replace(url, "rediss://", "redis://", 1))
		if err != nil {
			t.Fatal(err)
		}
		for path, err := range reach(t, conn) {
			if err == nil {
				t.Errorf("%s: a TLS-only server answered plain text", path)
			}
		}
	})
}

// reach tries conn through asynq and go-redis and returns their errors,
// after checking that none shows the URL's password.
func reach(t *testing.T, conn *redisconn.Conn) map[string]error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	task, err := tasks.NewTask(recall("tls"), tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(conn.AsynqOpt())
	defer client.Close()
	rdb := conn.Client()
	defer rdb.Close()
	errs := map[string]error{}
	_, errs["asynq enqueue"] = client.EnqueueContext(ctx, task)
	errs["go-redis ping"] = rdb.Ping(ctx).Err()
	for path, err := range errs {
		if err != nil && strings.Contains(err.Error(), "tls-pw-3Kd") {
			t.Errorf("%s: error shows the password: %v", path, err)
		}
	}
	return errs
}
