package tim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/imsim"
)

// newGroupSim returns the simulator, in process behind an HTTP server, and
// a Client of its app.
func newGroupSim(t *testing.T) (*imsim.Sim, *Client) {
	t.Helper()
	sim, err := imsim.New(imsim.Config{SDKAppID: testAppID, SecretKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, newTestClient(t, srv.URL, Config{})
}

func answered(seq uint64, code int) SeqResult {
	return SeqResult{MsgSeq: seq, RetCode: code, Answered: true}
}

// TestGroupRecallAgainstSimulator: the request is signed and shaped as
// Tencent wants it (the simulator checks the query, the UserSig and the
// body), and every seq comes back with its own RetCode.
func TestGroupRecallAgainstSimulator(t *testing.T) {
	sim, c := newGroupSim(t)
	ctx := context.Background()
	if err := sim.CreateGroup(imsim.GroupSpec{GroupID: "@TGS#2J4SZEAEL", Messages: 5}); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetGroupMessage("@TGS#2J4SZEAEL", "", 2, imsim.GroupMsgUnrecallable); err != nil {
		t.Fatal(err)
	}
	topicSeq := sim.PostGroupMessage("@TGS#2J4SZEAEL", "@TGS#2J4SZEAEL@TOPIC#_news", time.Now().Add(-30*24*time.Hour))

	tests := []struct {
		name     string
		group    string
		topic    string
		seqs     []uint64
		wantCode int
		want     []SeqResult
	}{
		{"per-seq codes under a call that succeeded", "@TGS#2J4SZEAEL", "", []uint64{1, 2, 99},
			0, []SeqResult{answered(1, 0), answered(2, 10032), answered(99, 10030)}},
		{"recalled again", "@TGS#2J4SZEAEL", "", []uint64{1, 3},
			0, []SeqResult{answered(1, 10030), answered(3, 0)}},
		{"topic past the window", "@TGS#2J4SZEAEL", "@TGS#2J4SZEAEL@TOPIC#_news", []uint64{topicSeq},
			0, []SeqResult{answered(topicSeq, 10031)}},
		{"unknown group: no seq answered", "@TGS#nope", "", []uint64{4, 5},
			10015, []SeqResult{{MsgSeq: 4}, {MsgSeq: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.GroupRecall(ctx, tt.group, tt.seqs, tt.topic)
			if err != nil {
				t.Fatalf("GroupRecall: %v", err)
			}
			if res.ErrorCode != tt.wantCode || !reflect.DeepEqual(res.Seqs, tt.want) {
				t.Errorf("got %d %+v, want %d %+v (%s)", res.ErrorCode, res.Seqs, tt.wantCode, tt.want, res.ErrorInfo)
			}
		})
	}
	if st := sim.GroupStats(); st.Calls != int64(len(tests)) || sim.Stats().Calls != 0 {
		t.Errorf("the simulator counted %d group calls and %d one-to-one calls, want %d and 0", st.Calls, sim.Stats().Calls, len(tests))
	}
}

// TestGroupRecallRefusesBadRequests: what Tencent would refuse is never sent.
func TestGroupRecallRefusesBadRequests(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{})
	eleven := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	for _, tt := range []struct {
		name  string
		group string
		seqs  []uint64
	}{
		{"no group", "", []uint64{1}},
		{"no seq", "g", nil},
		{"eleven seqs", "g", eleven},
		{"seq 0", "g", []uint64{1, 0}},
		{"seq twice", "g", []uint64{7, 8, 7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.GroupRecall(context.Background(), tt.group, tt.seqs, "")
			if !errors.Is(err, ErrBadRequest) {
				t.Errorf("err = %v, want ErrBadRequest", err)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests sent, want none", hits.Load())
	}
}

// TestGroupRecallRedactsDecodeErrors: a body that echoes the request URL
// in a RecallRetList that is not a list gives a *DecodeError without the
// UserSig or the secret key.
func TestGroupRecallRedactsDecodeErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig, _ := url.QueryUnescape(r.URL.Query().Get("usersig"))
		_, _ = fmt.Fprintf(w, `{"ActionStatus":"OK","ErrorCode":0,"RecallRetList":"%s %s %s"}`, sig, testKey, r.URL.String())
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{})
	res, err := c.GroupRecall(context.Background(), "g", []uint64{1}, "")
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrNotTencentResponse) {
		t.Fatalf("err = %v, want a *DecodeError of ErrNotTencentResponse", err)
	}
	if sig := currentSig(c); strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), testKey) {
		t.Errorf("error leaks a secret: %v", err)
	}
	if len(res.Seqs) != 1 || res.Seqs[0].Answered {
		t.Errorf("Seqs = %+v, want one unanswered", res.Seqs)
	}
}

// TestGroupAnswer pins how RecallRetList is read, entry by entry.
func TestGroupAnswer(t *testing.T) {
	ok := Response{ActionStatus: "OK"}
	seqs := []uint64{100, 101}
	none := []SeqResult{{MsgSeq: 100}, {MsgSeq: 101}}
	tests := []struct {
		name    string
		resp    Response
		body    string
		want    []SeqResult
		wantErr bool
	}{
		{"Tencent's sample", ok, `{"RecallRetList":[{"MsgSeq":100,"RetCode":10030},{"MsgSeq":101,"RetCode":0}]}`,
			[]SeqResult{answered(100, 10030), answered(101, 0)}, false},
		{"order of the list does not matter", ok, `{"RecallRetList":[{"MsgSeq":101,"RetCode":0},{"MsgSeq":100,"RetCode":0}]}`,
			[]SeqResult{answered(100, 0), answered(101, 0)}, false},
		{"the wrong SDK's field name answers nothing", ok, `{"Results":[{"MsgSeq":100,"RetCode":0},{"MsgSeq":101,"RetCode":0}]}`, none, false},
		{"no list", ok, `{}`, none, false},
		{"null list", ok, `{"RecallRetList":null}`, none, false},
		{"a seq missing from the list", ok, `{"RecallRetList":[{"MsgSeq":101,"RetCode":0}]}`,
			[]SeqResult{{MsgSeq: 100}, answered(101, 0)}, false},
		{"an entry without RetCode", ok, `{"RecallRetList":[{"MsgSeq":100},{"MsgSeq":101,"RetCode":null}]}`, none, false},
		{"an entry without MsgSeq", ok, `{"RecallRetList":[{"RetCode":0}]}`, none, false},
		{"codes and seqs as strings", ok, `{"RecallRetList":[{"MsgSeq":"100","RetCode":"10031"},{"MsgSeq":101,"RetCode":"0"}]}`,
			[]SeqResult{answered(100, 10031), answered(101, 0)}, false},
		{"a RetCode not an integer", ok, `{"RecallRetList":[{"MsgSeq":100,"RetCode":"zero"},{"MsgSeq":101,"RetCode":0.5}]}`, none, false},
		{"a seq not asked is ignored", ok, `{"RecallRetList":[{"MsgSeq":7,"RetCode":0},{"MsgSeq":100,"RetCode":10032}]}`,
			[]SeqResult{answered(100, 10032), {MsgSeq: 101}}, false},
		{"the same answer twice", ok, `{"RecallRetList":[{"MsgSeq":100,"RetCode":0},{"MsgSeq":100,"RetCode":0}]}`,
			[]SeqResult{answered(100, 0), {MsgSeq: 101}}, false},
		{"two answers for one seq", ok, `{"RecallRetList":[{"MsgSeq":100,"RetCode":0},{"MsgSeq":100,"RetCode":10030},{"MsgSeq":100,"RetCode":0}]}`, none, false},
		{"entries not objects", ok, `{"RecallRetList":[100,101]}`, none, false},
		{"list not a list", ok, `{"RecallRetList":{"MsgSeq":100,"RetCode":0}}`, none, true},
		{"a failed call answers no seq", Response{ActionStatus: "FAIL", ErrorCode: 10002}, `{"RecallRetList":[{"MsgSeq":100,"RetCode":0}]}`, none, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := groupAnswer(tt.resp, []byte(tt.body), seqs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(res.Seqs, tt.want) || res.Response != tt.resp {
				t.Errorf("got %+v %+v, want %+v", res.Response, res.Seqs, tt.want)
			}
		})
	}
}

// TestGroupRecallTransportError: no answer leaves every seq unanswered.
func TestGroupRecallTransportError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>502</html>")
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{})
	res, err := c.GroupRecall(context.Background(), "g", []uint64{3, 4}, "")
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadGateway {
		t.Fatalf("err = %v, want HTTP 502", err)
	}
	if !reflect.DeepEqual(res.Seqs, []SeqResult{{MsgSeq: 3}, {MsgSeq: 4}}) {
		t.Errorf("Seqs = %+v, want both unanswered", res.Seqs)
	}
}
