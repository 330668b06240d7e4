package redisconn

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		wantAddr  string
		wantDB    int
		wantTLS   bool
		wantErr   bool
	}{
		{"default", "", "127.0.0.1:6379", 0, false, false},
		{"db", "redis://10.0.0.1:6380/3", "10.0.0.1:6380", 3, false, false},
		{"tls", "rediss://:pw@cache:6379/0", "cache:6379", 0, true, false},
		{"scheme", "http://cache:6379", "", 0, false, true},
		{"bad db", "redis://:s3cret@cache:6379/notanumber", "", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.url)
			if tc.wantErr {
				if err == nil || !errors.Is(err, ErrBadURL) {
					t.Fatalf("err = %v, want ErrBadURL", err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := c.Options()
			if o.Addr != tc.wantAddr || o.DB != tc.wantDB || (o.TLSConfig != nil) != tc.wantTLS {
				t.Fatalf("got addr=%s db=%d tls=%v", o.Addr, o.DB, o.TLSConfig != nil)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:s3cret@h:1/0":      "redis://:xxxxx@h:1/0",
		"redis://u:s3cret@h:1/0":     "redis://u:xxxxx@h:1/0",
		"redis://h:1/0":              "redis://h:1/0",
		"rediss://u:s3c ret@h:1/0 x": "rediss://xxxxx@h:1/0 x",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
