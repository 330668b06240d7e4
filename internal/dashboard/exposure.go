package dashboard

import (
	"context"
	"net"
	"unicode/utf8"
)

// MinPasswordLen is the length below which the dashboard's password is
// reported as weak: anyone who reaches the port may try it (ten times, then
// once every few seconds per address: see loginguard).
const MinPasswordLen = 16

// warnExposure warns, once at start, of a short password and of plain HTTP
// on an address other hosts can reach: Basic auth sends the password with
// every request, readable by anyone on the path unless TLS (a proxy in
// front) protects it.
func (d *Dashboard) warnExposure(ctx context.Context, addr net.Addr) {
	if n := utf8.RuneCountInString(d.cfg.Password); !d.cfg.Open && n < MinPasswordLen {
		d.log.WarnContext(ctx, "dashboard: the password is short: anyone who can reach the port may guess it; "+
			"use 16 random characters or more (DASHBOARD_PASSWORD_FILE)", "length", n, "want_at_least", MinPasswordLen,
			"addr", addr.String())
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		d.log.WarnContext(ctx, "dashboard: serving plain HTTP beyond this machine: the password crosses the network "+
			"readable; put a proxy that terminates TLS in front, or listen on 127.0.0.1 and reach it through an SSH tunnel",
			"addr", addr.String())
	}
}
