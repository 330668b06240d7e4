package tim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
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
}
