package intake

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/logtest"
)

func TestParseTokens(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-value-42"
	for _, tc := range []struct {
		name string
		file string
		want []Token
		err  string // "" = no error
	}{
		{"names and tokens, comments and blanks skipped",
			"# who:token\n\nops-console:tok-a\n  billing : tok-b:with:colons \n", []Token{{Name: "ops-console", Secret: "tok-a"}, {Name: "billing", Secret: "tok-b:with:colons"}}, ""},
		{"a token limited to apps",
			"ops:tok-a apps=1400000000\nbilling: tok-b  apps=1400000001,1400000000 \n",
			[]Token{{Name: "ops", Secret: "tok-a", Apps: []uint64{1400000000}}, {Name: "billing", Secret: "tok-b", Apps: []uint64{1400000001, 1400000000}}}, ""},
		{"apps not digits", "ops:" + secret + " apps=prod\n", nil, "line 1: bad bearer tokens: the apps of \"ops\": apps= takes SDKAppIDs in digits"},
		{"apps with a space", "ops:" + secret + " apps=1, 2\n", nil, "or is followed by something other than apps="},
		{"apps empty", "ops:" + secret + " apps=\n", nil, "apps= takes SDKAppIDs in digits"},
		{"apps twice", "ops:" + secret + " apps=7,7\n", nil, "the apps of \"ops\" list 7 twice"},
		{"something else after the token", "ops:" + secret + " app=7\n", nil, "write name:token, or name:token apps=1400000000,1400000001"},
		{"no colon", "ops-console " + secret + "\n", nil, "line 1 has no \":\""},
		{"empty name", "# c\n:" + secret + "\n", nil, "line 2: bad bearer tokens: the name is empty"},
		{"empty token", "ops:\n", nil, "the token of \"ops\" is empty"},
		{"space in token", "ops:" + secret + " x\n", nil, "contains a space"},
		{"name twice", "ops:" + secret + "\nops:other-token\n", nil, "the name \"ops\" appears twice"},
		{"token twice", "ops:" + secret + "\nbilling:" + secret + "\n", nil, "\"ops\" and \"billing\" have the same token"},
		{"nothing but comments", "# nobody yet\n\n", nil, "no token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTokens(strings.NewReader(tc.file))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("ParseTokens: %v", err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) || len(got) != len(tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				for i := range got {
					if !reflect.DeepEqual(got[i], tc.want[i]) {
						t.Fatalf("token %d = %#v (secret %q), want secret %q", i, got[i], got[i].Secret, tc.want[i].Secret)
					}
				}
				return
			}
			if !errors.Is(err, ErrTokens) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want ErrTokens saying %q", err, tc.err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
}

func TestTokenPrintsWithoutItsSecret(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "token", opsToken)
	for _, s := range []string{
		fmt.Sprint(opsToken), fmt.Sprintf("%+v", opsToken), fmt.Sprintf("%#v", opsToken),
		fmt.Sprintf("%v", []Token{opsToken}), logs.String(),
	} {
		if strings.Contains(s, opsToken.Secret) {
			t.Errorf("printed form leaks the secret: %s", s)
		}
		if !strings.Contains(s, opsToken.Name) {
			t.Errorf("printed form lost the name: %s", s)
		}
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := recallJSON("vinson", "dramon", "31906_833502_1572869830")
	addr := 0
	for _, tc := range []struct {
		name      string
		header    string // the Authorization header; "" sends none
		status    int
		challenge string // the WWW-Authenticate header wanted
	}{
		{"no header", "", http.StatusUnauthorized, `Bearer realm="recallq"`},
		{"another scheme", "Basic " + opsToken.Secret, http.StatusUnauthorized, `Bearer realm="recallq"`},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, `Bearer realm="recallq"`},
		{"wrong token", "Bearer tok-wrong-0000000000000000", http.StatusUnauthorized, `Bearer realm="recallq", error="invalid_token"`},
		{"prefix of a token", "Bearer " + opsToken.Secret[:len(opsToken.Secret)-1], http.StatusUnauthorized, `Bearer realm="recallq", error="invalid_token"`},
		{"token with a suffix", "Bearer " + opsToken.Secret + "x", http.StatusUnauthorized, `Bearer realm="recallq", error="invalid_token"`},
		{"right token", "Bearer " + opsToken.Secret, http.StatusAccepted, ""},
		{"scheme in lower case", "bearer " + billingToken.Secret, http.StatusAccepted, ""},
	} {
		addr++
		// Each case from its own address: failed logins are throttled
		// per address (see TestFailedTokensAreThrottledPerAddress).
		remote := fmt.Sprintf("192.0.2.%d:1234", addr)
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range []struct{ method, path, body string }{
				{http.MethodPost, "/v1/recalls", body},
				{http.MethodGet, "/v1/recalls/" + taskID("vinson", "dramon", "31906_833502_1572869830"), ""},
			} {
				r := newRequest(req.method, req.path, req.body)
				r.RemoteAddr = remote
				if tc.header != "" {
					r.Header.Set("Authorization", tc.header)
				}
				rec := serve(e.s, r)
				wantStatus := tc.status
				if wantStatus == http.StatusAccepted && req.method == http.MethodGet {
					wantStatus = http.StatusOK
					if strings.Contains(tc.header, billingToken.Secret) {
						wantStatus = http.StatusNotFound // ops queued it: a token reads only its own
					}
				}
				if rec.Code != wantStatus {
					t.Fatalf("%s %s: status %d, want %d (%s)", req.method, req.path, rec.Code, wantStatus, rec.Body)
				}
				if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
					t.Fatalf("%s %s: WWW-Authenticate %q, want %q", req.method, req.path, got, tc.challenge)
				}
			}
		})
	}
	logs := e.logs.String()
	for _, secret := range []string{opsToken.Secret, billingToken.Secret, "tok-wrong-0000000000000000", opsToken.Secret[:len(opsToken.Secret)-1]} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token reached the log:\n%s", logs)
		}
	}
	if !strings.Contains(logs, `"client":"ops-console"`) || !strings.Contains(logs, `"client":"billing"`) {
		t.Errorf("the log does not say which client asked:\n%s", logs)
	}
}

func TestHealthAndSpecNeedNoToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
		if rec := e.do(t, http.MethodGet, path, "", ""); rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200 (%s)", path, rec.Code, rec.Body)
		}
	}
}

func TestRateLimitPerToken(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEnv(t, func(c *Config) { c.Rate, c.Burst, c.Now = 0.5, 3, clock.Now })
	// A malformed ID is answered 404 without Redis, after authentication
	// and the rate limit.
	get := func(tok Token) int {
		return e.do(t, http.MethodGet, "/v1/recalls/nope", tok.Secret, "").Code
	}
	for i := range 3 {
		if code := get(opsToken); code != http.StatusNotFound {
			t.Fatalf("request %d within the burst: %d, want 404", i+1, code)
		}
	}
	rec := e.do(t, http.MethodGet, "/v1/recalls/nope", opsToken.Secret, "")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request after the burst: %d, want 429", rec.Code)
	}
	// 0.5 requests a second: the next token comes in 2 s.
	if got := rec.Header().Get("Retry-After"); got != "2" {
		t.Fatalf("Retry-After %q, want \"2\"", got)
	}
	if body := decodeAs[ErrorResponse](t, rec); !strings.Contains(body.Error, "too many requests for \"ops-console\"") {
		t.Fatalf("429 says %q", body.Error)
	}
	if code := e.post(t, recallJSON("a", "b", "1_1_1")).Code; code != http.StatusTooManyRequests {
		t.Fatalf("POST after the burst: %d, want 429", code)
	}
	if code := get(billingToken); code != http.StatusNotFound {
		t.Fatalf("another token was limited too: %d", code)
	}
	// An unauthenticated request is refused before the limit is consulted.
	if code := e.do(t, http.MethodGet, "/v1/recalls/nope", "tok-wrong", "").Code; code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	clock.Advance(time.Second)
	if code := get(opsToken); code != http.StatusTooManyRequests {
		t.Fatalf("after 1 s: %d, want 429 (refused requests must not use tokens)", code)
	}
	clock.Advance(time.Second)
	if code := get(opsToken); code != http.StatusNotFound {
		t.Fatalf("after 2 s: %d, want 404", code)
	}
	if code := get(opsToken); code != http.StatusTooManyRequests {
		t.Fatalf("second request after 2 s: %d, want 429", code)
	}
}

func TestConstantTimeLookupFindsEachClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tok := range []Token{opsToken, billingToken} {
		if c := e.s.lookup(tok.Secret); c == nil || c.name != tok.Name {
			t.Fatalf("lookup(%s) = %v", tok.Name, c)
		}
	}
	if c := e.s.lookup(""); c != nil {
		t.Fatalf("the empty token found %q", c.name)
	}
}
