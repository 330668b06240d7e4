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
	"slices"
)

// PathFault names what a failed request says about the path from recallq to
// Tencent when that path is misconfigured rather than down: retrying the
// same request cannot help until an operator fixes it. The worker's outcome
// table maps each to what to fix.
type PathFault string

// Path faults. "" (PathOK) is any other failure: a refused or reset
// connection, a timeout (a TLS handshake's too), a 5xx, which may pass.
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
	// PathRedirect: HTTP 3xx. Tencent never redirects (and redirects are
	// not followed: the URL carries the UserSig): an http:// endpoint sent
	// to https://, a moved host, a login page in between.
	PathRedirect PathFault = "http_redirect"
	// PathRefusedRequest: HTTP 400, 411, 413, 414 or 431: a server that is
	// not Tencent's API refused the request as malformed or too large
	// (Tencent answers 200 to everything it reads): an http:// endpoint at
	// a port that serves TLS, or a proxy's limits on the URL (it carries
	// the UserSig), the headers or the body.
	PathRefusedRequest PathFault = "http_refused_request"
	// PathPlainHTTP: an https:// endpoint whose server answered in plain
	// HTTP (http.ErrSchemeMismatch): the simulator, a proxy's or gateway's
	// plain port.
	PathPlainHTTP PathFault = "plain_http"
	// PathTLSHandshake: the TLS handshake failed other than on the
	// certificate: the server does not speak TLS (a record that is not
	// TLS), or it refused the client with an alert about the two ends'
	// configuration (protocol version, cipher suites, server name, a
	// client certificate it wants). Not a timeout or a reset: those may
	// pass.
	PathTLSHandshake PathFault = "tls_handshake"
)

// configAlerts are the TLS alerts that say the two ends of the handshake
// disagree about their configuration, which no retry changes. The others
// (close_notify, bad_record_mac, decode_error, internal_error...) may come
// from a broken connection or a server's bad moment.
var configAlerts = []tls.AlertError{
	40,  // handshake_failure: no common cipher suite or parameters
	42,  // bad_certificate
	43,  // unsupported_certificate
	44,  // certificate_revoked
	45,  // certificate_expired
	46,  // certificate_unknown
	47,  // illegal_parameter
	48,  // unknown_ca
	49,  // access_denied
	70,  // protocol_version
	71,  // insufficient_security
	86,  // inappropriate_fallback
	109, // missing_extension
	110, // unsupported_extension
	112, // unrecognized_name: the server does not serve this host name
	116, // certificate_required: the server wants a client certificate
	120, // no_application_protocol
}

// configAlert reports whether err is one of configAlerts: a tls.AlertError
// (QUIC, and what crypto/tls may return one day), or, as crypto/tls
// reports an alert over TCP, a *net.OpError "remote error" or "local
// error" around its unexported alert type, known by its text.
func configAlert(err error) bool {
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return slices.Contains(configAlerts, alert)
	}
	return anyInTree(err, func(e error) bool {
		op, ok := e.(*net.OpError)
		if !ok || op.Err == nil || (op.Op != "remote error" && op.Op != "local error") {
			return false
		}
		text := op.Err.Error()
		return slices.ContainsFunc(configAlerts, func(a tls.AlertError) bool { return a.Error() == text })
	})
}

// anyInTree reports whether ok holds for err or any error it wraps.
func anyInTree(err error, ok func(error) bool) bool {
	for err != nil {
		if ok(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			return slices.ContainsFunc(u.Unwrap(), func(e error) bool { return anyInTree(e, ok) })
		default:
			return false
		}
	}
	return false
}

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
		recordErr tls.RecordHeaderError
	)
	switch {
	case err == nil:
		return PathOK
	case errors.As(err, &verifyErr), errors.As(err, &authErr), errors.As(err, &hostErr), errors.As(err, &invalid):
		return PathCertificate
	case errors.Is(err, http.ErrSchemeMismatch),
		errors.As(err, &recordErr) && string(recordErr.RecordHeader[:]) == "HTTP/":
		// net/http turns the second into the first, unless something
		// wraps its transport.
		return PathPlainHTTP
	case errors.As(err, &recordErr) && recordErr.Conn != nil, configAlert(err):
		// crypto/tls sets Conn only for a first record that does not look
		// like TLS; a bad record later (oversized, another version) may be
		// a broken connection.
		return PathTLSHandshake
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
		case http.StatusBadRequest, http.StatusLengthRequired, http.StatusRequestEntityTooLarge,
			http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge:
			return PathRefusedRequest
		}
		if httpErr.Status >= 300 && httpErr.Status < 400 {
			return PathRedirect
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
