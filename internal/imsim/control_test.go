package imsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newHTTPServer(t *testing.T, s *Sim) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

// httpResp is a finished HTTP exchange.
type httpResp struct {
	status int
	body   []byte
}

func httpDo(t testing.TB, method, u, body string) httpResp {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%v", withoutURL(err))
		return httpResp{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("read: %v", err)
	}
	return httpResp{status: resp.StatusCode, body: b}
}

func decodeJSON(t testing.TB, r httpResp, dst any) {
	t.Helper()
	if err := json.Unmarshal(r.body, dst); err != nil {
		t.Errorf("HTTP %d body %q is not the JSON expected: %v", r.status, r.body, err)
	}
}

func TestControlEndpoints(t *testing.T) {
	t.Parallel()
	s, clock := newTestSim(t, nil)
	srv := newHTTPServer(t, s)
	q := query(t, nil)

	t.Run("stats", func(t *testing.T) {
		postRecall(t, srv.URL, q, "a", "b", "1_1_1")
		postRecall(t, srv.URL, q, "a", "b", "1_1_1")
		rep := httpDo(t, http.MethodGet, srv.URL+"/sim/stats", "")
		if rep.status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", rep.status, rep.body)
		}
		var raw map[string]json.RawMessage
		decodeJSON(t, rep, &raw)
		for _, k := range []string{"start", "calls", "by_code", "http_errors", "counted", "per_second",
			"max_in_any_window", "rejected_60007", "first", "last"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("stats JSON lacks %q: %s", k, rep.body)
			}
		}
		var st Stats
		decodeJSON(t, rep, &st)
		if st.Calls != 2 || st.ByCode[0] != 1 || st.ByCode[20023] != 1 || st.MaxInAnyWindow != 2 || !equalInts(st.PerSecond, []int{2}) {
			t.Errorf("stats %+v, want 2 calls: one 0, one 20023", st)
		}
	})

	t.Run("fate", func(t *testing.T) {
		rep := httpDo(t, http.MethodGet, srv.URL+"/sim/fate?from=a&to=b&msgkey=1_1_1", "")
		var got struct{ Codes []int }
		decodeJSON(t, rep, &got)
		if !equalInts(got.Codes, []int{0, 20023}) {
			t.Errorf("fate %v, want [0 20023]", got.Codes)
		}
		rep = httpDo(t, http.MethodGet, srv.URL+"/sim/fate?from=a&to=b&msgkey=9_9_9", "")
		if strings.TrimSpace(string(rep.body)) != `{"codes":[]}` {
			t.Errorf("fate of an untouched message: %s, want {\"codes\":[]}", rep.body)
		}
	})

	t.Run("force", func(t *testing.T) {
		rep := httpDo(t, http.MethodPost, srv.URL+"/sim/force", `{"MsgKey":"2_2_2","Code":91000,"Times":1}`)
		if rep.status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", rep.status, rep.body)
		}
		got := []int{postRecall(t, srv.URL, q, "a", "b", "2_2_2"), postRecall(t, srv.URL, q, "a", "b", "2_2_2")}
		if !equalInts(got, []int{91000, 0}) {
			t.Errorf("codes %v, want [91000 0]", got)
		}
	})

	t.Run("drop and forget", func(t *testing.T) {
		httpDo(t, http.MethodPost, srv.URL+"/sim/drop", `{"Account":"gone"}`)
		httpDo(t, http.MethodPost, srv.URL+"/sim/forget", `{"From_Account":"a","To_Account":"b","MsgKey":"3_3_3"}`)
		got := []int{
			postRecall(t, srv.URL, q, "gone", "b", "4_4_4"),
			postRecall(t, srv.URL, q, "a", "gone", "4_4_4"),
			postRecall(t, srv.URL, q, "a", "b", "3_3_3"),
		}
		if !equalInts(got, []int{90008, 90003, 20022}) {
			t.Errorf("codes %v, want [90008 90003 20022]", got)
		}
	})

	t.Run("faults", func(t *testing.T) {
		tests := []struct {
			name      string
			body      string
			want      Faults
			wantAPI   int // HTTP status of an API call afterwards
			wantError bool
		}{
			{
				name:    "outage for a duration",
				body:    `{"OutageFor":"10s"}`,
				want:    Faults{OutageUntil: clock.Now().Add(10 * time.Second)},
				wantAPI: http.StatusBadGateway,
			},
			{
				name:    "absolute times and nanoseconds",
				body:    fmt.Sprintf(`{"FailRate":0.25,"LatencyMin":1000,"LatencyMax":"2us","CodeUntil":%q,"Code":91000}`, clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)),
				want:    Faults{FailRate: 0.25, LatencyMin: time.Microsecond, LatencyMax: 2 * time.Microsecond, CodeUntil: clock.Now().Add(time.Hour).UTC().Truncate(time.Second), Code: 91000},
				wantAPI: http.StatusOK,
			},
			{name: "FailRate out of range", body: `{"FailRate":2}`, wantError: true},
			{name: "bad duration", body: `{"LatencyMax":"soon"}`, wantError: true},
			{name: "LatencyMax below LatencyMin", body: `{"LatencyMin":"2ms","LatencyMax":"1ms"}`, wantError: true},
			{name: "not JSON", body: `x`, wantError: true},
			{name: "empty body clears", body: `{}`, want: Faults{}, wantAPI: http.StatusOK},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := s.Faults()
				rep := httpDo(t, http.MethodPost, srv.URL+"/sim/faults", tt.body)
				if tt.wantError {
					if rep.status != http.StatusBadRequest || s.Faults() != before {
						t.Errorf("HTTP %d, faults %+v: want 400 and faults unchanged", rep.status, s.Faults())
					}
					return
				}
				if rep.status != http.StatusOK {
					t.Fatalf("HTTP %d: %s", rep.status, rep.body)
				}
				got := s.Faults()
				if got.FailRate != tt.want.FailRate || got.LatencyMin != tt.want.LatencyMin || got.LatencyMax != tt.want.LatencyMax ||
					!got.OutageUntil.Equal(tt.want.OutageUntil) || !got.CodeUntil.Equal(tt.want.CodeUntil) || got.Code != tt.want.Code {
					t.Errorf("faults %+v, want %+v", got, tt.want)
				}
				var echoed faultsJSON
				decodeJSON(t, httpDo(t, http.MethodGet, srv.URL+"/sim/faults", ""), &echoed)
				if f := echoed.faults(clock.Now()); f.LatencyMax != got.LatencyMax || !f.OutageUntil.Equal(got.OutageUntil) {
					t.Errorf("GET /sim/faults %+v, want %+v", f, got)
				}
				if r := httpDo(t, http.MethodPost, srv.URL+APIPath+"?"+q, recallJSON("a", "b", "5_5_5")); r.status != tt.wantAPI {
					t.Errorf("API call: HTTP %d, want %d", r.status, tt.wantAPI)
				}
			})
		}
	})

	t.Run("reset", func(t *testing.T) {
		rep := httpDo(t, http.MethodPost, srv.URL+"/sim/reset", "")
		if rep.status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", rep.status, rep.body)
		}
		st := s.Stats()
		if st.Calls != 0 || st.Counted != 0 || len(st.ByCode) != 0 || len(st.PerSecond) != 0 || !st.First.IsZero() {
			t.Errorf("stats after reset: %+v", st)
		}
		if got := postRecall(t, srv.URL, q, "a", "b", "1_1_1"); got != codeOK {
			t.Errorf("after reset: code %d, want 0", got)
		}
	})

	t.Run("mistakes", func(t *testing.T) {
		tests := []struct {
			method, path, body string
			want               int
		}{
			{http.MethodPost, "/sim/stats", "", http.StatusMethodNotAllowed},
			{http.MethodGet, "/sim/reset", "", http.StatusMethodNotAllowed},
			{http.MethodDelete, "/sim/faults", "", http.StatusMethodNotAllowed},
			{http.MethodPost, "/sim/force", `{"Code":1}`, http.StatusBadRequest},
			{http.MethodPost, "/sim/drop", `{}`, http.StatusBadRequest},
			{http.MethodGet, "/sim/nothing", "", http.StatusNotFound},
		}
		for _, tt := range tests {
			rep := httpDo(t, tt.method, srv.URL+tt.path, tt.body)
			var e struct{ Error string }
			decodeJSON(t, rep, &e)
			if rep.status != tt.want || e.Error == "" {
				t.Errorf("%s %s: HTTP %d %s, want %d with an error", tt.method, tt.path, rep.status, rep.body, tt.want)
			}
		}
	})
}
