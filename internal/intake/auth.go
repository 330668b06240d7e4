package intake

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/time/rate"

	"github.com/recallq/recallq/tasks"
)

// Token is one accepted bearer token and the name of who holds it. The name
// is recorded as the RequestedBy of every recall queued with the token.
//
// Token's String, GoString and LogValue show the name only, so a Token
// printed or logged by mistake does not leak its secret.
type Token struct {
	Name   string
	Secret string
	// Apps are the SDKAppIDs of the apps the token may queue recalls of
	// and read tasks of, each one the intake serves. Default (empty):
	// every app the intake serves.
	Apps []uint64
}

func (t Token) String() string          { return "token " + strconv.Quote(t.Name) }
func (t Token) GoString() string        { return "intake.Token{Name: " + strconv.Quote(t.Name) + "}" }
func (t Token) LogValue() slog.Value    { return slog.StringValue(t.Name) }
func (t Token) hash() [sha256.Size]byte { return sha256.Sum256([]byte(t.Secret)) }

// DefaultTokenName names the single token given by INTAKE_TOKEN.
const DefaultTokenName = "default"

// ErrTokens is wrapped by every error about the tokens: a malformed tokens
// file, an empty or repeated name, a repeated token. The errors name the
// line, never the token.
var ErrTokens = errors.New("bad bearer tokens")

// ParseTokens reads a tokens file: one "name:token" a line, optionally
// followed, after a space, by "apps=" and the SDKAppIDs of the apps the
// token may use, separated by commas ("billing:tok-b apps=1400000000");
// without it the token may use every app the intake serves. Blank lines
// and lines starting with "#" are skipped; spaces around the name and the
// token are ignored. The name may not contain ":"; the token may not
// contain spaces. It returns an error wrapping ErrTokens that names the
// line (never the token) for a malformed line, a repeated name or a
// repeated token, or when the file holds no token at all.
func ParseTokens(r io.Reader) ([]Token, error) {
	var toks []Token
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, secret, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: line %d has no \":\": write name:token", ErrTokens, n)
		}
		t := Token{Name: strings.TrimSpace(name)}
		secret, limits, limited := strings.Cut(strings.TrimSpace(secret), " ")
		t.Secret = secret
		if limited {
			list, ok := strings.CutPrefix(strings.TrimSpace(limits), "apps=")
			if !ok || strings.ContainsAny(list, " \t") {
				return nil, fmt.Errorf("line %d: %w: the token of %q contains a space, or is followed by something other than apps=: "+
					"write name:token, or name:token apps=1400000000,1400000001 to limit the token to those apps", n, ErrTokens, t.Name)
			}
			apps, err := parseAppList(list)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w: the apps of %q: %w", n, ErrTokens, t.Name, err)
			}
			t.Apps = apps
		}
		toks = append(toks, t)
		if err := checkToken(t); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokens, err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("%w: no token: add a line name:token", ErrTokens)
	}
	if err := checkTokens(toks); err != nil {
		return nil, err
	}
	return toks, nil
}

func checkToken(t Token) error {
	switch {
	case t.Name == "":
		return fmt.Errorf("%w: the name is empty: write name:token", ErrTokens)
	case len(t.Name) > tasks.MaxNoteLen:
		return fmt.Errorf("%w: the name is %d bytes long; at most %d are allowed", ErrTokens, len(t.Name), tasks.MaxNoteLen)
	case t.Secret == "":
		return fmt.Errorf("%w: the token of %q is empty", ErrTokens, t.Name)
	case strings.IndexFunc(t.Secret, unicode.IsSpace) >= 0:
		return fmt.Errorf("%w: the token of %q contains a space", ErrTokens, t.Name)
	}
	for i, id := range t.Apps {
		switch {
		case id == 0:
			return fmt.Errorf("%w: the apps of %q list SDKAppID 0: give the SDKAppIDs from the Chat console", ErrTokens, t.Name)
		case slices.Contains(t.Apps[:i], id):
			return fmt.Errorf("%w: the apps of %q list %d twice: list each app once", ErrTokens, t.Name, id)
		}
	}
	return nil
}

// parseAppList reads "1400000000,1400000001": SDKAppIDs in digits,
// separated by commas.
func parseAppList(list string) ([]uint64, error) {
	var out []uint64
	for f := range strings.SplitSeq(list, ",") {
		id, err := strconv.ParseUint(f, 10, 64)
		if err != nil || id == 0 {
			return nil, errors.New("apps= takes SDKAppIDs in digits separated by commas, without spaces, such as apps=1400000000,1400000001")
		}
		out = append(out, id)
	}
	return out, nil
}

// checkTokens checks each token and that no name or token appears twice.
func checkTokens(toks []Token) error {
	names := make(map[string]bool, len(toks))
	hashes := make(map[[sha256.Size]byte]string, len(toks))
	for _, t := range toks {
		if err := checkToken(t); err != nil {
			return err
		}
		if names[t.Name] {
			return fmt.Errorf("%w: the name %q appears twice: give each client its own name", ErrTokens, t.Name)
		}
		names[t.Name] = true
		if other, dup := hashes[t.hash()]; dup {
			return fmt.Errorf("%w: %q and %q have the same token: give each client its own", ErrTokens, other, t.Name)
		}
		hashes[t.hash()] = t.Name
	}
	return nil
}

// newClients makes the clients of toks, each with the apps it may use
// among served (all of them when its token lists none). A token that
// lists an app not served is refused.
func newClients(toks []Token, served []uint64, r float64, burst int) ([]*client, error) {
	if err := checkTokens(toks); err != nil {
		return nil, err
	}
	cs := make([]*client, len(toks))
	for i, t := range toks {
		c := &client{name: t.Name, hash: t.hash(), lim: rate.NewLimiter(rate.Limit(r), burst), apps: served, allApps: true}
		for _, id := range t.Apps {
			if !slices.Contains(served, id) {
				return nil, fmt.Errorf("%w: the token %q may use app %d, which the intake does not serve: add the app to the intake's apps (TIM_APPS_FILE) or take it off the token's apps=",
					ErrTokens, t.Name, id)
			}
		}
		if len(t.Apps) > 0 {
			c.apps, c.allApps = slices.Clone(t.Apps), false
		}
		cs[i] = c
	}
	return cs, nil
}

// lookup returns the client whose token is presented, or nil. It compares
// the token's hash with every client's in constant time and always visits
// all of them, so the time taken says nothing about which token, or how
// much of one, matched.
func (s *Server) lookup(presented string) *client {
	h := sha256.Sum256([]byte(presented))
	var found *client
	for _, c := range s.clients {
		if subtle.ConstantTimeCompare(h[:], c.hash[:]) == 1 {
			found = c
		}
	}
	return found
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authenticated lets a request through to next only with a known bearer
// token (401 otherwise) and within the token's rate (429 otherwise, with
// Retry-After). An address that has sent too many unknown tokens gets 429
// before its token is looked at (see loginguard). Who asked is recorded for the request log and for
// RequestedBy.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := s.guard.Allow(r); !ok {
			secs := int(wait / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf(
				"too many requests with an unknown bearer token from your address; retry after %d s with a valid token", secs), nil)
			return
		}
		tok, ok := bearer(r)
		if !ok { // not a guess: not counted
			w.Header().Set("WWW-Authenticate", `Bearer realm="recallq"`)
			writeError(w, http.StatusUnauthorized, "no bearer token: send the header Authorization: Bearer <token>", nil)
			return
		}
		c := s.lookup(tok)
		if c == nil {
			s.guard.Failed(r, "unknown bearer token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="recallq", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "the bearer token is not valid: use a token from the intake's INTAKE_TOKENS_FILE or INTAKE_TOKEN", nil)
			return
		}
		slotOf(r.Context()).name = c.name
		slotOf(r.Context()).client = c
		now := s.cfg.Now()
		res := c.lim.ReserveN(now, 1)
		if delay := res.DelayFrom(now); !res.OK() || delay > 0 {
			res.CancelAt(now)
			secs := 1
			if res.OK() {
				secs = max(1, int(math.Ceil(delay.Seconds())))
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf(
				"too many requests for %q: at most %v a second (bursts of %d); retry after %d s",
				c.name, s.cfg.Rate, s.cfg.Burst, secs), nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientSlot carries who asked from the authentication to the handlers and
// the request log.
type clientSlot struct {
	name   string
	client *client
	app    uint64 // the app a POST named (or the one served)
}

type slotKey struct{}

func withClientSlot(r *http.Request) (*http.Request, *clientSlot) {
	slot := &clientSlot{}
	return r.WithContext(context.WithValue(r.Context(), slotKey{}, slot)), slot
}

// slotOf returns the request's slot; a request that did not come through
// ServeHTTP gets a throwaway one.
func slotOf(ctx context.Context) *clientSlot {
	if s, ok := ctx.Value(slotKey{}).(*clientSlot); ok {
		return s
	}
	return &clientSlot{}
}

// requester is who asked for the request's recalls.
func requester(ctx context.Context) string { return slotOf(ctx).name }
