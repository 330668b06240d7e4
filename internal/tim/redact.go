package tim

import (
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces a secret wherever this package removes one.
const Redacted = "REDACTED"

// usersigParam matches a usersig query parameter and its value, in any case,
// written plainly (usersig=) or query-escaped inside another URL
// (usersig%3D). The value runs to the next '&', whitespace, quote, angle
// bracket or backslash (so that an escape in JSON text stays intact; a
// UserSig has none of these characters); when in doubt it takes more rather
// than less.
var usersigParam = regexp.MustCompile(`(?i)(usersig(?:=|%3D))[^&\s"'<>\\]*`)

// Redact returns s with the value of every usersig query parameter replaced
// by "REDACTED". Use it on any text that may hold a request URL before the
// text is logged, stored or shown: Go's *url.Error, for one, prints the
// whole URL, and the UserSig travels in the query string.
//
// Redact knows no secrets, so it cannot remove a UserSig or a secret key
// that appears elsewhere than in a usersig parameter. Errors returned by a
// Client are redacted more thoroughly: they also lose every occurrence of the
// client's secret key and of its current and previous UserSig.
func Redact(s string) string {
	if !strings.Contains(strings.ToLower(s), "usersig") {
		return s
	}
	return usersigParam.ReplaceAllString(s, "${1}"+Redacted)
}

// redactor removes a client's own secrets from text, in addition to what
// Redact removes.
type redactor struct {
	key  string
	sigs func() []string // the UserSigs that may appear in text
}

func (r redactor) redact(s string) string {
	s = Redact(s)
	secrets := append(r.sigs(), r.key)
	for _, v := range secrets {
		if v == "" {
			continue
		}
		s = strings.ReplaceAll(s, v, Redacted)
		if q := url.QueryEscape(v); q != v {
			s = strings.ReplaceAll(s, q, Redacted)
		}
	}
	return s
}

// redactedError carries an error whose text has been redacted. The causes
// stay reachable with errors.Is and errors.As; a *url.Error among them has
// had its URL redacted as well.
type redactedError struct {
	msg   string
	cause []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.cause }

// redactErr returns err with prefix and its text redacted by r. It redacts
// the URL of every *url.Error in err's chain in place, so that printing an
// error found with errors.As does not leak either. extra are further causes
// to report, such as ErrTransport.
func (r redactor) redactErr(prefix string, err error, extra ...error) error {
	redactURLErrors(err, r.redact)
	return &redactedError{
		msg:   prefix + ": " + r.redact(err.Error()),
		cause: append(extra, err),
	}
}

// redactURLErrors rewrites the URL of every *url.Error in err's tree.
func redactURLErrors(err error, redact func(string) string) {
	for err != nil {
		if ue, ok := err.(*url.Error); ok {
			ue.URL = redact(ue.URL)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				redactURLErrors(e, redact)
			}
			return
		default:
			return
		}
	}
}
