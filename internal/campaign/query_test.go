package campaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/tim"
)

// roamLimiter is the shared limiter of admin_getroammsg's own bucket.
func (e *env) roamLimiter() *limiter.Limiter {
	e.t.Helper()
	lim, err := limiter.New(limiter.Config{Redis: e.rdb, App: testApp, API: tim.APIRoam,
		InitialSpread: time.Millisecond, Horizon: 10 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { lim.Close() })
	return lim
}

func TestConversationPagesThroughAMultiPageHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{noFeeder: true})
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	since := now.Add(-48 * time.Hour)
	var want []string
	for i := range 260 {
		from, to := "alice", "bob"
		if i%3 == 0 {
			from, to = "bob", "alice"
		}
		at := now.Add(-time.Duration(i) * 15 * time.Minute) // 0 .. 65 h ago, several in a second nowhere
		m, err := e.sim.Send(ctx, from, to, at)
		if err != nil {
			t.Fatal(err)
		}
		if at.Before(since) {
			continue
		}
		if i%25 == 0 { // recalled already: skipped
			if resp, err := e.api.Withdraw(ctx, m.From, m.To, m.MsgKey); err != nil || resp.ErrorCode != 0 {
				t.Fatalf("recall beforehand: %v %d", err, resp.ErrorCode)
			}
			continue
		}
		want = append(want, m.From+","+m.To+","+m.MsgKey)
	}
	if _, err := e.sim.Send(ctx, "alice", "carol", now); err != nil { // another conversation
		t.Fatal(err)
	}
	calls := e.sim.Stats().Calls
	var got []string
	var rows []Row
	res, err := Conversation(ctx, ConversationConfig{API: e.api, Limiter: e.roamLimiter(), A: "alice", B: "bob", Since: since, Until: now, PageSize: 50},
		func(r Row) error {
			got = append(got, r.From+","+r.To+","+r.MsgKey)
			rows = append(rows, r)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("found %d messages, want %d:\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	if res.Found != len(want) || res.AlreadyRecalled != 8 || res.Pages < 4 {
		t.Fatalf("result %+v: want %d found, 8 already recalled, at least 4 pages of 50", res, len(want))
	}
	if n := e.sim.Stats().Calls - calls; n != int64(res.Pages) {
		t.Fatalf("the simulator answered %d calls for %d pages", n, res.Pages)
	}

	imp, err := ImportRows(ctx, ImportConfig{Redis: e.rdb, Name: "alice-bob", SDKAppID: testApp}, "admin_getroammsg: alice,bob", rows)
	if err != nil || imp.New != int64(len(want)) {
		t.Fatalf("import: %+v %v", imp, err)
	}
	if st := e.status("alice-bob"); st.Queued != int64(len(want)) || st.Format != string(FormatQuery) {
		t.Fatalf("status %+v", st)
	}
}

// fakeRoam answers pages from a script of codes, then a one-page history.
type fakeRoam struct {
	codes []int
	calls int
}

func (f *fakeRoam) GetRoamMsg(_ context.Context, req tim.RoamRequest) (tim.RoamPage, error) {
	f.calls++
	if len(f.codes) > 0 {
		c := f.codes[0]
		f.codes = f.codes[1:]
		if c == -1 {
			return tim.RoamPage{}, fmt.Errorf("tim: admin_getroammsg: %w: connection reset", tim.ErrTransport)
		}
		return tim.RoamPage{Response: tim.Response{ActionStatus: "FAIL", ErrorCode: c}}, nil
	}
	return tim.RoamPage{Response: tim.Response{ActionStatus: "OK"}, Complete: 1,
		MsgList: []tim.RoamMsg{{From: req.Operator, To: req.Peer, MsgKey: "1_2_3"}}}, nil
}

// countingLimiter counts SlowDowns of a real limiter.
type countingLimiter struct {
	*limiter.Limiter
	slowDowns int
}

func (c *countingLimiter) SlowDown(ctx context.Context, d time.Duration) error {
	c.slowDowns++
	return c.Limiter.SlowDown(ctx, d)
}

func TestConversationFollowsTheOutcomeTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name      string
		codes     []int
		wantErr   string // "" = the page is read
		calls     int
		slowDowns int
	}{
		{name: "transient 91000 then OK", codes: []int{91000, 70169}, calls: 3},
		{name: "no answer then OK", codes: []int{-1}, calls: 2},
		{name: "unknown code then OK", codes: []int{99999}, calls: 2},
		{name: "transient every time", codes: []int{91000, 91000, 91000}, wantErr: "3 attempts", calls: 3},
		{name: "rate limited: shared slow-down, no attempt used", codes: []int{60007, 60007, 60007}, calls: 4, slowDowns: 3},
		{name: "UserSig refused once: retried", codes: []int{70001}, calls: 2},
		{name: "UserSig refused twice: stop", codes: []int{70001, 60004}, wantErr: "twice in a row", calls: 2},
		{name: "configuration: stop with the fix", codes: []int{90009}, wantErr: "set TIM_ADMIN", calls: 1},
		{name: "account does not exist: stop", codes: []int{90003}, wantErr: "check the two accounts", calls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeRoam{codes: tc.codes}
			lim := &countingLimiter{Limiter: e.roamLimiter()}
			var n int
			_, err := Conversation(context.Background(), ConversationConfig{API: api, Limiter: lim, A: "a", B: "b",
				Since: time.Now().Add(-time.Hour), Attempts: 3, Backoff: time.Millisecond, SlowDown: time.Millisecond},
				func(Row) error { n++; return nil })
			switch {
			case tc.wantErr == "" && (err != nil || n != 1):
				t.Fatalf("err %v, %d rows; want the page read", err, n)
			case tc.wantErr != "" && (err == nil || !errors.Is(err, ErrRoam) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v; want ErrRoam saying %q", err, tc.wantErr)
			}
			if api.calls != tc.calls || lim.slowDowns != tc.slowDowns {
				t.Fatalf("%d calls, %d slow-downs; want %d and %d", api.calls, lim.slowDowns, tc.calls, tc.slowDowns)
			}
		})
	}
}

// startCapture starts a capture that indexes in e's Redis the callbacks
// of e's simulator, and returns its index.
func (e *env) startCapture() *capture.Index {
	e.t.Helper()
	ix, err := capture.NewIndex(capture.IndexConfig{Redis: e.rdb})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ix.Close() })
	const token = "wave-token-0123456789"
	cs, err := capture.New(capture.Config{Index: ix, Auth: capture.Auth{SDKAppIDs: []uint64{testApp}, Token: token}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(cs)
	e.t.Cleanup(srv.Close)
	e.sim.SetCallback(imsim.CallbackConfig{URL: srv.URL + capture.CallbackPath, Token: token})
	return ix
}

// TestSpamWaveCapturedQueriedAndRecalled runs the whole loop: the
// simulator sends a wave and posts its callbacks to a capture, the
// sender's messages in the window become a campaign, the workers recall
// every one of them and nothing else.
func TestSpamWaveCapturedQueriedAndRecalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{})
	ctx := context.Background()
	ix := e.startCapture()
	now := time.Now()
	var wave, others []imsim.SentMessage
	for i := range 120 {
		m, err := e.sim.Send(ctx, "spammer", fmt.Sprintf("user%d", i%17), now.Add(-time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		wave = append(wave, m)
		o, err := e.sim.Send(ctx, fmt.Sprintf("user%d", i%17), "spammer", now.Add(-time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, o)
	}
	var groupWave, groupOthers []imsim.SentGroupMessage
	for i, at := range []time.Duration{0, 90 * time.Minute, 7 * time.Hour} { // the last before the window
		m, err := e.sim.SendGroup(ctx, "spammer", fmt.Sprintf("@TGS#lobby%d", i%2), now.Add(-at))
		if err != nil {
			t.Fatal(err)
		}
		o, err := e.sim.SendGroup(ctx, "user1", "@TGS#lobby0", now.Add(-at))
		if err != nil {
			t.Fatal(err)
		}
		groupOthers = append(groupOthers, o)
		if at < 6*time.Hour {
			groupWave = append(groupWave, m)
		} else {
			groupOthers = append(groupOthers, m)
		}
	}
	rows, groups, err := SenderRows(ctx, ix, capture.Query{SDKAppID: testApp, From: "spammer", Since: now.Add(-6 * time.Hour), Until: now.Add(time.Second)})
	if err != nil || len(rows) != len(wave)+len(groupWave) || groups != len(groupWave) {
		t.Fatalf("query: %d rows, %d group, %v; want %d and %d", len(rows), groups, err, len(wave)+len(groupWave), len(groupWave))
	}
	if _, err := ImportRows(ctx, ImportConfig{Redis: e.rdb, Name: "wave", SDKAppID: testApp}, "capture: --sender spammer", rows); err != nil {
		t.Fatal(err)
	}
	st := e.waitState("wave", StateDone, 30*time.Second)
	if st.Recalled != int64(len(rows)) || st.Queued != int64(len(rows)) {
		t.Fatalf("status %+v: want all %d recalled", st, len(rows))
	}
	for _, m := range groupWave {
		if f := e.sim.GroupFate(m.GroupID, "", m.MsgSeq); !slices.Equal(f, []int{0}) {
			t.Fatalf("the spammer's group message %s/%d: fate %v, want [0]", m.GroupID, m.MsgSeq, f)
		}
	}
	for _, m := range groupOthers {
		if f := e.sim.GroupFate(m.GroupID, "", m.MsgSeq); f != nil {
			t.Fatalf("a group message outside the query was touched: %+v fate %v", m, f)
		}
	}
	for _, m := range wave {
		if f := e.sim.Fate(m.From, m.To, m.MsgKey); !slices.Equal(f, []int{0}) {
			t.Fatalf("wave message %s: fate %v, want [0]", m.MsgKey, f)
		}
	}
	for _, m := range others {
		if f := e.sim.Fate(m.From, m.To, m.MsgKey); f != nil {
			t.Fatalf("a message to the spammer was touched: %s fate %v", m.MsgKey, f)
		}
	}
}

// TestTopicMessageIsRecalledInItsTopic: a spammer's message in a topic of
// a community is captured with its TopicId and recalled in that topic; the
// community's own message with the same MsgSeq (each topic numbers its
// messages apart) is left alone.
func TestTopicMessageIsRecalledInItsTopic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startPipeline(pipelineOptions{})
	ix := e.startCapture()
	ctx, now := context.Background(), time.Now()
	const group, topic = "@TGS#_@TGS#cQVLVHIM62CJ", "@TGS#_@TGS#cQVLVHIM62CJ@TOPIC#_spam"
	other := e.sim.PostGroupMessage(group, "", now)
	spam, err := e.sim.SendTopic(ctx, "spammer", group, topic, now)
	if err != nil || spam.MsgSeq != other {
		t.Fatalf("SendTopic: %+v %v; want the MsgSeq %d of the community's message", spam, err, other)
	}
	rows, _, err := SenderRows(ctx, ix, capture.Query{SDKAppID: testApp, From: "spammer", Since: now.Add(-time.Hour)})
	if err != nil || len(rows) != 1 || rows[0].TopicID != topic {
		t.Fatalf("query: %+v %v; want the topic's message with its TopicId", rows, err)
	}
	if _, err := ImportRows(ctx, ImportConfig{Redis: e.rdb, Name: "topic-wave", SDKAppID: testApp}, "capture: --sender spammer", rows); err != nil {
		t.Fatal(err)
	}
	e.waitState("topic-wave", StateDone, 30*time.Second)
	if f, o := e.sim.GroupFate(group, topic, spam.MsgSeq), e.sim.GroupFate(group, "", other); !slices.Equal(f, []int{0}) || o != nil {
		t.Fatalf("the topic's message: fate %v, want [0]; the community's message of the same MsgSeq: fate %v, want untouched", f, o)
	}
}
