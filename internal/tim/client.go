// Package tim is the client of Tencent Cloud Chat's (formerly TIM's) REST
// API that recallq needs: admin_msgwithdraw, which recalls one one-to-one
// message as the app admin, group_msg_recall (GroupRecall), which recalls
// up to ten messages of a group, and admin_getroammsg.
//
// A Client signs every request with the admin's UserSig, which it generates
// from the app's secret key, caches and shares between goroutines, and
// regenerates well before it expires. It reports Tencent's answer as it came
// (a Tencent error code is not a Go error) and returns a Go error only when
// no Tencent answer could be read; what each code means for a recall task is
// decided by the worker, not here.
//
// Neither the secret key nor a UserSig ever appears in an error or a log
// line of this package. Redact removes UserSigs from any other text.
package tim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// Defaults applied by New to a zero Config field.
const (
	// DefaultAdmin is the default Config.Admin, the admin account Tencent
	// creates with every app.
	DefaultAdmin = "admin"
	// DefaultSigLifetime is the default Config.SigLifetime. Tencent advises
	// a UserSig valid for at least 24 hours.
	DefaultSigLifetime = 48 * time.Hour
	// DefaultHTTPTimeout is the Timeout of the default Config.HTTPClient:
	// longer than the 3 s Tencent's REST servers allow themselves.
	DefaultHTTPTimeout = 5 * time.Second
	// DefaultMaxIdleConnsPerHost is the number of idle keep-alive
	// connections the default Config.HTTPClient keeps to Tencent's domain,
	// enough for every worker goroutine to reuse one.
	DefaultMaxIdleConnsPerHost = 256
)

// MaxResponseBytes is the largest response body a Client reads. Tencent's
// answers to admin_msgwithdraw are a few dozen bytes.
const MaxResponseBytes = 64 << 10

// maxDrainBytes is how much of an unread response body a Client discards so
// that the connection can be reused; a longer body closes the connection.
const maxDrainBytes = 256 << 10

// CodeUserSigExpired is Tencent's error code for an expired UserSig.
const CodeUserSigExpired = 70001

// The names of the APIs the client calls: each has its own rate cap per
// app, so each names its own bucket of the shared limiter
// (limiter.BucketName).
const (
	// APIWithdraw recalls one one-to-one message.
	APIWithdraw = "admin_msgwithdraw"
	// APIRoam reads a conversation's history.
	APIRoam = "admin_getroammsg"
	// APIGroupRecall recalls up to MaxGroupRecallSeqs messages of a group.
	APIGroupRecall = "group_msg_recall"
)

// pathWithdraw is the path of the admin_msgwithdraw API.
const pathWithdraw = "/v4/openim/" + APIWithdraw

// Errors.
var (
	// ErrInvalidConfig is wrapped by every error New returns.
	ErrInvalidConfig = errors.New("tim: invalid config")
	// ErrTransport is wrapped by an error from a request that got no HTTP
	// response (connection refused, reset, timeout, cancelled context...).
	// The underlying error stays in the chain too, so errors.Is(err,
	// context.DeadlineExceeded) and errors.As(err, &netErr) work. Tencent may
	// or may not have executed such a request.
	ErrTransport = errors.New("tim: no response from Tencent")
	// ErrResponseTooLarge is the cause of a *DecodeError for a body longer
	// than MaxResponseBytes.
	ErrResponseTooLarge = errors.New("response body too large")
	// ErrNotTencentResponse is the cause of a *DecodeError for a JSON body
	// that is not a Tencent answer: no ActionStatus, or a failure without an
	// ErrorCode.
	ErrNotTencentResponse = errors.New("JSON is not a Tencent answer")

	errGeneratorPanicked = errors.New("UserSig generator panicked")
)

// HTTPError reports an HTTP status other than 200: not a Tencent answer
// (Tencent answers 200 unless the network in between fails, e.g. 502).
// Redirects are not followed, because the URL carries the UserSig; a
// redirect is reported as an HTTPError too.
type HTTPError struct {
	Status int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP status %d %s, not a Tencent answer", e.Status, http.StatusText(e.Status))
}

// DecodeError reports a 200 response whose body is not a Tencent answer.
type DecodeError struct {
	// Body is the start of the body (at most 200 bytes), redacted.
	Body string
	// Err is the cause: a JSON error, ErrResponseTooLarge or
	// ErrNotTencentResponse.
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("response is not a Tencent answer: %v (body starts %q)", e.Err, e.Body)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Config configures a Client. Every field but SDKAppID and SecretKey has a
// default.
type Config struct {
	// SDKAppID is the app's SDKAppID from the Chat console. Required.
	SDKAppID uint64
	// SecretKey is the app's secret key from the Chat console, from which
	// UserSigs are generated. Required. It never appears in an error, a log
	// line or when the Config is printed.
	SecretKey string
	// Admin is the app admin account the requests are made as.
	// Default DefaultAdmin ("admin").
	Admin string
	// Region names the data centre of the app, a key of Regions.
	// Default DefaultRegion ("china"). Checked even when Endpoint is set.
	Region string
	// Endpoint, if set, is the base URL (scheme://host[:port], http or
	// https) requests go to instead of Region's domain: a simulator such as
	// http://127.0.0.1:8080, a proxy, or a region missing from Regions.
	// Default "" (https:// and Region's domain).
	Endpoint string
	// HTTPClient sends the requests. Its CheckRedirect is replaced (on a
	// copy) so that no redirect is ever followed, and an *http.Transport
	// without OnProxyConnectResponse is cloned and given one that reports a
	// proxy's refusal of CONNECT as a *ProxyError. Default: Timeout
	// DefaultHTTPTimeout (5 s) and a keep-alive transport keeping
	// DefaultMaxIdleConnsPerHost (256) idle connections to the host.
	HTTPClient *http.Client
	// SigLifetime is the validity of a generated UserSig, a whole number of
	// seconds, at least one. Default DefaultSigLifetime (48 h); Tencent
	// advises at least 24 h.
	SigLifetime time.Duration
	// SigRefresh: a UserSig is regenerated when less than this remains of
	// its lifetime. Must be less than SigLifetime. Default SigLifetime/2.
	SigRefresh time.Duration
	// Now is the clock that decides when to regenerate. Default time.Now.
	// (The UserSig itself is stamped by tencentyun with time.Now.)
	Now func() time.Time
	// Rand draws the "random" request parameter, fresh per request.
	// Default: uniform over the full uint32 range 0..4294967295
	// (math/rand/v2.Uint32).
	Rand func() uint32
	// OnSigRefresh, if set, is called each time a UserSig is generated, with
	// one of the SigReason constants: for metrics. It is never called
	// concurrently with itself. Default nil.
	OnSigRefresh func(reason string)
	// Logger receives the client's few log lines (UserSig generations at
	// debug level, a retry after 70001 at info level), none with a secret.
	// Default: discards.
	Logger *slog.Logger
}

// String describes c without its secret key.
func (c Config) String() string {
	key := "(unset)"
	if c.SecretKey != "" {
		key = Redacted
	}
	return fmt.Sprintf("tim.Config{SDKAppID:%d SecretKey:%s Admin:%q Region:%q Endpoint:%q SigLifetime:%v SigRefresh:%v}",
		c.SDKAppID, key, c.Admin, c.Region, c.Endpoint, c.SigLifetime, c.SigRefresh)
}

// Format prints c as String does, whatever the verb (%v, %+v, %#v, %d...),
// so that printing a Config never shows the secret key.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs c without its secret key.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Client calls Tencent Cloud Chat's REST API. It is safe for concurrent use.
type Client struct {
	sdkAppID   uint64
	admin      string
	base       string // scheme://host[:port][/prefix], no trailing slash
	lifetime   time.Duration
	http       *http.Client
	now        func() time.Time
	rand       func() uint32
	log        *slog.Logger
	sigs       *sigCache
	redactor   redactor
	queryStart string // "?sdkappid=...&identifier=...&usersig="
}

// New returns a Client for cfg. It applies the defaults documented on
// Config, then validates cfg; an error wraps ErrInvalidConfig, names the
// field and says what to do, and never shows the secret key.
func New(cfg Config) (*Client, error) {
	if cfg.Admin == "" {
		cfg.Admin = DefaultAdmin
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	}
	if cfg.SigLifetime == 0 {
		cfg.SigLifetime = DefaultSigLifetime
	}
	if cfg.SigRefresh == 0 {
		cfg.SigRefresh = cfg.SigLifetime / 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Uint32
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case cfg.SDKAppID == 0:
		return nil, invalid("SDKAppID is not set: use the app's SDKAppID from the Chat console")
	case cfg.SDKAppID > math.MaxInt:
		return nil, invalid("SDKAppID %d is too large: use the app's SDKAppID from the Chat console", cfg.SDKAppID)
	case cfg.SecretKey == "":
		return nil, invalid("SecretKey is not set: use the app's secret key from the Chat console (Basic Configuration)")
	case strings.TrimSpace(cfg.Admin) != cfg.Admin:
		return nil, invalid("Admin %q has leading or trailing spaces: use the admin account's UserID exactly", cfg.Admin)
	case cfg.SigLifetime < time.Second || cfg.SigLifetime%time.Second != 0:
		return nil, invalid("SigLifetime %v is not a whole number of seconds, at least 1s: use e.g. %v", cfg.SigLifetime, DefaultSigLifetime)
	case cfg.SigLifetime/time.Second > math.MaxInt32:
		return nil, invalid("SigLifetime %v is too long: use e.g. %v", cfg.SigLifetime, DefaultSigLifetime)
	case cfg.SigRefresh < 0 || cfg.SigRefresh >= cfg.SigLifetime:
		return nil, invalid("SigRefresh %v must be positive and less than SigLifetime %v: leave it 0 for SigLifetime/2", cfg.SigRefresh, cfg.SigLifetime)
	}
	domain, ok := Regions[cfg.Region]
	if !ok {
		return nil, invalid("Region %q is unknown: use one of %s, or set Endpoint", cfg.Region, regionNames())
	}
	base := "https://" + domain
	if cfg.Endpoint != "" {
		var err error
		if base, err = parseEndpoint(cfg.Endpoint); err != nil {
			return nil, invalid("Endpoint %q: %v", cfg.Endpoint, err)
		}
	}

	httpClient := *cfg.HTTPClient
	httpClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if t, ok := httpClient.Transport.(*http.Transport); ok && t.OnProxyConnectResponse == nil {
		t = t.Clone()
		typeProxyRefusals(t)
		httpClient.Transport = t
	}

	c := &Client{
		sdkAppID: cfg.SDKAppID,
		admin:    cfg.Admin,
		base:     base,
		lifetime: cfg.SigLifetime,
		http:     &httpClient,
		now:      cfg.Now,
		rand:     cfg.Rand,
		log:      cfg.Logger,
		queryStart: "?sdkappid=" + strconv.FormatUint(cfg.SDKAppID, 10) +
			"&identifier=" + url.QueryEscape(cfg.Admin) + "&usersig=",
	}
	appID, key, admin, expire := int(cfg.SDKAppID), cfg.SecretKey, cfg.Admin, int(cfg.SigLifetime/time.Second)
	onRefresh := cfg.OnSigRefresh
	c.sigs = &sigCache{
		generate: func() (string, error) { return tencentyun.GenUserSig(appID, key, admin, expire) },
		now:      cfg.Now,
		lifetime: cfg.SigLifetime,
		refresh:  cfg.SigRefresh,
		onGenerate: func(ctx context.Context, reason string) {
			c.log.DebugContext(ctx, "tim: generated UserSig", "reason", reason, "lifetime", cfg.SigLifetime.String())
			if onRefresh != nil {
				onRefresh(reason)
			}
		},
	}
	c.redactor = redactor{key: key, sigs: c.sigs.secrets}
	return c, nil
}

// defaultHTTPClient returns the HTTPClient documented on Config.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = DefaultMaxIdleConnsPerHost
	t.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	return &http.Client{Timeout: DefaultHTTPTimeout, Transport: t}
}

// parseEndpoint checks a Config.Endpoint and returns it without a trailing
// slash.
func parseEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", errors.New("not a URL: use scheme://host[:port], e.g. http://127.0.0.1:8080")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("scheme is not http or https: use scheme://host[:port], e.g. http://127.0.0.1:8080")
	case u.Host == "":
		return "", errors.New("no host: use scheme://host[:port], e.g. http://127.0.0.1:8080")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("user info, query or fragment not allowed: use scheme://host[:port]")
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// BaseURL returns the scheme://host[:port] requests go to.
func (c *Client) BaseURL() string { return c.base }

// String describes c without its secrets.
func (c *Client) String() string {
	return fmt.Sprintf("tim.Client{SDKAppID:%d Admin:%q BaseURL:%q}", c.sdkAppID, c.admin, c.base)
}

// Format prints c as String does, whatever the verb, so that printing a
// Client never shows its secrets.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// InvalidateSig makes the next request generate a new UserSig (once, however
// many goroutines call it before then). Call it when Tencent rejects the
// UserSig: 60004 or 60005. There is no need to call it on 70001 (UserSig
// expired): Withdraw handles that itself.
func (c *Client) InvalidateSig() { c.sigs.invalidate(0, SigReasonInvalidated) }

// Response is Tencent's answer to a REST request.
type Response struct {
	// ActionStatus is "OK" or "FAIL".
	ActionStatus string
	// ErrorInfo is Tencent's description of ErrorCode.
	ErrorInfo string
	// ErrorCode is 0 on success, otherwise Tencent's error code.
	ErrorCode int
	// RequestID is Tencent's request ID, when the answer has one.
	RequestID string `json:"RequestId"`
}

// withdrawRequest is the body of admin_msgwithdraw.
type withdrawRequest struct {
	From   string `json:"From_Account"`
	To     string `json:"To_Account"`
	MsgKey string `json:"MsgKey"`
}

// Withdraw recalls the one-to-one message msgKey sent by from to to, with
// admin_msgwithdraw: POST {base}/v4/openim/admin_msgwithdraw?sdkappid=..
// &identifier=..&usersig=..&random=..&contenttype=json and the JSON body
// {"From_Account","To_Account","MsgKey"}.
//
// Tencent's answer comes back in the Response with a nil error, whatever its
// ErrorCode: a Tencent error code is not a Go error. The error is non-nil
// only when no Tencent answer was read:
//   - a transport error or timeout: wraps ErrTransport and the cause
//     (context.DeadlineExceeded, context.Canceled, a net.Error...);
//   - an HTTP status other than 200: wraps *HTTPError;
//   - a body that is not a Tencent answer: wraps *DecodeError;
//   - (no request sent) ctx ended while another goroutine was generating
//     the UserSig, or its generation failed: wraps the cause.
//
// Every error is redacted: it holds neither the UserSig nor the secret key.
//
// On a 70001, 60004 or 60005 answer (UserSig expired or refused) Withdraw
// invalidates the UserSig it used, unless another request already replaced
// it, so the next call carries a new one and a burst of such answers causes
// one regeneration. It does not retry by itself: every call must take its
// slot from the shared rate limiter first, so the caller retries.
func (c *Client) Withdraw(ctx context.Context, from, to, msgKey string) (Response, error) {
	const op = "tim: admin_msgwithdraw"
	body, err := json.Marshal(withdrawRequest{From: from, To: to, MsgKey: msgKey})
	if err != nil {
		return Response{}, fmt.Errorf("%s: encode request: %w", op, err)
	}
	resp, sig, err := c.call(ctx, op, pathWithdraw, body)
	if err != nil {
		return resp, err
	}
	c.refusedSig(ctx, resp.ErrorCode, sig)
	return resp, nil
}

// refusedSig invalidates sig after an answer that refused it (70001,
// 60004, 60005), unless another request already replaced it.
func (c *Client) refusedSig(ctx context.Context, code int, sig cachedSig) {
	if _, refused := SigRefusal(code); refused {
		reason := SigReason70001
		if code != CodeUserSigExpired {
			reason = SigReasonRefused
		}
		if c.sigs.invalidate(sig.seq, reason) {
			c.log.InfoContext(ctx, "tim: Tencent refused the UserSig: the next call carries a new one",
				"code", code, "sig_age", c.now().Sub(sig.issued).String(), "sig_lifetime", c.lifetime.String())
		}
	}
}

// sigRefusals are the answers that refuse the UserSig, with their meaning:
// after one the client makes the next call carry a new UserSig. The
// worker's outcome table takes its SigStale rows from here, so the client
// and the table cannot disagree.
var sigRefusals = map[int]string{
	CodeUserSigExpired: "UserSig expired",
	60004:              "account or signature check failed",
	60005:              "account or signature check failed",
}

// SigRefusal reports whether code refuses the UserSig (70001, 60004,
// 60005), and its meaning.
func SigRefusal(code int) (meaning string, ok bool) {
	meaning, ok = sigRefusals[code]
	return meaning, ok
}

// SigRefusalCodes returns the codes SigRefusal accepts, in ascending order.
func SigRefusalCodes() []int {
	codes := make([]int, 0, len(sigRefusals))
	for c := range sigRefusals {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}

// call POSTs body to path and reads Tencent's answer. It returns the UserSig
// it used. op prefixes its errors.
func (c *Client) call(ctx context.Context, op, path string, body []byte) (Response, cachedSig, error) {
	return c.callInto(ctx, op, path, body, nil)
}

// callInto is call that also decodes the answer into into, when not nil
// and the answer is a success (the fields beyond Response of an API's
// answer).
func (c *Client) callInto(ctx context.Context, op, path string, body []byte, into any) (Response, cachedSig, error) {
	sig, err := c.sigs.get(ctx)
	if err != nil {
		return Response{}, sig, c.redactor.redactErr(op+": get UserSig", err)
	}
	u := c.base + path + c.queryStart + url.QueryEscape(sig.value) +
		"&random=" + strconv.FormatUint(uint64(c.rand()), 10) + "&contenttype=json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Response{}, sig, c.redactor.redactErr(op+": build request", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	hresp, err := c.http.Do(req)
	if err != nil {
		return Response{}, sig, c.redactor.redactErr(op, err, ErrTransport)
	}
	defer drainClose(hresp.Body)
	if hresp.StatusCode != http.StatusOK {
		return Response{}, sig, fmt.Errorf("%s: %w", op, &HTTPError{Status: hresp.StatusCode})
	}
	data, err := io.ReadAll(io.LimitReader(hresp.Body, MaxResponseBytes+1))
	if err != nil {
		return Response{}, sig, c.redactor.redactErr(op+": read response", err, ErrTransport)
	}
	if len(data) > MaxResponseBytes {
		return Response{}, sig, fmt.Errorf("%s: %w", op, &DecodeError{Body: c.snippet(data), Err: ErrResponseTooLarge})
	}
	resp, err := decodeResponse(data)
	if err == nil && into != nil && resp.ErrorCode == 0 {
		err = json.Unmarshal(data, into)
	}
	if err != nil {
		return Response{}, sig, fmt.Errorf("%s: %w", op, &DecodeError{Body: c.snippet(data), Err: err})
	}
	return resp, sig, nil
}

// snippet returns the start of a body for an error message, redacted.
// It redacts before it truncates, so that no part of a secret is left.
func (c *Client) snippet(data []byte) string {
	const max = 200
	s := c.redactor.redact(string(data))
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}

// drainClose discards what remains of a response body, up to maxDrainBytes,
// and closes it, so that the keep-alive connection can be reused.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrainBytes))
	_ = body.Close()
}

// wireResponse is a Response as it is decoded: ErrorCode is kept raw so
// that it may be a JSON number or a string of digits.
type wireResponse struct {
	ActionStatus string
	ErrorInfo    string
	ErrorCode    json.RawMessage
	RequestID    string `json:"RequestId"`
}

// decodeResponse decodes a Tencent answer leniently: unknown fields are
// ignored and ErrorCode may be a number or a string of digits. It rejects a
// body without ActionStatus, and a failure without an ErrorCode, which would
// otherwise read as success.
func decodeResponse(data []byte) (Response, error) {
	var w wireResponse
	if err := json.Unmarshal(data, &w); err != nil {
		return Response{}, err
	}
	if w.ActionStatus == "" {
		return Response{}, fmt.Errorf("%w: no ActionStatus", ErrNotTencentResponse)
	}
	code, present, err := decodeCode(w.ErrorCode)
	if err != nil {
		return Response{}, err
	}
	ok := strings.EqualFold(w.ActionStatus, "OK")
	if !present && !ok {
		return Response{}, fmt.Errorf("%w: ActionStatus %q without an ErrorCode", ErrNotTencentResponse, w.ActionStatus)
	}
	if code == 0 && !ok {
		// A failure that claims code 0 must never read as "recalled".
		return Response{}, fmt.Errorf("%w: ActionStatus %q with ErrorCode 0", ErrNotTencentResponse, w.ActionStatus)
	}
	return Response{ActionStatus: w.ActionStatus, ErrorInfo: w.ErrorInfo, ErrorCode: code, RequestID: w.RequestID}, nil
}

// decodeCode decodes an ErrorCode: a JSON integer (1.0e4 is accepted), a
// string holding one, or absent / null (present is false).
func decodeCode(raw json.RawMessage) (code int, present bool, err error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, err
		}
		s = strings.TrimSpace(s)
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, true, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, false, fmt.Errorf("%w: ErrorCode %s is not an integer", ErrNotTencentResponse, raw)
	}
	return int(f), true, nil
}

// Preconnect opens connections to the endpoint ahead of the first calls,
// so that they do not wait for a dial and a TLS handshake (round trips to
// Tencent a continent away), for which the limiter's lateness guard would
// cut them unsent (limiter.Permit.Go) and their slots would be lost. It
// sends n HEAD requests for the endpoint's root and ignores their answers:
// HEAD / is no REST command, carries no UserSig and counts toward no
// limit. Each request holds the connection it got until all n have one,
// so that none goes back to the pool for another to reuse: an HTTP/1.1
// client ends with n connections in its pool (up to
// DefaultMaxIdleConnsPerHost with the default client), an HTTP/2 one
// shares one. It returns how many were answered, once every request has
// been answered or has failed, or ctx has ended.
func (c *Client) Preconnect(ctx context.Context, n int) int {
	u, err := url.Parse(c.base)
	if err != nil {
		return 0
	}
	root := u.Scheme + "://" + u.Host + "/"
	var answered atomic.Int64
	var wg sync.WaitGroup
	all := make(chan struct{}) // closed when every request has a connection or has failed
	var waiting atomic.Int64
	waiting.Store(int64(n))
	for range n {
		wg.Go(func() {
			var once sync.Once
			arrived := func() {
				once.Do(func() {
					if waiting.Add(-1) == 0 {
						close(all)
					}
				})
			}
			defer arrived()
			trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
				arrived()
				select {
				case <-all:
				case <-ctx.Done():
				}
			}}
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodHead, root, nil)
			if err != nil {
				return
			}
			resp, err := c.http.Do(req)
			if err != nil {
				c.log.DebugContext(ctx, "tim: preconnect failed", "err", c.redactor.redact(err.Error()))
				return
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
			resp.Body.Close()
			answered.Add(1)
		})
	}
	wg.Wait()
	return int(answered.Load())
}
