// Package imsim simulates Tencent Cloud Chat's one-to-one message recall
// endpoint, v4/openim/admin_msgwithdraw, for tests, benchmarks and the demo:
// the real API cannot be reached from here.
//
// A Sim is an http.Handler. It serves the API path with the checks, error
// codes and rate limit the API page documents, an open-world message store,
// and fault injection (latency, random 91000s, gateway outages, pinned codes),
// and it serves JSON control endpoints under /sim/ for programs that reach it
// over HTTP:
//
//	GET  /sim/stats    Stats as JSON (snake_case keys)
//	GET  /sim/faults   the current Faults
//	POST /sim/faults   SetFaults: {"FailRate": 0.1, "LatencyMin": "5ms", "LatencyMax": "20ms",
//	                   "OutageUntil": "2025-01-02T15:04:05Z", "RefuseFor": "30s",
//	                   "CodeFor": "10s", "Code": 91000, "AnswerDelay": "6s"}
//	POST /sim/reset    Reset
//	POST /sim/force    Force: {"MsgKey": "1_2_3", "Code": 91000, "Times": 2}
//	POST /sim/drop     DropAccount: {"Account": "bob"}
//	POST /sim/forget   ForgetMessage: {"From_Account": "a", "To_Account": "b", "MsgKey": "1_2_3"}
//	GET  /sim/fate?from=a&to=b&msgkey=1_2_3   Fate: {"codes": [60007, 0, 20023]}
//	GET  /sim/outside  the outside load: {"rate": 50}
//	POST /sim/outside  SetOutsideRate: {"rate": 50} (calls per second; 0 stops it)
//
// It also serves Tencent's group message recall, group_msg_recall, with a
// rate limit of its own, and its control endpoints under /sim/group/: see
// serveGroup (group.go) and serveGroupControl (groupcontrol.go).
//
// The body of POST /sim/faults replaces every fault (a field left out is
// zero). Durations are Go duration strings ("250ms") or integer nanoseconds;
// OutageUntil, RefuseUntil and CodeUntil are RFC 3339 times, and OutageFor,
// RefuseFor and CodeFor are durations that set them to the simulator's Now
// plus the duration. An out-of-range value answers 400 and changes nothing.
// The control endpoints answer 405 to a wrong method and 4xx {"error": "..."}
// to a bad request.
//
// A refusal (Faults.RefuseUntil) takes the whole server off the network:
// ListenAndServe answers the POST that set it, then closes its listener and
// every connection, and listens on the same port again when it ends, so
// clients see "connection refused" as they would for a host that is down.
//
// # Request handling
//
// A call to the API is handled in this order; the first failing check
// answers, always with HTTP 200, ActionStatus "FAIL", ErrorCode and ErrorInfo
// (and a RequestId), except the outage's HTTP 502:
//
//  1. Sleep a uniform random latency in [LatencyMin, LatencyMax]; a client
//     that goes away meanwhile gets no answer and is not counted (the body
//     is read first, so that net/http watches the connection and cancels
//     the request when the client hangs up). A request
//     that arrives or wakes up during a refusal (Faults.RefuseUntil) has its
//     connection cut, without an answer, and is not counted.
//  2. Outage (Faults.OutageUntil): HTTP 502 with an HTML body.
//  3. Method not POST: 60002. Path not exactly /v4/openim/admin_msgwithdraw: 60009.
//  4. Query string (names case-sensitive, extra parameters ignored):
//     malformed: 60002; sdkappid missing: 60012; sdkappid not a decimal
//     number: 60025; another app's sdkappid: 60006; identifier or usersig
//     missing or empty: 60025; random missing or not a decimal integer in
//     0..4294967295: 60002; contenttype not exactly "json": 60025.
//  5. UserSig (tencentyun.VerifyUserSig at Config.Now): other SDKAppID: 70014;
//     other identifier: 70013; expired: 70001; wrong key or a UserSig made
//     with a userbuf: 70009; not decodable: 70003.
//  6. Identifier not one of Config.Admins: 90009.
//  7. Rate: the arrival is counted; Cap admitted arrivals already in
//     (now-Window, now], the outside load's included (outside.go): 60007.
//     A refused arrival does not count toward Cap.
//  8. Faults.CodeUntil: Faults.Code.
//  9. Body not a JSON object, or one of the three fields not a string: 90001.
//  10. A Force rule for the body's MsgKey: its code (the store is not touched).
//  11. From_Account empty or missing: 90008; To_Account: 90003; MsgKey: 90054.
//  12. Store: From_Account dropped: 90008; To_Account dropped: 90003; MsgKey
//     not matching ^[0-9]+_[0-9]+_[0-9]+$: 90054; message forgotten: 20022;
//     already recalled: 20023; FailRate hit: 91000 (the message stays
//     unrecalled); otherwise the message is marked recalled: 0, "OK".
//
// Then, with Faults.AnswerDelay, the answer is held back that long: the call
// has counted and taken effect, as on a slow server, and a client that gives
// up meanwhile never sees its answer (which is still counted and listed in
// the fate).
//
// Every answer to a request whose body named (From_Account, To_Account,
// MsgKey), all three non-empty strings, is appended to that message's Fate,
// whichever check produced it. The simulator never logs or echoes a UserSig
// or the secret key.
package imsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"

	"github.com/recallq/recallq/internal/sleep"
)

// APIPath is the path of the recall API the simulator serves.
const APIPath = "/v4/openim/admin_msgwithdraw"

// controlPrefix starts the paths of the simulator's control endpoints.
const controlPrefix = "/sim/"

// Defaults for Config.
const (
	// DefaultAdmin is the one app admin account when Config.Admins is empty.
	DefaultAdmin = "admin"
	// DefaultCap is Tencent's documented limit for this API: 200 calls a second.
	DefaultCap = 200
	// DefaultWindow is the sliding window DefaultCap applies to.
	DefaultWindow = time.Second
)

// maxBodyBytes bounds a request body; a larger one answers 90001.
const maxBodyBytes = 64 << 10

// ErrConfig is wrapped by every error New returns for an invalid Config.
var ErrConfig = errors.New("imsim: invalid config")

// Config configures a Sim.
type Config struct {
	// SDKAppID is the one app this simulator serves. Required.
	SDKAppID uint64
	// SecretKey verifies UserSigs with tencentyun.VerifyUserSig. Required.
	SecretKey string
	// Admins are the app admin accounts allowed to call the API.
	// Default {DefaultAdmin}.
	Admins []string
	// Cap is the number of calls allowed in any sliding Window.
	// Default DefaultCap (200).
	Cap int
	// Window is the sliding window of the rate limit. Default DefaultWindow (1s).
	Window time.Duration
	// LatencyMin and LatencyMax bound the uniform random latency every API
	// request sleeps before it is counted or answered. Default 0.
	LatencyMin, LatencyMax time.Duration
	// LatencyTail, when set, replaces them with a lognormal latency.
	LatencyTail Tail
	// FailRate is the fraction, 0..1, of otherwise-successful calls answered
	// 91000 (internal error, try again). Default 0.
	FailRate float64
	// OutsideRate is a steady outside load, calls per second, that shares
	// the Cap (outside.go); at most MaxOutsideRate. Default 0, none.
	OutsideRate float64
	// Seed seeds the random source of latency and FailRate; 0 picks a random seed.
	Seed uint64
	// Now is the clock of UserSig expiry, the rate limit, the statistics and
	// the fault deadlines. Default time.Now. (Latency is always real time.)
	Now func() time.Time
	// Logger receives a debug line per answered call. Default discards.
	Logger *slog.Logger
}

// Sim is the simulated endpoint. It is safe for concurrent use.
type Sim struct {
	cfg      Config
	admins   map[string]struct{}
	log      *slog.Logger
	baseline Faults // the faults Config sets, restored by Reset

	mu     sync.Mutex // guards faults, forces and rng
	faults Faults
	forces map[string]*forceRule
	rng    *rand.Rand
	// refuseChanged is signalled (never blocking) when Faults.RefuseUntil
	// changes, so that ListenAndServe closes or reopens its listener.
	refuseChanged chan struct{}

	meter    *meter
	counters *counters
	store    *store
	reqSeq   atomic.Uint64
	hist     *history    // sent messages, admin_getroammsg, callbacks (history.go)
	groups   *groupStore // group_msg_recall (group.go)
}

// forceRule pins the answer for one MsgKey.
type forceRule struct {
	code int
	left int // calls left; <= 0 means always
}

// New returns a simulator for cfg after applying the defaults. It returns an
// error wrapping ErrConfig, naming the field, when cfg is invalid.
func New(cfg Config) (*Sim, error) {
	if len(cfg.Admins) == 0 {
		cfg.Admins = []string{DefaultAdmin}
	}
	cfg.Admins = slices.Clone(cfg.Admins)
	if cfg.Cap == 0 {
		cfg.Cap = DefaultCap
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	switch {
	case cfg.SDKAppID == 0:
		return nil, fmt.Errorf("%w: SDKAppID is required: the app the simulator serves", ErrConfig)
	case cfg.SecretKey == "":
		return nil, fmt.Errorf("%w: SecretKey is required: it verifies the callers' UserSigs", ErrConfig)
	case slices.Contains(cfg.Admins, ""):
		return nil, fmt.Errorf("%w: Admins has an empty account", ErrConfig)
	case cfg.Cap < 0:
		return nil, fmt.Errorf("%w: Cap is %d, must be positive", ErrConfig, cfg.Cap)
	case cfg.Window < 0:
		return nil, fmt.Errorf("%w: Window is %v, must be positive", ErrConfig, cfg.Window)
	}
	if err := validateOutsideRate(cfg.OutsideRate); err != nil {
		return nil, fmt.Errorf("%w: OutsideRate: %w", ErrConfig, err)
	}
	base := Faults{FailRate: cfg.FailRate, LatencyMin: cfg.LatencyMin, LatencyMax: cfg.LatencyMax, LatencyTail: cfg.LatencyTail}
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}

	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Sim{
		cfg:      cfg,
		admins:   make(map[string]struct{}, len(cfg.Admins)),
		log:      cfg.Logger,
		baseline: base,
		faults:   base,
		forces:   make(map[string]*forceRule),
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		meter:    newMeter(cfg.Cap, cfg.Window, cfg.Now()),
		counters: newCounters(),
		store:    newStore(),
		hist:     newHistory(cfg.Now()),
		groups:   newGroupStore(cfg.Cap, cfg.Window, cfg.Now()),

		refuseChanged: make(chan struct{}, 1),
	}
	for _, a := range cfg.Admins {
		s.admins[a] = struct{}{}
	}
	s.meter.setOutside(cfg.OutsideRate, cfg.Now())
	return s, nil
}

// DropAccount makes the account not exist: recalls from it answer 90008,
// recalls to it 90003.
func (s *Sim) DropAccount(id string) { s.store.dropAccount(id) }

// ForgetMessage makes the message not exist: recalls of it answer 20022.
func (s *Sim) ForgetMessage(from, to, msgKey string) { s.store.forget(from, to, msgKey) }

// Force answers code for the next times calls that name msgKey (whatever
// their accounts), or for every such call when times <= 0, once they pass
// the authentication, rate and CodeUntil checks and their body parses. A
// forced answer does not touch the store, so a message forced to 91000 can
// still be recalled afterwards. A later Force for the same key replaces the
// rule; Reset clears all rules.
func (s *Sim) Force(msgKey string, code int, times int) {
	s.mu.Lock()
	s.forces[msgKey] = &forceRule{code: code, left: max(times, 0)}
	s.mu.Unlock()
}

// takeForce returns the forced code for msgKey, if any, using up one call.
func (s *Sim) takeForce(msgKey string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return takeRule(s.forces, msgKey) // group.go
}

// SetFaults replaces the injected faults. Out-of-range values are clamped:
// FailRate into [0, 1], negative latencies and AnswerDelay to 0, LatencyMax
// up to LatencyMin.
func (s *Sim) SetFaults(f Faults) {
	f.FailRate = min(max(f.FailRate, 0), 1)
	f.LatencyMin = max(f.LatencyMin, 0)
	f.LatencyMax = max(f.LatencyMax, f.LatencyMin)
	f.AnswerDelay = max(f.AnswerDelay, 0)
	s.mu.Lock()
	changed := !s.faults.RefuseUntil.Equal(f.RefuseUntil)
	s.faults = f
	s.mu.Unlock()
	if changed {
		s.signalRefuse()
	}
}

// signalRefuse tells ListenAndServe that RefuseUntil changed.
func (s *Sim) signalRefuse() {
	select {
	case s.refuseChanged <- struct{}{}:
	default: // a signal is already pending
	}
}

// refusing reports whether a refusal is in force now.
func (s *Sim) refusing() bool {
	return s.cfg.Now().Before(s.Faults().RefuseUntil)
}

// Faults returns the faults now in force.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Stats returns a snapshot of the statistics.
func (s *Sim) Stats() Stats {
	var st Stats
	s.meter.fill(&st, s.cfg.Now())
	s.counters.fill(&st)
	return st
}

// Fate returns every code answered for the message, in order (nil if none).
// HTTP-level failures (the outage's 502) are not answers and are not listed.
func (s *Sim) Fate(from, to, msgKey string) []int { return s.store.fate(from, to, msgKey) }

// Reset clears the statistics (Start becomes Now), the rate window, the
// store (recalled, forgotten messages and dropped accounts), the Force rules
// and the faults set since New: the faults go back to those of the Config
// (FailRate, LatencyMin, LatencyMax), which are zero unless configured, and
// so does the outside load (OutsideRate).
func (s *Sim) Reset() {
	s.mu.Lock()
	changed := !s.faults.RefuseUntil.Equal(s.baseline.RefuseUntil)
	s.faults = s.baseline
	s.forces = make(map[string]*forceRule)
	s.mu.Unlock()
	if changed {
		s.signalRefuse()
	}
	s.meter.reset(s.cfg.Now())
	s.meter.setOutside(s.cfg.OutsideRate, s.cfg.Now())
	s.counters.reset()
	s.store.reset()
	s.hist.reset(s.cfg.Now())
	s.groups.reset(s.cfg.Now())
}

// ResetStats clears the statistics and the rate window only; the store,
// faults, Force rules and outside load stay (the outside calls start again
// at Now). A caller that set a scenario up through the
// API itself uses it so the figures count only the run that follows.
func (s *Sim) ResetStats() {
	s.meter.reset(s.cfg.Now())
	s.counters.reset()
	s.groups.resetStats(s.cfg.Now())
}

// ServeHTTP serves the recall API at APIPath (any other path outside /sim/
// answers 60009 or 60002) and the control endpoints under /sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, groupControlPrefix) {
		s.serveGroupControl(w, r) // groupcontrol.go
		return
	}
	if strings.HasPrefix(r.URL.Path, controlPrefix) {
		s.serveControl(w, r)
		return
	}
	if r.URL.Path == RoamPath {
		s.serveRoam(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, groupServicePrefix) {
		s.serveGroup(w, r) // group.go
		return
	}
	if r.URL.Path == "/" && (r.Method == http.MethodHead || r.Method == http.MethodGet) {
		// No API lives at the root: recallq's workers open their
		// connections with HEAD / before their first calls
		// (tim.Client.Preconnect). It is no call: not counted, no latency.
		http.NotFound(w, r)
		return
	}
	s.serveAPI(w, r)
}

// recallBody is the request body as far as it parsed.
type recallBody struct {
	from, to, msgKey string
	ok               bool // a JSON object whose three fields, where present, are strings
}

// named reports whether the body names one message, so its answer belongs
// in that message's fate.
func (b recallBody) named() bool { return b.from != "" && b.to != "" && b.msgKey != "" }

// parseBody parses a request body strictly: a JSON object whose field names
// match exactly (Tencent's are case-sensitive) and whose three fields are
// strings (or null) when present. Unknown fields are ignored.
func parseBody(data []byte) recallBody {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return recallBody{}
	}
	b := recallBody{ok: true}
	for name, dst := range map[string]*string{"From_Account": &b.from, "To_Account": &b.to, "MsgKey": &b.msgKey} {
		raw, ok := m[name]
		if !ok {
			continue
		}
		// null leaves the field empty, as if it were missing.
		if err := json.Unmarshal(raw, dst); err != nil {
			return recallBody{}
		}
	}
	return b
}

// serveAPI handles one call of the API; the package comment gives the order.
func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	data, readErr, f, at, goOn := s.prelude(w, r, s.counters) // request.go
	if !goOn {
		return
	}

	body := recallBody{}
	if readErr == nil {
		body = parseBody(data)
	}
	code, detail, recorded := s.decide(r, body, at)
	if body.named() && !recorded {
		s.store.note(body.from, body.to, body.msgKey, code)
	}
	if f.AnswerDelay > 0 && sleep.For(ctx, f.AnswerDelay) != nil {
		s.log.DebugContext(ctx, "imsim: client went away before the slow answer", "answer_delay", f.AnswerDelay, "error_code", code)
	}
	s.answer(ctx, w, r, body, code, detail)
}

// cutIfRefusing cuts the request's connection without an answer during a
// refusal. http.ErrAbortHandler makes net/http close the connection (HTTP/1)
// or reset the stream (HTTP/2) and log nothing.
func (s *Sim) cutIfRefusing(ctx context.Context) {
	if s.refusing() {
		s.log.DebugContext(ctx, "imsim: refusing: connection cut")
		panic(http.ErrAbortHandler)
	}
}

// decide runs the checks and returns the code to answer, a detail for
// ErrorInfo, and whether the store already recorded the code in the fate.
// at is when the call was read and its latency.
func (s *Sim) decide(r *http.Request, body recallBody, at stamp) (code int, detail string, recorded bool) {
	if r.Method != http.MethodPost {
		return codeHTTPParse, "the method must be POST, not " + r.Method, false
	}
	if r.URL.Path != APIPath {
		return codeBadResource, "no API at " + strconv.Quote(r.URL.Path), false
	}
	if code, detail := s.gate(r, s.meter, codeRateLimited, at); code != codeOK { // request.go
		return code, detail, false
	}
	if !body.ok {
		return codeBadJSON, "", false
	}
	if body.msgKey != "" {
		if code, ok := s.takeForce(body.msgKey); ok {
			return code, "forced", false
		}
	}
	switch {
	case body.from == "":
		return codeBadFromAccount, "", false
	case body.to == "":
		return codeBadToAccount, "", false
	case body.msgKey == "":
		return codeBadMsgKey, "", false
	}
	return s.store.recall(body.from, body.to, body.msgKey, s.roll()), "", true
}

// roll reports whether this otherwise-successful call fails with 91000.
func (s *Sim) roll() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.FailRate > 0 && s.rng.Float64() < s.faults.FailRate
}

// checkQuery checks the query string, the UserSig and the admin permission
// (steps 4 to 6). It returns codeOK when the caller is an authenticated admin.
func (s *Sim) checkQuery(rawQuery string) (int, string) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return codeHTTPParse, "the query string is malformed"
	}
	has := func(name string) (string, bool) {
		v, ok := q[name]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}

	appIDText, ok := has("sdkappid")
	if !ok {
		return codeNoSDKAppID, ""
	}
	appID, err := strconv.ParseUint(appIDText, 10, 64)
	if err != nil {
		return codeBadURLParam, "sdkappid is not a number"
	}
	if appID != s.cfg.SDKAppID {
		return codeBadSDKAppID, "this server serves another app"
	}
	identifier, _ := has("identifier")
	if identifier == "" {
		return codeBadURLParam, "identifier is missing"
	}
	usersig, _ := has("usersig")
	if usersig == "" {
		return codeBadURLParam, "usersig is missing"
	}
	random, ok := has("random")
	if !ok {
		return codeHTTPParse, "random is missing"
	}
	if _, err := strconv.ParseUint(random, 10, 32); err != nil {
		return codeHTTPParse, "random must be a decimal integer in 0..4294967295"
	}
	if ct, _ := has("contenttype"); ct != "json" {
		return codeBadURLParam, "contenttype must be json"
	}

	if err := tencentyun.VerifyUserSig(appID, s.cfg.SecretKey, identifier, usersig, s.cfg.Now()); err != nil {
		return sigCode(err), ""
	}
	if _, ok := s.admins[identifier]; !ok {
		return codeNotAdmin, ""
	}
	return codeOK, ""
}

// sigCode maps a tencentyun.VerifyUserSig error to Tencent's code. The
// library checks the SDKAppID, then the identifier, then the expiry, then
// the HMAC, so an expired UserSig made with a wrong key answers 70001.
func sigCode(err error) int {
	switch {
	case errors.Is(err, tencentyun.ErrExpired):
		return codeSigExpired
	case errors.Is(err, tencentyun.ErrSdkAppIDNotMatch):
		return codeSigSDKAppID
	case errors.Is(err, tencentyun.ErrIdentifierNotMatch):
		return codeSigIdentifier
	case errors.Is(err, tencentyun.ErrSigNotMatch),
		errors.Is(err, tencentyun.ErrUserBufNotMatch),
		errors.Is(err, tencentyun.ErrUserBufTypeNotMatch):
		return codeSigVerify
	default: // base64 or zlib decoding failed
		return codeSigIllegal
	}
}

// result is the JSON answer of the API.
type result struct {
	ActionStatus string
	ErrorInfo    string
	ErrorCode    int
	RequestId    string // Tencent's spelling
}

// answer writes code as the JSON result and counts it.
func (s *Sim) answer(ctx context.Context, w http.ResponseWriter, r *http.Request, body recallBody, code int, detail string) {
	res := result{ActionStatus: "OK", ErrorCode: code, RequestId: fmt.Sprintf("Id-sim-%d", s.reqSeq.Add(1))}
	if code != codeOK {
		res.ActionStatus = "FAIL"
		res.ErrorInfo = infoFor(code, detail)
	}
	s.counters.answered(code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(res)
	// Never the URL: it carries the UserSig.
	s.log.DebugContext(ctx, "imsim: answered",
		"method", r.Method, "path", r.URL.Path, "error_code", code,
		"from_account", body.from, "to_account", body.to, "msg_key", body.msgKey)
}
