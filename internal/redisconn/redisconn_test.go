package redisconn

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func TestParse(t *testing.T) {
	t.Parallel()
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
			if c.Kind() != Standalone || o.Addr != tc.wantAddr || o.DB != tc.wantDB || (o.TLSConfig != nil) != tc.wantTLS {
				t.Fatalf("got kind=%v addr=%s db=%d tls=%v", c.Kind(), o.Addr, o.DB, o.TLSConfig != nil)
			}
		})
	}
}

// Each URL form maps to asynq's option of its kind, with the same servers
// and credentials as the go-redis client.
func TestParseSentinelAndCluster(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		want      asynq.RedisConnOpt
	}{
		{"sentinel", "redis-sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/2?master=mymaster",
			asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"10.0.0.1:26379", "10.0.0.2:26380"},
				Password: "s3cret", DB: 2}},
		{"sentinel acl user, default port", "redis-sentinel://app:s3cret@s1,[::1]/0?master=m1",
			asynq.RedisFailoverClientOpt{MasterName: "m1", SentinelAddrs: []string{"s1:26379", "[::1]:26379"},
				Username: "app", Password: "s3cret"}},
		{"sentinel without password or db", "redis-sentinel://s1:1,s2:2,s3:3?master=m",
			asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"s1:1", "s2:2", "s3:3"}}},
		{"cluster", "redis-cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001",
			asynq.RedisClusterClientOpt{Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7001"}, Password: "s3cret"}},
		{"cluster, default port, db 0", "redis-cluster://n1,n2/0",
			asynq.RedisClusterClientOpt{Addrs: []string{"n1:6379", "n2:6379"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(c.String(), "s3cret") {
				t.Fatalf("String() shows the password: %s", c)
			}
			for name, rdb := range map[string]any{"Client": c.Client(), "AsynqOpt": c.AsynqOpt().MakeRedisClient()} {
				defer rdb.(redis.UniversalClient).Close()
				switch want := tc.want.(type) {
				case asynq.RedisFailoverClientOpt:
					if c.Kind() != Sentinel || c.Options() != nil {
						t.Fatalf("Kind() = %v, Options() = %v", c.Kind(), c.Options())
					}
					if o := rdb.(*redis.Client).Options(); o.Password != want.Password || o.Username != want.Username || o.DB != want.DB {
						t.Fatalf("%s: failover client user %q password set %v db %d", name, o.Username, o.Password != "", o.DB)
					}
					if got := c.failover; got.MasterName != want.MasterName || !reflect.DeepEqual(got.SentinelAddrs, want.SentinelAddrs) {
						t.Fatalf("%s: master %q sentinels %v", name, got.MasterName, got.SentinelAddrs)
					}
				case asynq.RedisClusterClientOpt:
					o := rdb.(*redis.ClusterClient).Options()
					if c.Kind() != Cluster || !reflect.DeepEqual(o.Addrs, want.Addrs) || o.Password != want.Password {
						t.Fatalf("%s: Kind() = %v, cluster client addrs %v", name, c.Kind(), o.Addrs)
					}
				}
			}
		})
	}
}

func TestParseRefusesBadMultiHostURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, url, hint string }{
		{"no master", "redis-sentinel://:s3cret@h1:1,h2:2/0", "?master=NAME"},
		{"unknown option", "redis-sentinel://:s3cret@h1:1/0?master=m&dial_timeout=3", "dial_timeout"},
		{"empty host", "redis-sentinel://:s3cret@h1:1,,h2:2/0?master=m", "empty host"},
		{"bad port", "redis-cluster://:s3cret@h1:99999", "port"},
		{"ipv6 without brackets", "redis-cluster://:s3cret@::1", "brackets"},
		{"two ports", "redis-cluster://:s3cret@h:1:2", "brackets"},
		{"cluster db", "redis-cluster://:s3cret@h1:1/3", "database 0 only"},
		{"cluster option", "redis-cluster://:s3cret@h1:1?master=m", "master"},
		{"bad db", "redis-sentinel://:s3cret@h1:1/x?master=m", "database number"},
		{"bad escape", "redis-cluster://:s3cret@h1:1/%zz", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.url)
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("err = %v, want ErrBadURL", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("error %q does not say %q", err, tc.hint)
			}
		})
	}
}

func TestOptionsMustFitTheURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		o         Options
		wantIs    error
	}{
		{"CA file on a plain URL", "redis://h:1/0", Options{CAFile: notPEM}, ErrBadOptions},
		{"skip verify on a plain cluster URL", "redis-cluster://h:1", Options{InsecureSkipVerify: true}, ErrBadOptions},
		{"sentinel password on a plain URL", "redis://:s3cret@h:1/0", Options{SentinelPassword: "x"}, ErrBadOptions},
		{"missing CA file", "rediss://:s3cret@h:1/0", Options{CAFile: filepath.Join(dir, "none.pem")}, fs.ErrNotExist},
		{"CA file without a certificate", "rediss://:s3cret@h:1/0", Options{CAFile: notPEM}, ErrBadOptions},
		{"certificate without key", "rediss://h:1/0", Options{CertFile: notPEM}, ErrBadOptions},
		{"unreadable key pair", "rediss-sentinel://h:1/0?master=m", Options{CertFile: notPEM, KeyFile: notPEM}, ErrBadOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWith(tc.url, tc.o)
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("err = %v, want %v", err, tc.wantIs)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestOptionsReachTheClients(t *testing.T) {
	t.Parallel()
	c, err := ParseWith("rediss-sentinel://:pw@s1:1,s2:2/0?master=m",
		Options{InsecureSkipVerify: true, SentinelUsername: "watcher", SentinelPassword: "spw"})
	if err != nil {
		t.Fatal(err)
	}
	o := c.failover
	if o.SentinelUsername != "watcher" || o.SentinelPassword != "spw" || o.Password != "pw" {
		t.Fatalf("credentials: sentinel %q/%q, primary %q", o.SentinelUsername, o.SentinelPassword, o.Password)
	}
	if o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName != "" {
		t.Fatalf("TLS config %+v: want verification off and no fixed server name (several hosts)", o.TLSConfig)
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv(EnvCAFile, "/ca.pem")
	t.Setenv(EnvCertFile, "/c.pem")
	t.Setenv(EnvKeyFile, "/k.pem")
	t.Setenv(EnvSentinelUsername, "u")
	t.Setenv(EnvSentinelPassword, "p")
	t.Setenv(EnvInsecureSkipVerify, "true")
	o, err := OptionsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := Options{CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem", InsecureSkipVerify: true,
		SentinelUsername: "u", SentinelPassword: "p"}
	if o != want {
		t.Fatalf("OptionsFromEnv() = %+v, want %+v", o, want)
	}
	// A caller that takes its environment as a function reads the same
	// settings from it, and none from the process's.
	env := map[string]string{EnvCAFile: "/other-ca.pem"}
	if o, err := OptionsFrom(func(k string) string { return env[k] }); err != nil || o != (Options{CAFile: "/other-ca.pem"}) {
		t.Fatalf("OptionsFrom(a map) = %+v, %v; want the map's settings only", o, err)
	}
	t.Setenv(EnvInsecureSkipVerify, "yes")
	if _, err := OptionsFromEnv(); !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), EnvInsecureSkipVerify) {
		t.Fatalf("err = %v, want ErrBadOptions naming %s", err, EnvInsecureSkipVerify)
	}
}

func TestWithRetriesReachesBothClients(t *testing.T) {
	t.Parallel()
	r := Retries{Max: 7, MinBackoff: time.Millisecond, MaxBackoff: time.Second, ReadTimeout: 11 * time.Second}
	for _, url := range []string{"redis://h:1/0", "redis-sentinel://s:1/0?master=m", "redis-cluster://n:1"} {
		t.Run(url, func(t *testing.T) {
			base, err := Parse(url)
			if err != nil {
				t.Fatal(err)
			}
			c := base.WithRetries(r)
			for name, rdb := range map[string]any{
				"Client":   c.Client(),
				"AsynqOpt": c.AsynqOpt().MakeRedisClient(),
			} {
				var got Retries
				switch v := rdb.(type) {
				case *redis.Client:
					o := v.Options()
					got = Retries{o.MaxRetries, o.MinRetryBackoff, o.MaxRetryBackoff, o.ReadTimeout}
				case *redis.ClusterClient:
					o := v.Options()
					got = Retries{o.MaxRedirects, o.MinRetryBackoff, o.MaxRetryBackoff, o.ReadTimeout}
				}
				rdb.(redis.UniversalClient).Close()
				if got != r {
					t.Errorf("%s retries %+v, want %+v", name, got, r)
				}
			}
			if base.retries != nil {
				t.Error("WithRetries changed the Conn it was called on")
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://:s3cret@h:1/0":                         "redis://:xxxxx@h:1/0",
		"redis://u:s3cret@h:1/0":                        "redis://u:xxxxx@h:1/0",
		"redis://h:1/0":                                 "redis://h:1/0",
		"rediss://u:s3c ret@h:1/0 x":                    "rediss://xxxxx@h:1/0 x",
		"redis-sentinel://:s3cret@h1:1,h2:2/0?master=m": "redis-sentinel://:xxxxx@h1:1,h2:2/0?master=m",
		"redis-cluster://u:s3cret@h1:1,h2:2":            "redis-cluster://u:xxxxx@h1:1,h2:2",
		// A password with '@' in an error message that quotes the URL.
		`parse "redis-cluster://:p@s3cret@h1:1/%zz": invalid URL escape`: `parse "redis-cluster://xxxxx@h1:1/%zz": invalid URL escape`,
		"dial a://:s3cret@h then b://:s3cret@k/0":                        "dial a://xxxxx@h then b://xxxxx@k/0",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(Redact(in), "s3cret") {
			t.Errorf("Redact(%q) leaks the password", in)
		}
	}
}
