package tim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
)

// PathFault names what a failed request says about the path from recallq to
// Tencent when that path is misconfigured rather than down: retrying the
// same request cannot help until an operator fixes it. The worker's outcome
// table maps each to what to fix.
type PathFault string

// Path faults. "" (PathOK) is any other failure: a refused or reset
// connection, a timeout, a 5xx, which may pass.
const (
	PathOK PathFault = ""
	// PathCertificate: the TLS certificate was not accepted (x509: unknown
	// authority, expired, wrong host name): a TLS-intercepting proxy
	// without its CA in the trust store, a wrong TIM_ENDPOINT, a missing
	// CA bundle in the image.
	PathCertificate PathFault = "tls_certificate"
	// PathDNS: the endpoint's host name does not exist (NXDOMAIN), not a
	// DNS timeout.
	PathDNS PathFault = "dns_not_found"
	// PathProxyRefused: a proxy or gateway between recallq and Tencent
	// refused the request (CONNECT answered other than 200, or HTTP 401,
	// 403, 407): Tencent answers 200 to everything it reads.
	PathProxyRefused PathFault = "proxy_refused"
	// PathNotFound: HTTP 404, 405 or 410: the URL does not lead to
	// Tencent's REST API (a wrong TIM_ENDPOINT or path prefix).
	PathNotFound PathFault = "http_not_found"
)

// ProxyError reports a proxy's refusal of a CONNECT request (HTTPS through
// an HTTP proxy): the request never reached Tencent.
type ProxyError struct {
	Status int
}

func (e *ProxyError) Error() string {
	return fmt.Sprintf("the proxy answered CONNECT with HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// Misconfigured returns the PathFault err (an error of Withdraw) shows, or
// PathOK when it shows none.
func Misconfigured(err error) PathFault {
	var (
		httpErr   *HTTPError
		proxyErr  *ProxyError
		dnsErr    *net.DNSError
		verifyErr *tls.CertificateVerificationError
		authErr   x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case err == nil:
		return PathOK
	case errors.As(err, &verifyErr), errors.As(err, &authErr), errors.As(err, &hostErr), errors.As(err, &invalid):
		return PathCertificate
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return PathDNS
	case errors.As(err, &proxyErr):
		return PathProxyRefused
	case errors.As(err, &httpErr):
		switch httpErr.Status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
			return PathProxyRefused
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusGone:
			return PathNotFound
		}
	}
	return PathOK
}

// typeProxyRefusals makes t report a proxy's refusal of CONNECT as a
// *ProxyError (net/http reports it as a bare error carrying the status
// text), unless t already has an OnProxyConnectResponse.
func typeProxyRefusals(t *http.Transport) {
	if t.OnProxyConnectResponse != nil {
		return
	}
	t.OnProxyConnectResponse = func(_ context.Context, _ *url.URL, _ *http.Request, res *http.Response) error {
		if res.StatusCode != http.StatusOK {
			return &ProxyError{Status: res.StatusCode}
		}
		return nil
	}
}
