package imsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestListenAndServe(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, "127.0.0.1:0", s, func(u string) { urls <- u }) }()

	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}
	if got := postRecall(t, base, query(t, nil), "a", "b", "1_1_1"); got != codeOK {
		t.Errorf("code %d, want 0", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after its context ended")
	}
	if _, err := http.Get(base + "/sim/stats"); err == nil {
		t.Errorf("the server still answers after shutdown")
	}
}

func TestListenAndServeAddrInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, _ := newTestSim(t, nil)
	if err := ListenAndServe(context.Background(), ln.Addr().String(), s, nil); err == nil {
		t.Errorf("ListenAndServe on a busy address returned nil")
	}
}

// serveForTest runs ListenAndServe on a free loopback port until the test
// ends and returns its base URL and the channel its result arrives on.
func serveForTest(t *testing.T, s *Sim) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, "127.0.0.1:0", s, func(u string) { urls <- u }) }()
	select {
	case u := <-urls:
		return u, cancel, done
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not listen within 5s")
	}
	return "", nil, nil
}

// tryRecall sends one recall with client and returns its code, or the
// error when no answer came.
// ctxTransport sends every request with ctx: cancelling ctx gives up.
type ctxTransport struct{ ctx context.Context }

func (c ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return http.DefaultTransport.RoundTrip(r.WithContext(c.ctx))
}

func tryRecall(client *http.Client, base, q, msgKey string) (int, error) {
	resp, err := client.Post(base+APIPath+"?"+q, "application/json", strings.NewReader(recallJSON("a", "b", msgKey)))
	if err != nil {
		return 0, withoutURL(err)
	}
	defer resp.Body.Close()
	var res result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return 0, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	return res.ErrorCode, nil
}

// withoutURL is err without the request's URL, which carries the UserSig:
// no test output shows one either.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		base, _, _ := strings.Cut(ue.URL, "?")
		return fmt.Errorf("%s %s: %w", ue.Op, base, ue.Err)
	}
	return err
}

// closing reports the error of a request the refusal's start caught: its
// connection was accepted (or queued by the kernel) just before the
// listener closed, then closed unanswered, as a server going down does.
// Connections refused come after it.
func closing(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

func TestListenAndServeRefusesConnections(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, func(c *Config) { c.Now = time.Now })
	base, cancel, done := serveForTest(t, s)
	q := query(t, nil)
	keepAlive := &http.Client{Timeout: 5 * time.Second}                                                  // reuses its connection
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}} // dials every time

	if code, err := tryRecall(keepAlive, base, q, "1_1_1"); err != nil || code != codeOK {
		t.Fatalf("before the refusal: code %d, err %v; want 0", code, err)
	}
	const refusal = 1500 * time.Millisecond
	set := time.Now()
	resp, err := keepAlive.Post(base+"/sim/faults", "application/json", strings.NewReader(fmt.Sprintf(`{"RefuseFor":%q}`, refusal)))
	if err != nil {
		t.Fatalf("POST /sim/faults: %v: the POST that sets a refusal must still be answered", err)
	}
	var echoed faultsJSON
	err = json.NewDecoder(resp.Body).Decode(&echoed)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || echoed.RefuseUntil.IsZero() {
		t.Fatalf("POST /sim/faults: HTTP %d, %+v, %v; want 200 echoing RefuseUntil", resp.StatusCode, echoed, err)
	}

	// The refusal starts as soon as the POST is answered: within moments a
	// new connection is refused by the kernel, as for a server that is down.
	var refusedAt time.Time
	for deadline := time.Now().Add(refusal / 2); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		_, err := tryRecall(fresh, base, q, "2_2_2")
		if errors.Is(err, syscall.ECONNREFUSED) {
			refusedAt = time.Now()
			break
		}
		if err == nil || closing(err) {
			continue // not closed yet, or closed under this request
		}
		t.Fatalf("during the refusal: %v, want connection refused", err)
	}
	if refusedAt.IsZero() {
		t.Fatalf("no connection was refused within %s of setting the refusal", refusal/2)
	}
	// The connection kept alive from before is gone too.
	if code, err := tryRecall(keepAlive, base, q, "3_3_3"); err == nil {
		t.Errorf("a kept-alive connection still got an answer (%d) during the refusal", code)
	}
	if _, err := http.Get(base + "/sim/stats"); err == nil {
		t.Errorf("the control endpoints answer during the refusal")
	}

	// Then the same port listens again.
	var back time.Time
	for deadline := time.Now().Add(refusal + 5*time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if code, err := tryRecall(fresh, base, q, "4_4_4"); err == nil {
			if code != codeOK {
				t.Fatalf("after the refusal: code %d, want 0", code)
			}
			back = time.Now()
			break
		}
	}
	if back.IsZero() {
		t.Fatalf("the simulator did not listen on %s again within %s of the refusal's end", base, 5*time.Second)
	}
	if got := back.Sub(set); got < refusal-100*time.Millisecond {
		t.Errorf("answered again %s after the refusal was set, want about %s", got, refusal)
	}
	if code, err := tryRecall(keepAlive, base, q, "5_5_5"); err != nil || code != codeOK {
		t.Errorf("after the refusal, the first client: code %d, err %v; want 0", code, err)
	}
	// Nothing refused was counted or listed.
	st := s.Stats()
	if st.Calls != 3 || st.Counted != 3 {
		t.Errorf("stats: %d calls, %d counted; want 3 (the refused requests are not calls)", st.Calls, st.Counted)
	}
	for _, k := range []string{"2_2_2", "3_3_3"} {
		if f := s.Fate("a", "b", k); f != nil {
			t.Errorf("fate of %s = %v, want none: it was refused", k, f)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after its context ended")
	}
}

func TestListenAndServeStopsDuringRefusal(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, func(c *Config) { c.Now = time.Now })
	_, cancel, done := serveForTest(t, s)
	s.SetFaults(Faults{RefuseUntil: time.Now().Add(time.Hour)})
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe cancelled during a refusal: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not return within 5s of its context ending during a refusal")
	}
}

func TestListenAndServeRefusalLiftedEarly(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, func(c *Config) { c.Now = time.Now })
	base, _, _ := serveForTest(t, s)
	q := query(t, nil)
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	s.SetFaults(Faults{RefuseUntil: time.Now().Add(time.Hour)})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := tryRecall(fresh, base, q, "1_1_1"); errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refusal did not start within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.SetFaults(Faults{}) // lifted: listen again now, not in an hour
	for {
		code, err := tryRecall(fresh, base, q, "1_1_1")
		if err == nil {
			if code != codeOK {
				t.Fatalf("code %d, want 0", code)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still unreachable 5s after the refusal was lifted: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRefusalCutsRequestsElsewhere: served by another server (httptest),
// a refusal cuts each API request without an answer; the control
// endpoints still answer.
func TestRefusalCutsRequestsElsewhere(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	srv := newHTTPServer(t, s)
	q := query(t, nil)
	rep := httpDo(t, http.MethodPost, srv.URL+"/sim/faults", `{"RefuseFor":"10s"}`)
	var echoed faultsJSON
	decodeJSON(t, rep, &echoed)
	if want := clock.Now().Add(10 * time.Second); !s.Faults().RefuseUntil.Equal(want) || !echoed.RefuseUntil.Equal(want) {
		t.Fatalf("RefuseUntil %v (echoed %v), want %v", s.Faults().RefuseUntil, echoed.RefuseUntil, want)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if code, err := tryRecall(client, srv.URL, q, "1_1_1"); err == nil {
		t.Errorf("an API request during the refusal was answered %d; want its connection cut", code)
	}
	clock.Advance(10 * time.Second)
	if code, err := tryRecall(client, srv.URL, q, "1_1_1"); err != nil || code != codeOK {
		t.Errorf("after the refusal: code %d, err %v; want 0", code, err)
	}
	if st := s.Stats(); st.Calls != 1 {
		t.Errorf("stats: %d calls, want 1: the cut request is not a call", st.Calls)
	}
}

// TestClientThatHangsUpDuringLatency: over a real connection, a client
// that gives up while its request sleeps the latency is neither counted
// nor answered, and the message is not touched.
func TestClientThatHangsUpDuringLatency(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, func(c *Config) {
		c.Now = time.Now
		c.LatencyMin, c.LatencyMax = 400*time.Millisecond, 400*time.Millisecond
	})
	srv := newHTTPServer(t, s)
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	if code, err := tryRecall(impatient, srv.URL, query(t, nil), "1_1_1"); err == nil {
		t.Fatalf("answered %d within the client's timeout, want a timeout", code)
	}
	time.Sleep(700 * time.Millisecond) // past the latency
	if st := s.Stats(); st.Calls != 0 || st.Counted != 0 {
		t.Errorf("stats: %d calls, %d counted; want none: the client hung up during the latency", st.Calls, st.Counted)
	}
	if f := s.Fate("a", "b", "1_1_1"); f != nil {
		t.Errorf("fate %v, want none", f)
	}
}

// TestAnswerDelay: a slow server decides the call at once and answers
// late; a client that gives up meanwhile never learns that its recall
// happened, and the next call meets 20023.
func TestAnswerDelay(t *testing.T) {
	t.Parallel()
	s, _ := newTestSim(t, func(c *Config) { c.Now = time.Now })
	srv := newHTTPServer(t, s)
	rep := httpDo(t, http.MethodPost, srv.URL+"/sim/faults", `{"AnswerDelay":"2s"}`)
	var echoed faultsJSON
	decodeJSON(t, rep, &echoed)
	if s.Faults().AnswerDelay != 2*time.Second || time.Duration(echoed.AnswerDelay) != 2*time.Second {
		t.Fatalf("AnswerDelay %v (echoed %v), want 2s", s.Faults().AnswerDelay, time.Duration(echoed.AnswerDelay))
	}
	q := query(t, nil)
	// The client gives up once the simulator has decided the call, well
	// before the answer. (A fixed 100 ms timeout gave up before a loaded
	// machine had read the request at all.)
	ctx, giveUp := context.WithCancel(context.Background())
	defer giveUp()
	impatient := &http.Client{Transport: ctxTransport{ctx}}
	gaveUp := make(chan error, 1)
	go func() { _, err := tryRecall(impatient, srv.URL, q, "1_1_1"); gaveUp <- err }()
	for deadline := time.Now().Add(5 * time.Second); s.Fate("a", "b", "1_1_1") == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call was not decided within 5 s of sending it")
		}
	}
	giveUp()
	if err := <-gaveUp; err == nil {
		t.Fatal("answered before the client gave up, want no answer")
	}
	if f := s.Fate("a", "b", "1_1_1"); !equalInts(f, []int{codeOK}) {
		t.Errorf("fate %v once the client gave up, want [0]: the call took effect on arrival", f)
	}
	patient := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	code, err := tryRecall(patient, srv.URL, q, "1_1_1")
	if err != nil || code != codeAlreadyRecalled {
		t.Fatalf("second call: code %d, err %v; want 20023", code, err)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("answered after %s, want at least the 2 s delay", waited)
	}
	if st := s.Stats(); st.Counted != 2 || st.ByCode[codeOK] != 1 || st.ByCode[codeAlreadyRecalled] != 1 {
		t.Errorf("stats %+v, want 2 counted: one 0, one 20023", st)
	}
	s.SetFaults(Faults{AnswerDelay: -time.Second})
	if got := s.Faults().AnswerDelay; got != 0 {
		t.Errorf("SetFaults(AnswerDelay -1s) kept %v, want 0", got)
	}
	if r := httpDo(t, http.MethodPost, srv.URL+"/sim/faults", `{"AnswerDelay":"-1s"}`); r.status != http.StatusBadRequest {
		t.Errorf("POST a negative AnswerDelay: HTTP %d, want 400", r.status)
	}
}
