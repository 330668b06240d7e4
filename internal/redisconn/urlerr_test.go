package redisconn

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// A URL that does not parse is never echoed: a generated password often
// holds '/', '?' or '#', which end the authority of an unescaped URL, and
// then every form of the URL, redacted or not, shows the password's tail.
// The error says which part is wrong instead.
func TestBadURLErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Zq8/r?k#T2@x"
	for _, tc := range []struct {
		name, url, want string
	}{
		{"slash in password", "redis://:Zq8/r?k#T2@x@cache:6379/0", "percent-encode"},
		{"slash in password, user", "redis://app:Zq8/r?k#T2@x@cache:6379/0", "percent-encode"},
		{"slash in sentinel password", "redis-sentinel://:Zq8/r?k#T2@x@h1,h2/0?master=m", "percent-encode"},
		{"slash in cluster password", "rediss-cluster://:Zq8/r?k#T2@x@h1,h2", "percent-encode"},
		{"password as user name", "redis://Zq8%2Fr%3Fk%23T2%40x@cache:6379/0", "no password"},
		{"bad escape in password", "redis://:Zq8/r?k#T2@x%zz@cache:6379/0", "percent-encode"},
		{"bad escape only", "redis://:Zq8r%zzk@cache:6379/0", "'%'"},
		{"bad port", "redis://:Zq8r@cache:port/0", "port"},
		{"bad db", "redis://:Zq8r@cache:6379/x", "database"},
		{"bad scheme", "http://:Zq8/r?k#T2@x@cache:6379/0", "redis://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.url)
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("err = %v, want ErrBadURL", err)
			}
			for _, part := range []string{pw, "Zq8", "T2@x", "r?k", "Zq8r", url.QueryEscape(pw)} {
				if strings.Contains(err.Error(), part) {
					t.Fatalf("the error shows (part of) the password %q: %v", part, err)
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("the error does not say what is wrong (%q): %v", tc.want, err)
			}
		})
	}
}

// A percent-encoded password parses, and reaches the client decoded.
func TestEncodedPasswordParses(t *testing.T) {
	t.Parallel()
	c, err := Parse("redis://:" + url.PathEscape("Zq8/r?k#T2@x") + "@cache:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Options().Password; got != "Zq8/r?k#T2@x" {
		t.Fatalf("password = %q", got)
	}
	if strings.Contains(c.String(), "Zq8") {
		t.Fatalf("String() shows the password: %s", c)
	}
}
