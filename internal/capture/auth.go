package capture

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Secret is a credential of the capture (the callback token, the secret
// path segment). Its String, GoString and LogValue never show it.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return "(unset)"
	}
	return "(redacted)"
}
func (s Secret) GoString() string     { return s.String() }
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Auth is how the capture tells Tencent's callbacks from anyone else's.
// Every check that is configured must pass; the SDKAppID check always
// applies.
type Auth struct {
	// SDKAppIDs are the apps whose callbacks are indexed. Required:
	// Tencent's documentation asks the receiver to check the SdkAppid of
	// the URL.
	SDKAppIDs []uint64
	// Token is the callback authentication token set in the Chat console
	// (or with set_callback_token). When set, every request must carry
	// RequestTime (Unix seconds) and Sign = hex(sha256(Token +
	// RequestTime)) in its URL, with RequestTime within MaxSkew of now.
	Token Secret
	// MaxSkew bounds how far RequestTime may be from now. Default
	// DefaultMaxSkew.
	MaxSkew time.Duration
	// AllowIPs, when not empty, are the networks callbacks may come from
	// (the TCP peer's address; put the capture behind no proxy, or
	// allow the proxy's).
	AllowIPs []netip.Prefix
	// PathSecret, when set, is a path segment the callback URL must end
	// with: /callback/<PathSecret>. A request to any other path answers 404.
	PathSecret Secret
}

// DefaultMaxSkew is the default Auth.MaxSkew.
const DefaultMaxSkew = 5 * time.Minute

// Refusal reasons, as counted in Stats.Refused.
const (
	RefusedPath    = "path"
	RefusedIP      = "ip"
	RefusedApp     = "sdkappid"
	RefusedSign    = "sign"
	RefusedMethod  = "method"
	RefusedBody    = "body"
	RefusedTooLong = "too_large"
)

// errRefused carries the reason for the count and a message for the
// answer (which never echoes a secret).
type errRefused struct {
	reason, msg string
}

func (e *errRefused) Error() string { return e.msg }

func refused(reason, format string, args ...any) error {
	return &errRefused{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// ErrAuthConfig is wrapped by the errors of Auth.validate.
var ErrAuthConfig = errors.New("capture: bad authentication settings")

func (a *Auth) validate() error {
	if a.MaxSkew == 0 {
		a.MaxSkew = DefaultMaxSkew
	}
	switch {
	case len(a.SDKAppIDs) == 0:
		return fmt.Errorf("%w: no SDKAppID: give the app's SDKAppID from the Chat console", ErrAuthConfig)
	case a.MaxSkew < 0:
		return fmt.Errorf("%w: MaxSkew %v is negative", ErrAuthConfig, a.MaxSkew)
	case strings.ContainsAny(string(a.PathSecret), "/?#% "):
		return fmt.Errorf("%w: the secret path segment may not contain '/', '?', '#', '%%' or spaces", ErrAuthConfig)
	case a.Token == "" && len(a.AllowIPs) == 0 && a.PathSecret == "":
		return fmt.Errorf("%w: no authentication: set the callback token (and the same in the Chat console), an IP allowlist, or a secret path segment", ErrAuthConfig)
	}
	for _, id := range a.SDKAppIDs {
		if id == 0 {
			return fmt.Errorf("%w: SDKAppID 0: give the app's SDKAppID from the Chat console", ErrAuthConfig)
		}
	}
	return nil
}

// checkPath checks the request path: /callback, or /callback/<PathSecret>
// when one is set.
func (a *Auth) checkPath(path string) error {
	want := CallbackPath
	if a.PathSecret != "" {
		want += "/" + string(a.PathSecret)
	}
	if subtle.ConstantTimeCompare([]byte(path), []byte(want)) != 1 {
		return refused(RefusedPath, "no callback here")
	}
	return nil
}

// checkIP checks the TCP peer against AllowIPs.
func (a *Auth) checkIP(remoteAddr string) error {
	if len(a.AllowIPs) == 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return refused(RefusedIP, "the caller's address is not allowed")
	}
	ip = ip.Unmap()
	for _, p := range a.AllowIPs {
		if p.Contains(ip) {
			return nil
		}
	}
	return refused(RefusedIP, "the caller's address %s is not allowed", ip)
}

// checkApp parses the URL's SdkAppid and checks it is one of SDKAppIDs.
func (a *Auth) checkApp(v string) (uint64, error) {
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, refused(RefusedApp, "SdkAppid %q is not an app this capture serves", truncate(v, 20))
	}
	for _, want := range a.SDKAppIDs {
		if id == want {
			return id, nil
		}
	}
	return 0, refused(RefusedApp, "SdkAppid %d is not an app this capture serves", id)
}

// checkSign checks RequestTime and Sign when a Token is set.
func (a *Auth) checkSign(requestTime, sign string, now time.Time) error {
	if a.Token == "" {
		return nil
	}
	if requestTime == "" || sign == "" {
		return refused(RefusedSign, "RequestTime and Sign are missing: the callback token is required")
	}
	t, err := strconv.ParseInt(requestTime, 10, 64)
	if err != nil {
		return refused(RefusedSign, "RequestTime is not a number of seconds")
	}
	if d := now.Sub(time.Unix(t, 0)); d > a.MaxSkew || d < -a.MaxSkew {
		return refused(RefusedSign, "RequestTime is %s away from this server's clock; at most %s is allowed", d.Round(time.Second), a.MaxSkew)
	}
	sum := sha256.Sum256([]byte(string(a.Token) + requestTime))
	want := hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(sign)), []byte(want)) != 1 {
		return refused(RefusedSign, "Sign does not match the callback token")
	}
	return nil
}

// SignFor returns the Sign Tencent puts in the URL for token at
// requestTime: the hex SHA-256 of token followed by the decimal time. The
// simulator and the benchmark use it.
func SignFor(token string, requestTime int64) string {
	sum := sha256.Sum256([]byte(token + strconv.FormatInt(requestTime, 10)))
	return hex.EncodeToString(sum[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
