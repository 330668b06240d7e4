package tim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

const (
	testAppID = 1400000001
	testKey   = "5ecre7-k3y-0123456789abcdef0123456789abcdef0123456789abcdef"
)

// newTestClient returns a Client of testAppID/testKey for endpoint, with
// cfg's other fields.
func newTestClient(t *testing.T, endpoint string, cfg Config) *Client {
	t.Helper()
	cfg.SDKAppID, cfg.SecretKey, cfg.Endpoint = testAppID, testKey, endpoint
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// stubSigs makes c's UserSigs "sig-1", "sig-2"... (the real generator
// stamps its UserSig with the second, so two generated within one second are
// equal) and returns the generator.
func stubSigs(c *Client) *stubGenerator {
	gen := &stubGenerator{}
	c.sigs.generate = gen.generate
	return gen
}

// currentSig returns the UserSig c uses now.
func currentSig(c *Client) string { return c.sigs.secrets()[0] }

const okBody = `{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}`

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{SDKAppID: testAppID, SecretKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if c.admin != "admin" {
		t.Errorf("admin = %q, want admin", c.admin)
	}
	if got := c.BaseURL(); got != "https://console.tim.qq.com" {
		t.Errorf("BaseURL = %q, want https://console.tim.qq.com", got)
	}
	if c.http.Timeout != 5*time.Second {
		t.Errorf("HTTP timeout = %v, want 5s", c.http.Timeout)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T, want *http.Transport", c.http.Transport)
	}
	if tr.MaxIdleConnsPerHost < 256 || tr.DisableKeepAlives {
		t.Errorf("transport keeps %d idle conns per host, keep-alive disabled %v; want >= 256, false", tr.MaxIdleConnsPerHost, tr.DisableKeepAlives)
	}
	if c.sigs.lifetime != 48*time.Hour || c.sigs.refresh != 24*time.Hour {
		t.Errorf("sig lifetime, refresh = %v, %v; want 48h, 24h", c.sigs.lifetime, c.sigs.refresh)
	}
	if c.http.CheckRedirect == nil {
		t.Error("CheckRedirect not set: a redirect would carry the UserSig elsewhere")
	}
}

func TestNewBaseURL(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"china", Config{Region: "china"}, "https://console.tim.qq.com"},
		{"singapore", Config{Region: "singapore"}, "https://adminapisgp.im.qcloud.com"},
		{"seoul", Config{Region: "seoul"}, "https://adminapikr.im.qcloud.com"},
		{"frankfurt", Config{Region: "frankfurt"}, "https://adminapiger.im.qcloud.com"},
		{"mumbai", Config{Region: "mumbai"}, "https://adminapiind.im.qcloud.com"},
		{"silicon valley", Config{Region: "siliconvalley"}, "https://adminapiusa.im.qcloud.com"},
		{"jakarta", Config{Region: "jakarta"}, "https://adminapiidn.im.qcloud.com"},
		{"endpoint overrides region", Config{Region: "seoul", Endpoint: "http://127.0.0.1:8080"}, "http://127.0.0.1:8080"},
		{"endpoint trailing slash dropped", Config{Endpoint: "http://127.0.0.1:8080/"}, "http://127.0.0.1:8080"},
		{"endpoint path prefix kept", Config{Endpoint: "https://proxy.example/tim/"}, "https://proxy.example/tim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SDKAppID, tt.cfg.SecretKey = testAppID, testKey
			c, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.BaseURL(); got != tt.want {
				t.Errorf("BaseURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewInvalid(t *testing.T) {
	valid := func() Config { return Config{SDKAppID: testAppID, SecretKey: testKey} }
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error
	}{
		{"no SDKAppID", func(c *Config) { c.SDKAppID = 0 }, []string{"SDKAppID", "Chat console"}},
		{"SDKAppID overflows int", func(c *Config) { c.SDKAppID = math.MaxUint64 }, []string{"SDKAppID"}},
		{"no SecretKey", func(c *Config) { c.SecretKey = "" }, []string{"SecretKey", "Chat console"}},
		{"Admin with spaces", func(c *Config) { c.Admin = " admin" }, []string{"Admin"}},
		{"unknown region lists the known ones", func(c *Config) { c.Region = "tokyo" },
			[]string{`Region "tokyo"`, "china, frankfurt, jakarta, mumbai, seoul, siliconvalley, singapore"}},
		{"unknown region with endpoint", func(c *Config) { c.Region = "Mars"; c.Endpoint = "http://x" }, []string{"Region"}},
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "127.0.0.1:8080" }, []string{"Endpoint"}},
		{"endpoint ftp", func(c *Config) { c.Endpoint = "ftp://127.0.0.1" }, []string{"Endpoint", "http"}},
		{"endpoint without host", func(c *Config) { c.Endpoint = "http://" }, []string{"Endpoint", "host"}},
		{"endpoint with query", func(c *Config) { c.Endpoint = "http://h/?usersig=x" }, []string{"Endpoint", "query"}},
		{"endpoint unparsable", func(c *Config) { c.Endpoint = "http://[::1" }, []string{"Endpoint"}},
		{"negative SigLifetime", func(c *Config) { c.SigLifetime = -time.Hour }, []string{"SigLifetime"}},
		{"SigLifetime not whole seconds", func(c *Config) { c.SigLifetime = 1500 * time.Millisecond }, []string{"SigLifetime"}},
		{"SigRefresh equals SigLifetime", func(c *Config) { c.SigLifetime = time.Hour; c.SigRefresh = time.Hour }, []string{"SigRefresh"}},
		{"SigRefresh negative", func(c *Config) { c.SigRefresh = -time.Second }, []string{"SigRefresh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.modify(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: %v, want ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if cfg.SecretKey != "" && strings.Contains(err.Error(), cfg.SecretKey) {
				t.Errorf("error %q contains the secret key", err)
			}
		})
	}
}

// TestWithdrawRequest checks the request against the API page: method,
// path, every query parameter (names and values are case-sensitive), the
// Content-Type and the body.
func TestWithdrawRequest(t *testing.T) {
	tests := []struct {
		name   string
		admin  string
		random uint32
	}{
		{"random zero", "", 0},
		{"random int31 max", "", math.MaxInt32},
		{"random beyond int31", "", math.MaxInt32 + 1},
		{"random uint32 max", "", math.MaxUint32},
		{"other admin", "ops_admin-1", 99999999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAdmin := tt.admin
			if wantAdmin == "" {
				wantAdmin = "admin"
			}
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if r.Method != http.MethodPost {
					t.Errorf("method = %s, want POST", r.Method)
				}
				if r.URL.Path != "/v4/openim/admin_msgwithdraw" {
					t.Errorf("path = %q, want /v4/openim/admin_msgwithdraw", r.URL.Path)
				}
				q, err := url.ParseQuery(r.URL.RawQuery)
				if err != nil {
					t.Errorf("query %q: %v", r.URL.RawQuery, err)
				}
				var names []string
				for k, v := range q {
					names = append(names, k)
					if len(v) != 1 {
						t.Errorf("query parameter %s given %d times", k, len(v))
					}
				}
				sort.Strings(names)
				if got := strings.Join(names, ","); got != "contenttype,identifier,random,sdkappid,usersig" {
					t.Errorf("query parameters = %s, want exactly contenttype,identifier,random,sdkappid,usersig", got)
				}
				if got := q.Get("sdkappid"); got != strconv.Itoa(testAppID) {
					t.Errorf("sdkappid = %q, want %d", got, testAppID)
				}
				if got := q.Get("identifier"); got != wantAdmin {
					t.Errorf("identifier = %q, want %q", got, wantAdmin)
				}
				if err := tencentyun.VerifyUserSig(testAppID, testKey, wantAdmin, q.Get("usersig"), time.Now()); err != nil {
					t.Errorf("usersig does not verify for %s: %v", wantAdmin, err)
				}
				if got, want := q.Get("random"), strconv.FormatUint(uint64(tt.random), 10); got != want {
					t.Errorf("random = %q, want %q", got, want)
				}
				if got := q.Get("contenttype"); got != "json" {
					t.Errorf("contenttype = %q, want json", got)
				}
				if got := r.Header.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", got)
				}
				var body struct {
					From   *string `json:"From_Account"`
					To     *string `json:"To_Account"`
					MsgKey *string `json:"MsgKey"`
				}
				dec := json.NewDecoder(r.Body)
				dec.DisallowUnknownFields()
				if err := dec.Decode(&body); err != nil {
					t.Errorf("body: %v", err)
				}
				if body.From == nil || *body.From != "vinson" || body.To == nil || *body.To != "dramon" ||
					body.MsgKey == nil || *body.MsgKey != "31906_833502_1572869830" {
					t.Errorf("body = %+v, want From_Account vinson, To_Account dramon, MsgKey 31906_833502_1572869830", body)
				}
				_, _ = io.WriteString(w, okBody)
			}))
			defer srv.Close()

			c := newTestClient(t, srv.URL, Config{Admin: tt.admin, Rand: func() uint32 { return tt.random }})
			resp, err := c.Withdraw(context.Background(), "vinson", "dramon", "31906_833502_1572869830")
			if err != nil {
				t.Fatalf("Withdraw: %v", err)
			}
			if resp != (Response{ActionStatus: "OK"}) {
				t.Errorf("Response = %+v, want OK", resp)
			}
			if hits.Load() != 1 {
				t.Errorf("requests = %d, want 1", hits.Load())
			}
		})
	}
}

// TestWithdrawRandomDefault checks that the default Rand is drawn per
// request over the whole uint32 range.
func TestWithdrawRandomDefault(t *testing.T) {
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var beyondInt31 int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := strconv.ParseUint(r.URL.Query().Get("random"), 10, 32)
		if err != nil {
			t.Errorf("random: %v", err)
		}
		mu.Lock()
		seen[v] = true
		if v > math.MaxInt32 {
			beyondInt31++
		}
		mu.Unlock()
		_, _ = io.WriteString(w, okBody)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{})
	const n = 64
	for range n {
		if _, err := c.Withdraw(context.Background(), "a", "b", "1_2_3"); err != nil {
			t.Fatal(err)
		}
	}
	// Each check fails by chance with probability below 2^-60.
	if len(seen) < n-1 {
		t.Errorf("%d distinct random values in %d requests, want a fresh one per request", len(seen), n)
	}
	if beyondInt31 == 0 {
		t.Errorf("no random value above %d in %d requests: not the full uint32 range", math.MaxInt32, n)
	}
}

func TestWithdrawResponses(t *testing.T) {
	big := `{"ActionStatus":"OK","ErrorCode":0,"Pad":"` + strings.Repeat("x", MaxResponseBytes) + `"}`
	tests := []struct {
		name    string
		status  int
		body    string
		want    Response
		wantErr func(error) bool
	}{
		{name: "success", body: okBody, want: Response{ActionStatus: "OK"}},
		{name: "Tencent error is not a Go error",
			body: `{"ActionStatus":"FAIL","ErrorInfo":"Fail to Parse json data of body, Please check it","ErrorCode":90001}`,
			want: Response{ActionStatus: "FAIL", ErrorInfo: "Fail to Parse json data of body, Please check it", ErrorCode: 90001}},
		{name: "unknown fields ignored, RequestId kept",
			body: "\n { \"ErrorCode\": 20023, \"ActionStatus\": \"FAIL\", \"ErrorInfo\": \"recalled\", \"RequestId\": \"Id-1-O-0\", \"New\": [1, {\"a\": null}] } \n",
			want: Response{ActionStatus: "FAIL", ErrorInfo: "recalled", ErrorCode: 20023, RequestID: "Id-1-O-0"}},
		{name: "ErrorCode as a string", body: `{"ActionStatus":"FAIL","ErrorCode":"60007","ErrorInfo":"x"}`,
			want: Response{ActionStatus: "FAIL", ErrorCode: 60007, ErrorInfo: "x"}},
		{name: "ErrorCode in exponent form", body: `{"ActionStatus":"FAIL","ErrorCode":9.1e4}`,
			want: Response{ActionStatus: "FAIL", ErrorCode: 91000}},
		{name: "OK without ErrorCode", body: `{"ActionStatus":"OK"}`, want: Response{ActionStatus: "OK"}},
		{name: "HTML body", body: "<html>502 Bad Gateway</html>", wantErr: isDecodeError(nil)},
		{name: "empty body", body: "", wantErr: isDecodeError(nil)},
		{name: "JSON array", body: `[1]`, wantErr: isDecodeError(nil)},
		{name: "trailing garbage", body: okBody + "x", wantErr: isDecodeError(nil)},
		{name: "empty object", body: `{}`, wantErr: isDecodeError(ErrNotTencentResponse)},
		{name: "null", body: `null`, wantErr: isDecodeError(ErrNotTencentResponse)},
		{name: "FAIL without ErrorCode", body: `{"ActionStatus":"FAIL"}`, wantErr: isDecodeError(ErrNotTencentResponse)},
		{name: "fractional ErrorCode", body: `{"ActionStatus":"FAIL","ErrorCode":1.5}`, wantErr: isDecodeError(ErrNotTencentResponse)},
		{name: "ErrorCode not a number", body: `{"ActionStatus":"FAIL","ErrorCode":"abc"}`, wantErr: isDecodeError(ErrNotTencentResponse)},
		{name: "body over the limit", body: big, wantErr: isDecodeError(ErrResponseTooLarge)},
		{name: "502", status: http.StatusBadGateway, body: "bad gateway", wantErr: isHTTPError(502)},
		{name: "500 with a Tencent-like body", status: 500, body: okBody, wantErr: isHTTPError(500)},
		{name: "redirect not followed", status: http.StatusFound, wantErr: isHTTPError(302)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) > 1 {
					t.Errorf("request %d to %s, want one request", hits.Load(), r.URL.Path)
				}
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, Config{})
			resp, err := c.Withdraw(context.Background(), "a", "b", "1_2_3")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Withdraw: %v", err)
				}
				if resp != tt.want {
					t.Errorf("Response = %+v, want %+v", resp, tt.want)
				}
				return
			}
			if !tt.wantErr(err) {
				t.Errorf("Withdraw error = %v (%T)", err, err)
			}
			if resp != (Response{}) {
				t.Errorf("Response = %+v with an error, want zero", resp)
			}
			if errors.Is(err, ErrTransport) {
				t.Errorf("error %v wraps ErrTransport, but a response was read", err)
			}
		})
	}
}

// isDecodeError matches a *DecodeError, whose cause is cause if not nil.
func isDecodeError(cause error) func(error) bool {
	return func(err error) bool {
		var de *DecodeError
		return errors.As(err, &de) && (cause == nil || errors.Is(err, cause))
	}
}

// isHTTPError matches an *HTTPError with status.
func isHTTPError(status int) func(error) bool {
	return func(err error) bool {
		var he *HTTPError
		return errors.As(err, &he) && he.Status == status
	}
}

// TestWithdrawSigCached checks that the UserSig is generated once, reused,
// regenerated by age per the injected clock and after InvalidateSig.
func TestWithdrawSigCached(t *testing.T) {
	var mu sync.Mutex
	var sigs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sigs = append(sigs, r.URL.Query().Get("usersig"))
		mu.Unlock()
		_, _ = io.WriteString(w, okBody)
	}))
	defer srv.Close()

	clock := newFakeClock()
	var reasons []string
	c := newTestClient(t, srv.URL, Config{
		Now:          clock.Now,
		SigLifetime:  24 * time.Hour,
		SigRefresh:   time.Hour,
		OnSigRefresh: func(r string) { reasons = append(reasons, r) },
	})
	stubSigs(c)
	withdraw := func() {
		t.Helper()
		if _, err := c.Withdraw(context.Background(), "a", "b", "1_2_3"); err != nil {
			t.Fatal(err)
		}
	}
	withdraw()
	clock.Advance(23*time.Hour - time.Second) // more than SigRefresh remains
	withdraw()
	clock.Advance(time.Second) // exactly SigRefresh remains
	withdraw()
	withdraw()
	c.InvalidateSig()
	c.InvalidateSig()
	withdraw()

	wantSigs := []string{"sig-1", "sig-1", "sig-2", "sig-2", "sig-3"}
	if !equalStrings(sigs, wantSigs) {
		t.Errorf("usersig per request = %v, want %v", sigs, wantSigs)
	}
	wantReasons := []string{"initial", "age", "invalidated"}
	if !equalStrings(reasons, wantReasons) {
		t.Errorf("OnSigRefresh reasons = %v, want %v", reasons, wantReasons)
	}
}

// TestWithdraw70001 checks what Withdraw does itself on an answer that
// refuses the UserSig: it returns the answer (the caller retries through the
// rate limiter) and the next call carries a new UserSig.
func TestWithdraw70001(t *testing.T) {
	for _, code := range []int{70001, 60004, 60005} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var mu sync.Mutex
			var sigs []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sig := r.URL.Query().Get("usersig")
				mu.Lock()
				sigs = append(sigs, sig)
				mu.Unlock()
				if sig == "sig-1" {
					fmt.Fprintf(w, `{"ActionStatus":"FAIL","ErrorInfo":"refused","ErrorCode":%d}`, code)
					return
				}
				_, _ = io.WriteString(w, okBody)
			}))
			defer srv.Close()
			var reasons []string
			c := newTestClient(t, srv.URL, Config{OnSigRefresh: func(r string) { reasons = append(reasons, r) }})
			stubSigs(c)

			resp, err := c.Withdraw(context.Background(), "a", "b", "1_2_3")
			if err != nil || resp.ErrorCode != code {
				t.Fatalf("first Withdraw = %+v, %v; want code %d returned, not retried", resp, err, code)
			}
			resp, err = c.Withdraw(context.Background(), "a", "b", "1_2_3")
			if err != nil || resp.ErrorCode != 0 {
				t.Fatalf("second Withdraw = %+v, %v; want success with a new UserSig", resp, err)
			}
			if want := []string{"sig-1", "sig-2"}; !equalStrings(sigs, want) {
				t.Errorf("usersig per request = %v, want %v", sigs, want)
			}
			want := []string{"initial", SigReason70001}
			if code != 70001 {
				want[1] = SigReasonRefused
			}
			if !equalStrings(reasons, want) {
				t.Errorf("OnSigRefresh reasons = %v, want %v", reasons, want)
			}
		})
	}
}

// TestWithdraw70001Concurrent checks that many requests answered 70001 for
// the same UserSig cause one regeneration, not one each.
func TestWithdraw70001Concurrent(t *testing.T) {
	const n = 50
	var arrivals atomic.Int64
	allArrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("usersig") == "sig-1" {
			if arrivals.Add(1) == n {
				close(allArrived)
			}
			<-release // every request holds sig-1 before any learns it expired
			_, _ = io.WriteString(w, `{"ActionStatus":"FAIL","ErrorInfo":"expired","ErrorCode":70001}`)
			return
		}
		_, _ = io.WriteString(w, okBody)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{})
	gen := stubSigs(c)

	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := c.Withdraw(context.Background(), "a", "b", "1_2_3")
			if err != nil || resp.ErrorCode != 70001 {
				t.Errorf("Withdraw = %+v, %v; want the 70001 answer", resp, err)
			}
		})
	}
	select {
	case <-allArrived:
	case <-time.After(10 * time.Second):
		t.Errorf("only %d of %d requests used the first UserSig", arrivals.Load(), n)
	}
	close(release)
	wg.Wait()
	for range n {
		wg.Go(func() {
			if resp, err := c.Withdraw(context.Background(), "a", "b", "1_2_3"); err != nil || resp.ErrorCode != 0 {
				t.Errorf("Withdraw after 70001 = %+v, %v; want success", resp, err)
			}
		})
	}
	wg.Wait()
	if got := gen.calls.Load(); got != 2 {
		t.Errorf("UserSig generations = %d, want 2 (initial, one after 70001)", got)
	}
}

// TestKeepAlive checks that sequential calls reuse one connection, whatever
// the answer, because every body is read to the end.
func TestKeepAlive(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"success", 200, okBody},
		{"Tencent error", 200, `{"ActionStatus":"FAIL","ErrorInfo":"x","ErrorCode":20022,"Extra":"` + strings.Repeat("y", 2000) + `"}`},
		{"not JSON", 200, "<html>" + strings.Repeat("z", 4000) + "</html>"},
		{"body over the limit", 200, strings.Repeat(" ", MaxResponseBytes+10_000)},
		{"502", 502, "<html>bad gateway</html>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			c := newTestClient(t, srv.URL, Config{})
			for range 50 {
				_, _ = c.Withdraw(context.Background(), "a", "b", "1_2_3")
			}
			if got := conns.Load(); got > 2 {
				t.Errorf("50 sequential calls opened %d connections, want at most 2", got)
			}
		})
	}
}

func TestPrintingHidesSecretKey(t *testing.T) {
	cfg := Config{SDKAppID: testAppID, SecretKey: testKey, Endpoint: "http://127.0.0.1:1"}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for name, v := range map[string]any{"Config": cfg, "*Config": &cfg, "*Client": c} {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, testKey) || !strings.Contains(got, "tim.") {
				t.Errorf("Sprintf(%s, %s) = %q: shows the key, or is not our description", verb, name, got)
			}
		}
	}
}

// BenchmarkWithdrawParallel measures Withdraw from many goroutines sharing
// one Client (and one cached UserSig) against a local server.
func BenchmarkWithdrawParallel(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, okBody)
	}))
	defer srv.Close()
	c, err := New(Config{SDKAppID: testAppID, SecretKey: testKey, Endpoint: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Withdraw(context.Background(), "a", "b", "1_2_3"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
