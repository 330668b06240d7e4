package dashboard

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// loopbackHostOnly refuses (403) a request whose Host is not a loopback
// name: localhost, an address in 127.0.0.0/8, or ::1, with any port.
//
// It guards an open dashboard against DNS rebinding: a page on
// evil.example can point its own name at 127.0.0.1 and then drive the
// user's browser against the open dashboard as a same-origin page, so the
// cross-origin check passes; but the browser still sends
// Host: evil.example. A dashboard with credentials does not need it (the
// browser does not send them to another name), and a proxy in front of it
// may rightly send its own public name.
func loopbackHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopbackHost(r.Host) {
			http.Error(w, "403 Forbidden: this dashboard runs without authentication (--open) and answers only "+
				"requests addressed to localhost, 127.0.0.1 or [::1]; open it by one of those names", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isLoopbackHost reports whether host (a Host header: a name or address,
// with or without a port) is a loopback name.
func isLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
