package imsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// RoamPath is the path of the history API the simulator serves.
const RoamPath = "/v4/openim/admin_getroammsg"

// DefaultRoamCap is admin_getroammsg's limit: 200 calls a second, its own.
const DefaultRoamCap = 200

// MaxRoamCnt is the most messages one history page holds.
const MaxRoamCnt = 100

// roamFlagRecalled marks a recalled message in a history page.
const roamFlagRecalled = 8

// SentMessage is a one-to-one message the simulator "sent" (Send).
type SentMessage struct {
	From, To  string
	MsgSeq    uint64
	MsgRandom uint64
	MsgTime   int64
	MsgKey    string
}

// SentGroupMessage is a group message the simulator "sent" (SendGroup,
// SendTopic).
type SentGroupMessage struct {
	From, GroupID string
	// TopicID is the topic of a community the message was sent to (""
	// for the group itself).
	TopicID string
	MsgSeq  uint64
	MsgTime int64
}

// CallbackConfig makes the simulator post Tencent's after-send callbacks
// for the messages it sends, as the Chat backend does once the callback
// URL is set in the console.
type CallbackConfig struct {
	// URL is the callback URL as set in the console, without the query
	// Tencent appends. Empty turns the callbacks off.
	URL string
	// Token, if set, signs each callback: RequestTime and
	// Sign = hex(sha256(Token + RequestTime)) in the URL.
	Token string
	// Client posts the callbacks. Default: a client with a 5 s timeout.
	Client *http.Client
}

// history is what the simulator sent, and the callbacks it posts.
type history struct {
	mu    sync.Mutex
	c2c   map[[2]string][]SentMessage // by unordered pair of accounts
	seq   uint64                      // the last one-to-one MsgSeq (Send); a group numbers its own
	cb    CallbackConfig
	meter *meter // admin_getroammsg's own rate
}

func newHistory(now time.Time) *history {
	return &history{c2c: map[[2]string][]SentMessage{}, meter: newMeter(DefaultRoamCap, DefaultWindow, now)}
}

func (h *history) reset(now time.Time) {
	h.mu.Lock()
	h.c2c = map[[2]string][]SentMessage{}
	h.mu.Unlock()
	h.meter.reset(now)
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// SetCallback sets (or, with an empty URL, clears) the callbacks posted
// for sent messages.
func (s *Sim) SetCallback(cfg CallbackConfig) {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	s.hist.mu.Lock()
	s.hist.cb = cfg
	s.hist.mu.Unlock()
}

// Send stores a one-to-one message from one account to another at the
// given time, as if a client had sent it: it shows in admin_getroammsg's
// history and can be recalled. With a callback set it then posts
// C2C.CallbackAfterSendMsg and returns the error of that post (the message
// is stored either way).
func (s *Sim) Send(ctx context.Context, from, to string, at time.Time) (SentMessage, error) {
	s.mu.Lock()
	rnd := s.rng.Uint32()
	s.mu.Unlock()
	h := s.hist
	h.mu.Lock()
	h.seq++
	m := SentMessage{From: from, To: to, MsgSeq: h.seq, MsgRandom: uint64(rnd), MsgTime: at.Unix()}
	m.MsgKey = fmt.Sprintf("%d_%d_%d", m.MsgSeq, m.MsgRandom, m.MsgTime)
	p := pair(from, to)
	h.c2c[p] = append(h.c2c[p], m)
	cb := h.cb
	h.mu.Unlock()
	body := map[string]any{
		"CallbackCommand": "C2C.CallbackAfterSendMsg", "From_Account": from, "To_Account": to,
		"MsgSeq": m.MsgSeq, "MsgRandom": m.MsgRandom, "MsgTime": m.MsgTime, "MsgKey": m.MsgKey,
		"OnlineOnlyFlag": 0, "SendMsgResult": 0, "ErrorInfo": "send msg succeed", "UnreadMsgNum": 1,
		"MsgBody":   []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "simulated message"}}},
		"EventTime": at.UnixMilli(),
	}
	return m, s.postCallback(ctx, cb, "C2C.CallbackAfterSendMsg", body)
}

// SendGroup "sends" a group message and, with a callback set, posts
// Group.CallbackAfterSendMsg. The message is stored for group_msg_recall
// (group.go), creating the group if needed; its MsgSeq is the next of the
// group's own sequence (PostGroupMessage), as in Tencent, where each group
// numbers its messages 1, 2, 3... apart from every other group and from
// one-to-one messages.
func (s *Sim) SendGroup(ctx context.Context, from, groupID string, at time.Time) (SentGroupMessage, error) {
	seq := s.PostGroupMessage(groupID, "", at)
	m := SentGroupMessage{From: from, GroupID: groupID, MsgSeq: seq, MsgTime: at.Unix()}
	s.hist.mu.Lock()
	cb := s.hist.cb
	s.hist.mu.Unlock()
	return m, s.postGroupCallback(ctx, cb, m, "Public", at)
}

// SendTopic "sends" a message to the topic topicID of the community
// groupID, as SendGroup does to a group: its MsgSeq is the next of the
// topic's own sequence (PostGroupMessage), so messages of two topics, or of
// a topic and the community itself, may share one; the callback carries
// the TopicId, as Tencent's does for a topic's message.
func (s *Sim) SendTopic(ctx context.Context, from, groupID, topicID string, at time.Time) (SentGroupMessage, error) {
	if topicID == "" {
		return SentGroupMessage{}, errors.New("imsim: SendTopic: TopicId is required (SendGroup sends to the group itself)")
	}
	seq := s.PostGroupMessage(groupID, topicID, at)
	m := SentGroupMessage{From: from, GroupID: groupID, TopicID: topicID, MsgSeq: seq, MsgTime: at.Unix()}
	s.hist.mu.Lock()
	cb := s.hist.cb
	s.hist.mu.Unlock()
	return m, s.postGroupCallback(ctx, cb, m, "Community", at)
}

// postGroupCallback posts Group.CallbackAfterSendMsg for m, with its
// TopicId when it was sent to a topic (absent otherwise, as from Tencent).
func (s *Sim) postGroupCallback(ctx context.Context, cb CallbackConfig, m SentGroupMessage, groupType string, at time.Time) error {
	body := map[string]any{
		"CallbackCommand": "Group.CallbackAfterSendMsg", "GroupId": m.GroupID, "Type": groupType,
		"From_Account": m.From, "Operator_Account": m.From, "Random": 1, "MsgSeq": m.MsgSeq, "MsgTime": m.MsgTime,
		"OnlineOnlyFlag": 0, "EventTime": at.UnixMilli(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "simulated message"}}},
	}
	if m.TopicID != "" {
		body["TopicId"] = m.TopicID
	}
	return s.postCallback(ctx, cb, "Group.CallbackAfterSendMsg", body)
}

// ErrCallback wraps a callback that was not answered OK.
var ErrCallback = errors.New("imsim: the callback was not answered OK")

func (s *Sim) postCallback(ctx context.Context, cb CallbackConfig, command string, body any) error {
	if cb.URL == "" {
		return nil
	}
	q := url.Values{}
	q.Set("SdkAppid", strconv.FormatUint(s.cfg.SDKAppID, 10))
	q.Set("CallbackCommand", command)
	q.Set("contenttype", "json")
	q.Set("ClientIP", "203.0.113.1")
	q.Set("OptPlatform", "RESTAPI")
	if cb.Token != "" {
		rt := strconv.FormatInt(s.cfg.Now().Unix(), 10)
		sum := sha256.Sum256([]byte(cb.Token + rt))
		q.Set("RequestTime", rt)
		q.Set("Sign", hex.EncodeToString(sum[:]))
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.URL+"?"+q.Encode(), bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("imsim: callback %s: %w", command, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cb.Client.Do(req)
	if err != nil {
		return fmt.Errorf("imsim: callback %s: %w", command, err)
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var a struct {
		ActionStatus string
		ErrorCode    int
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(ans, &a) != nil || a.ActionStatus != "OK" || a.ErrorCode != 0 {
		return fmt.Errorf("%w: %s answered HTTP %d %q", ErrCallback, command, resp.StatusCode, bytes.TrimSpace(ans))
	}
	return nil
}

// roamRequest is admin_getroammsg's body.
type roamRequest struct {
	Operator   string `json:"Operator_Account"`
	Peer       string `json:"Peer_Account"`
	MaxCnt     int    `json:"MaxCnt"`
	MinTime    int64  `json:"MinTime"`
	MaxTime    int64  `json:"MaxTime"`
	LastMsgKey string `json:"LastMsgKey"`
}

type roamMsg struct {
	From         string `json:"From_Account"`
	To           string `json:"To_Account"`
	MsgSeq       uint64 `json:"MsgSeq"`
	MsgRandom    uint64 `json:"MsgRandom"`
	MsgTimeStamp int64  `json:"MsgTimeStamp"`
	MsgFlagBits  int    `json:"MsgFlagBits"`
	MsgKey       string `json:"MsgKey"`
	MsgBody      []any  `json:"MsgBody"`
}

type roamAnswer struct {
	ActionStatus string
	ErrorInfo    string
	ErrorCode    int
	RequestId    string // Tencent's spelling
	Complete     int
	MsgCnt       int
	LastMsgTime  int64
	LastMsgKey   string
	MsgList      []roamMsg
}

// serveRoam serves admin_getroammsg: the same URL checks as the recall
// API (steps 4 to 6 of the package comment), a rate limit of its own
// (DefaultRoamCap a second), then one page of the pair's history, newest
// first: messages with MinTime <= MsgTime <= MaxTime, after LastMsgKey
// when given, at most MaxCnt (1..MaxRoamCnt; 90001 otherwise), and
// Complete 1 when no older one is left. Recalled messages are listed with
// MsgFlagBits 8.
func (s *Sim) serveRoam(w http.ResponseWriter, r *http.Request) {
	data, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	fail := func(code int, detail string) {
		s.counters.answered(code)
		writeJSON(w, http.StatusOK, roamAnswer{ActionStatus: "FAIL", ErrorCode: code, ErrorInfo: infoFor(code, detail),
			RequestId: fmt.Sprintf("Id-sim-%d", s.reqSeq.Add(1))})
	}
	if r.Method != http.MethodPost {
		fail(codeHTTPParse, "the method must be POST, not "+r.Method)
		return
	}
	if code, detail := s.checkQuery(r.URL.RawQuery); code != codeOK {
		fail(code, detail)
		return
	}
	if !s.hist.meter.arrive(s.cfg.Now, stamp{}) {
		fail(codeRateLimited, "")
		return
	}
	var req roamRequest
	if readErr != nil || json.Unmarshal(data, &req) != nil {
		fail(codeBadJSON, "")
		return
	}
	switch {
	case req.Operator == "":
		fail(codeBadFromAccount, "Operator_Account is missing")
		return
	case req.Peer == "":
		fail(codeBadToAccount, "Peer_Account is missing")
		return
	case req.MaxCnt < 1 || req.MaxCnt > MaxRoamCnt:
		fail(codeBadJSON, fmt.Sprintf("MaxCnt must be 1..%d", MaxRoamCnt))
		return
	}
	s.hist.mu.Lock()
	msgs := slices.Clone(s.hist.c2c[pair(req.Operator, req.Peer)])
	s.hist.mu.Unlock()
	// Newest first; MsgSeq breaks ties of one second.
	slices.SortFunc(msgs, func(a, b SentMessage) int {
		if a.MsgTime != b.MsgTime {
			return int(b.MsgTime - a.MsgTime)
		}
		return int(b.MsgSeq) - int(a.MsgSeq)
	})
	ans := roamAnswer{ActionStatus: "OK", RequestId: fmt.Sprintf("Id-sim-%d", s.reqSeq.Add(1)), Complete: 1, MsgList: []roamMsg{}}
	after := req.LastMsgKey == ""
	for _, m := range msgs {
		if m.MsgTime < req.MinTime || m.MsgTime > req.MaxTime {
			continue
		}
		if !after {
			after = m.MsgKey == req.LastMsgKey
			continue
		}
		if len(ans.MsgList) == req.MaxCnt {
			ans.Complete = 0
			break
		}
		flags := 0
		if s.store.isRecalled(m.From, m.To, m.MsgKey) {
			flags = roamFlagRecalled
		}
		ans.MsgList = append(ans.MsgList, roamMsg{From: m.From, To: m.To, MsgSeq: m.MsgSeq, MsgRandom: m.MsgRandom,
			MsgTimeStamp: m.MsgTime, MsgFlagBits: flags, MsgKey: m.MsgKey,
			MsgBody: []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "simulated message"}}}})
		ans.LastMsgTime, ans.LastMsgKey = m.MsgTime, m.MsgKey
	}
	ans.MsgCnt = len(ans.MsgList)
	s.counters.answered(codeOK)
	writeJSON(w, http.StatusOK, ans)
}

// isRecalled reports whether the message was recalled.
func (st *store) isRecalled(from, to, msgKey string) bool {
	id := msgID(from, to, msgKey)
	sh := st.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[id].state == msgRecalled
}
