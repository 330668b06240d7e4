package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are a throwaway certificate authority and the certificates it
// signed, as PEM files: a server certificate for 127.0.0.1, ::1 and
// localhost, and a client certificate. Keys are unencrypted.
type Certs struct {
	CAFile                        string
	ServerCertFile, ServerKeyFile string
	ClientCertFile, ClientKeyFile string
}

// NewCerts writes a new CA and its certificates into dir. They are valid
// from an hour ago for a day.
func NewCerts(dir string) (*Certs, error) {
	c := &Certs{
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerCertFile: filepath.Join(dir, "server.pem"),
		ServerKeyFile:  filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "recallq test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	if err := writePEM(c.CAFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	// The server certificate also serves as the client certificate of
	// replication and of the cluster bus, hence both usages.
	server := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	client := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "recallq test client"},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, leaf := range []struct {
		tmpl            *x509.Certificate
		certFile, keyFi string
	}{{server, c.ServerCertFile, c.ServerKeyFile}, {client, c.ClientCertFile, c.ClientKeyFile}} {
		leaf.tmpl.NotBefore, leaf.tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		leaf.tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		der, err := x509.CreateCertificate(rand.Reader, leaf.tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, fmt.Errorf("sign certificate: %w", err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := writePEM(leaf.certFile, "CERTIFICATE", der); err != nil {
			return nil, err
		}
		if err := writePEM(leaf.keyFi, "PRIVATE KEY", keyDER); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func writePEM(file, typ string, der []byte) error {
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// ClientTLS returns a client configuration that trusts only the CA and
// presents the client certificate.
func (c *Certs) ClientTLS() (*tls.Config, error) {
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no certificate", c.CAFile)
	}
	pair, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// ServerArgs are the redis-server arguments that serve TLS only on port,
// with the server certificate, requiring clients to present a certificate
// of the CA (redis-server's default; add "--tls-auth-clients", "no" to
// drop that).
func (c *Certs) ServerArgs(port int) []string {
	return []string{
		"--port", "0", "--tls-port", fmt.Sprint(port),
		"--tls-cert-file", c.ServerCertFile, "--tls-key-file", c.ServerKeyFile,
		"--tls-ca-cert-file", c.CAFile,
	}
}

// StartTLS starts a redis-server for t that speaks TLS only, with
// certificates of a new CA (Server.Certs, Server.TLS), and stops it when t
// ends. Extra arguments follow, e.g. "--tls-auth-clients", "no". It never
// uses TEST_REDIS_URL.
func StartTLS(t testing.TB, args ...string) *Server {
	t.Helper()
	dir := t.TempDir()
	certs, err := NewCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := LaunchTLS(dir, certs, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// LaunchTLS starts a redis-server whose files live in dir and that speaks
// TLS only, with the certificates of certs. The caller must call Stop.
func LaunchTLS(dir string, certs *Certs, args ...string) (*Server, error) {
	cfg, err := certs.ClientTLS()
	if err != nil {
		return nil, err
	}
	s, err := launch(dir, cfg, func(s *Server, port int) ([]string, error) {
		return append(append(certs.ServerArgs(port), baseArgs(s.dir, port)...), args...), nil
	})
	if err != nil {
		return nil, err
	}
	s.Certs = certs
	return s, nil
}
