package tim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestMisconfiguredPaths makes each broken path for real (a certificate
// nobody trusts, a host that does not exist, a proxy that refuses, a URL
// that leads nowhere) and checks what Misconfigured says of Withdraw's
// error, beside failures that may pass and must stay transient.
func TestMisconfiguredPaths(t *testing.T) {
	status := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	// A proxy that refuses every CONNECT.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)
	viaProxy := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	// An https:// endpoint in front of a server that speaks plain HTTP.
	plain := "https://" + strings.TrimPrefix(status(http.StatusOK), "http://")
	// A server that speaks neither TLS nor HTTP.
	notTLS := serveRaw(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n")) })
	// A TLS server that wants a client certificate: it alerts (116).
	mTLS := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	mTLS.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	mTLS.StartTLS()
	t.Cleanup(mTLS.Close)
	// A server that accepts and never answers the handshake, for a client
	// that gives up after 100 ms; one that resets every connection.
	silent := "https://" + strings.TrimPrefix(serveRaw(t, func(c net.Conn) { time.Sleep(2 * time.Second) }), "http://")
	impatient := &http.Client{Transport: &http.Transport{TLSHandshakeTimeout: 100 * time.Millisecond}}
	reset := serveRaw(t, func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) })
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()

	for _, tt := range []struct {
		name     string
		endpoint string
		client   *http.Client
		want     PathFault
	}{
		{"untrusted certificate", tlsSrv.URL, nil, PathCertificate},
		{"host does not exist", "http://no-such-host.invalid", nil, PathDNS},
		{"proxy refuses CONNECT", "https://console.tim.qq.com.invalid", viaProxy, PathProxyRefused},
		{"gateway answers 403", status(http.StatusForbidden), nil, PathProxyRefused},
		{"proxy wants authentication", status(http.StatusProxyAuthRequired), nil, PathProxyRefused},
		{"wrong endpoint: 404", status(http.StatusNotFound), nil, PathNotFound},
		{"gateway down: 502", status(http.StatusBadGateway), nil, PathOK},
		{"overloaded: 503", status(http.StatusServiceUnavailable), nil, PathOK},
		{"connection refused", closed, nil, PathOK},
		{"connection reset", reset, nil, PathOK},
		{"TLS handshake timeout", silent, impatient, PathOK},
		{"https:// to a plain-HTTP server", plain, nil, PathPlainHTTP},
		{"https:// to a server that is not TLS", "https://" + strings.TrimPrefix(notTLS, "http://"), nil, PathTLSHandshake},
		{"TLS server wants a client certificate", mTLS.URL, mTLS.Client(), PathTLSHandshake},
		{"redirect: 301", status(http.StatusMovedPermanently), nil, PathRedirect},
		{"redirect: 307", status(http.StatusTemporaryRedirect), nil, PathRedirect},
		{"http:// to a TLS port: 400", "http://" + strings.TrimPrefix(tlsSrv.URL, "https://"), nil, PathRefusedRequest},
		{"a proxy's URL limit: 414", status(http.StatusRequestURITooLong), nil, PathRefusedRequest},
		{"a proxy's header limit: 431", status(http.StatusRequestHeaderFieldsTooLarge), nil, PathRefusedRequest},
		{"a proxy's body limit: 413", status(http.StatusRequestEntityTooLarge), nil, PathRefusedRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == PathDNS {
				var dnsErr *net.DNSError
				if _, err := net.DefaultResolver.LookupHost(context.Background(), "no-such-host.invalid"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
					t.Skipf("this machine's resolver does not answer NXDOMAIN for .invalid (%v)", err)
				}
			}
			c := newTestClient(t, tt.endpoint, Config{HTTPClient: tt.client})
			_, err := c.Withdraw(context.Background(), "a", "b", "1_2_3")
			if err == nil {
				t.Fatal("Withdraw succeeded")
			}
			if got := Misconfigured(err); got != tt.want {
				t.Errorf("Misconfigured(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
	// Errors no server here makes: a QUIC-style alert; over TCP,
	// crypto/tls reports an alert as a *net.OpError around its unexported
	// alert type, which prints as these do.
	for _, tt := range []struct {
		err  error
		want PathFault
	}{
		{fmt.Errorf("handshake: %w", tls.AlertError(40)), PathTLSHandshake},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: protocol version not supported")}, PathTLSHandshake},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: bad record MAC")}, PathOK}, // a broken record, not a configuration
		{tls.RecordHeaderError{Msg: "oversized record received with length 20000"}, PathOK},
	} {
		if got := Misconfigured(tt.err); got != tt.want {
			t.Errorf("Misconfigured(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// serveRaw serves every TCP connection with handle (then closes it) and
// returns the http:// URL of the listener.
func serveRaw(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}
