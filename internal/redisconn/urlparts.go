package redisconn

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// schemes are the URL schemes Parse takes.
var schemes = []string{"redis", "rediss", "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster"}

// urlParts is a Redis URL cut into its scheme, its decoded credentials and
// the rest (hosts, path, query), so that the URL can be parsed, printed and
// reported on without its password.
type urlParts struct {
	scheme string
	// hasUser: the URL has a user part ("user:password@" or ":password@").
	hasUser        bool
	user, password string
	// rest is everything after the '@' (or after "://" without one).
	rest string
}

// splitURL cuts rawURL into its parts. It never parses the credentials as
// part of a URL, and its errors (wrapping ErrBadURL) say which part is
// wrong without quoting any of it but the scheme.
func splitURL(rawURL string) (urlParts, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok || !validScheme(scheme) {
		what := "it has no scheme"
		if ok {
			what = fmt.Sprintf("the scheme %q is not one recallq knows", scheme)
		}
		return urlParts{}, fmt.Errorf("%w: %s: use redis://host:port/db (rediss:// for TLS), "+
			"redis-sentinel://host1:port1,host2:port2/db?master=NAME or redis-cluster://host1:port1,host2:port2", ErrBadURL, what)
	}
	p := urlParts{scheme: scheme, rest: rest}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return p, nil
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 && end < at {
		return urlParts{}, fmt.Errorf("%w: the user or password holds '/', '?' or '#' (or an '@' follows the host), "+
			"which ends the URL's host part: percent-encode them in the URL ('/' is %%2F, '?' %%3F, '#' %%23, '@' %%40, '%%' %%25)", ErrBadURL)
	}
	userinfo := rest[:at]
	p.hasUser, p.rest = true, rest[at+1:]
	user, password, hasPassword := strings.Cut(userinfo, ":")
	if !hasPassword {
		return urlParts{}, fmt.Errorf("%w: the URL has a user name but no password (user@host): "+
			"if that is the password, put a ':' before it (%s://:PASSWORD@host)", ErrBadURL, scheme)
	}
	var err error
	if p.user, err = url.PathUnescape(user); err != nil {
		return urlParts{}, fmt.Errorf("%w: the user name holds a '%%' that does not start an escape: write it as %%25", ErrBadURL)
	}
	if p.password, err = url.PathUnescape(password); err != nil {
		return urlParts{}, fmt.Errorf("%w: the password holds a '%%' that does not start an escape: write it as %%25, "+
			"and percent-encode the password as a whole", ErrBadURL)
	}
	return p, nil
}

func validScheme(s string) bool { return slices.Contains(schemes, s) }

// with rebuilds the URL with the given password in place of the real one.
func (p urlParts) with(password string) string {
	if !p.hasUser {
		return p.scheme + "://" + p.rest
	}
	return p.scheme + "://" + url.UserPassword(p.user, password).String() + "@" + p.rest
}

// clean is the URL with its credentials escaped as net/url wants them.
func (p urlParts) clean() string { return p.with(p.password) }

// placeholder is the URL with a password that is not a secret: what it
// fails to parse for, the real one fails for too.
func (p urlParts) placeholder() string { return p.with("x") }

// redacted is the URL for logs.
func (p urlParts) redacted() string { return p.with("xxxxx") }
