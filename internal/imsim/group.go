package imsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/recallq/recallq/internal/sleep"
)

// GroupRecallPath is the path of the group message recall API the
// simulator serves, Tencent's "Recalling Group Messages".
const GroupRecallPath = groupServicePrefix + "group_msg_recall"

// groupServicePrefix starts the paths of Tencent's group service; the
// simulator answers 10003 (no such command) to any other path under it.
const groupServicePrefix = "/v4/group_open_http_svc/"

// MaxGroupRecallSeqs is the most MsgSeqs one group_msg_recall call takes.
const MaxGroupRecallSeqs = 10

// groupRequest is group_msg_recall's body as far as it parsed.
type groupRequest struct {
	groupID, topicID string
	seqs             []uint64
	bad              string // why the body is refused (10004), "" when it is not
	at               stamp  // when the call was read and its latency (meter.arrive)
}

// parseGroupBody parses a group_msg_recall body strictly: a JSON object
// whose field names match exactly (unknown fields are ignored), GroupId a
// non-empty string, TopicId a string or absent, MsgSeqList an array of 1
// to MaxGroupRecallSeqs objects each with a MsgSeq that is a positive
// integer. The same seq may appear twice; each is answered in turn.
func parseGroupBody(data []byte) groupRequest {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return groupRequest{bad: "the body is not a JSON object"}
	}
	var req groupRequest
	if raw, ok := m["GroupId"]; !ok || json.Unmarshal(raw, &req.groupID) != nil || req.groupID == "" {
		return groupRequest{bad: "GroupId must be a non-empty string"}
	}
	if raw, ok := m["TopicId"]; ok && json.Unmarshal(raw, &req.topicID) != nil {
		return groupRequest{bad: "TopicId must be a string"}
	}
	var list []json.RawMessage
	if raw, ok := m["MsgSeqList"]; !ok || json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return groupRequest{bad: "MsgSeqList must be a non-empty array"}
	}
	if len(list) > MaxGroupRecallSeqs {
		return groupRequest{bad: fmt.Sprintf("MsgSeqList has %d items, at most %d are allowed", len(list), MaxGroupRecallSeqs)}
	}
	for i, item := range list {
		var e map[string]json.RawMessage
		if json.Unmarshal(item, &e) != nil || e == nil {
			return groupRequest{bad: fmt.Sprintf("MsgSeqList[%d] is not an object", i)}
		}
		seq, err := strconv.ParseUint(string(bytes.TrimSpace(e["MsgSeq"])), 10, 64)
		if err != nil || seq == 0 {
			return groupRequest{bad: fmt.Sprintf("MsgSeqList[%d].MsgSeq must be a positive integer", i)}
		}
		req.seqs = append(req.seqs, seq)
	}
	return req
}

// groupRet is one element of RecallRetList.
type groupRet struct {
	MsgSeq  uint64
	RetCode int
}

// groupResult is group_msg_recall's JSON answer.
type groupResult struct {
	ActionStatus  string
	ErrorInfo     string
	ErrorCode     int
	RequestId     string     // Tencent's spelling
	RecallRetList []groupRet `json:",omitempty"`
}

// serveGroup serves the group service's paths: group_msg_recall at
// GroupRecallPath, 10003 elsewhere. Steps 1 to 3 and 4 to 8 of the package
// comment are the one-to-one API's (the rate limit is this API's own, Cap
// calls per Window, answering 10006, and a non-admin identifier answers
// 10007 instead of 90009); then:
//
//  9. Body (parseGroupBody) refused: 10004.
//  10. A ForceGroup rule for the GroupId: its code.
//  11. GroupId never created (CreateGroup, PostGroupMessage, SendGroup):
//     10015; dismissed: 10010.
//  12. FailRate hit: 10002, nothing recalled.
//  13. Otherwise ErrorCode 0 and one RecallRetList entry per seq, in the
//     request's order: a ForceGroupSeq rule's code (the store untouched);
//     the app's recall disabled: 10041; the group's type forbids recall:
//     10033; no such message in the group (or the TopicId's topic): 10030;
//     recalled before: GroupSettings.RecalledAgain (10030 by default);
//     unrecallable: 10032; sent longer than GroupSettings.Window ago:
//     10031; otherwise 0 and the message is recalled.
//
// Faults.AnswerDelay then holds the answer back as for the other API. Every
// answer to a request whose body parsed is appended to the fate of each
// seq it named: the seq's RetCode, or the call's ErrorCode when it failed.
func (s *Sim) serveGroup(w http.ResponseWriter, r *http.Request) {
	g := s.groups
	ctx := r.Context()
	data, readErr, f, at, goOn := s.prelude(w, r, g.counters) // request.go
	if !goOn {
		return
	}
	req := groupRequest{bad: "the body could not be read"}
	if readErr == nil {
		req = parseGroupBody(data)
	}
	req.at = at
	res := groupResult{ActionStatus: "OK", RequestId: fmt.Sprintf("Id-sim-%d", s.reqSeq.Add(1))}
	code, detail := s.decideGroup(r, req, &res)
	if code != codeOK {
		res.ActionStatus, res.ErrorCode, res.ErrorInfo = "FAIL", code, infoFor(code, detail)
	}
	g.counters.answered(code)
	if f.AnswerDelay > 0 && sleep.For(ctx, f.AnswerDelay) != nil {
		s.log.DebugContext(ctx, "imsim: client went away before the slow answer", "answer_delay", f.AnswerDelay, "error_code", code)
	}
	writeJSON(w, http.StatusOK, res)
	// Never the URL: it carries the UserSig.
	s.log.DebugContext(ctx, "imsim: answered", "method", r.Method, "path", r.URL.Path, "error_code", code,
		"group_id", req.groupID, "topic_id", req.topicID, "msg_seqs", len(req.seqs))
}

// decideGroup runs serveGroup's checks, fills res.RecallRetList when the
// call succeeds, records the fates, and returns the call's code.
func (s *Sim) decideGroup(r *http.Request, req groupRequest, res *groupResult) (int, string) {
	g := s.groups
	code, detail := s.checkGroupCall(r, req)
	if req.bad != "" || r.URL.Path != GroupRecallPath {
		return code, detail // names no seq of this API
	}
	now := s.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if code == codeOK {
		switch gr := g.group(req.groupID, false); {
		case gr == nil:
			code = codeGroupBadID
		case gr.dismissed:
			code = codeGroupGone
		case s.roll():
			code = codeGroupInternal
		}
	}
	for _, seq := range req.seqs {
		k := seqKey{req.groupID, req.topicID, seq}
		ret := code
		if code == codeOK {
			ret = g.recallSeq(k, now)
			res.RecallRetList = append(res.RecallRetList, groupRet{MsgSeq: seq, RetCode: ret})
			g.byRet[ret]++
			g.seqs++
		}
		g.fates[k] = append(g.fates[k], int32(ret))
	}
	return code, detail
}

// checkGroupCall runs the checks of serveGroup before the store: steps 3
// to 10. It takes no lock of the group store but the force rules'.
func (s *Sim) checkGroupCall(r *http.Request, req groupRequest) (int, string) {
	g := s.groups
	switch {
	case r.Method != http.MethodPost:
		return codeHTTPParse, "the method must be POST, not " + r.Method
	case r.URL.Path != GroupRecallPath:
		return codeGroupBadCommand, "no command " + strconv.Quote(r.URL.Path)
	}
	code, detail := s.gate(r, g.meter, codeGroupTooFrequent, req.at) // request.go
	switch {
	case code == codeNotAdmin:
		return codeGroupNoPermission, "the identifier is not an app admin"
	case code != codeOK:
		return code, detail
	case req.bad != "":
		return codeGroupBadParam, req.bad
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if code, ok := takeRule(g.callForce, req.groupID); ok {
		return code, "forced"
	}
	return codeOK, ""
}

// recallSeq decides one seq of a call that passed every call-level check.
// g.mu is held.
func (g *groupStore) recallSeq(k seqKey, now time.Time) int {
	if code, ok := takeRule(g.seqForce, k); ok {
		return code
	}
	gr := g.group(k.group, false)
	switch {
	case g.settings.RecallDisabled:
		return codeGroupRecallDisabled
	case gr.typeForbidsRecall:
		return codeGroupTypeNoRecall
	}
	m := gr.conv(k.topic).msg(k.seq, true)
	switch m.state {
	case GroupMsgGone:
		return codeGroupMsgNotFound
	case GroupMsgRecalled:
		return g.settings.RecalledAgain.code()
	case GroupMsgUnrecallable:
		return codeGroupNotRecallable
	}
	if now.Sub(m.sentAt) > g.settings.window() {
		return codeGroupPastWindow
	}
	m.state = GroupMsgRecalled
	return codeOK
}

// takeRule returns the code of rules[k], if any, using up one call of it.
// The caller holds the lock that guards rules.
func takeRule[K comparable](rules map[K]*forceRule, k K) (int, bool) {
	r, ok := rules[k]
	if !ok {
		return 0, false
	}
	if r.left > 0 {
		r.left--
		if r.left == 0 {
			delete(rules, k)
		}
	}
	return r.code, true
}

// ErrNoGroup is returned for a group the simulator does not have.
var ErrNoGroup = errors.New("imsim: no such group")

// CreateGroup creates (or replaces, with all its messages) the group spec
// describes. It returns an error when GroupID is empty.
func (s *Sim) CreateGroup(spec GroupSpec) error {
	if spec.GroupID == "" {
		return errors.New("imsim: CreateGroup: GroupId is required")
	}
	if spec.SentAt.IsZero() {
		spec.SentAt = s.cfg.Now()
	}
	g := s.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.groups, spec.GroupID)
	gr := g.group(spec.GroupID, true)
	gr.typeForbidsRecall = spec.TypeForbidsRecall
	c := gr.conv("")
	c.bulk, c.bulkAt, c.next = spec.Messages, spec.SentAt, spec.Messages
	return nil
}

// PostGroupMessage stores a message sent at at to the group (creating the
// group if needed) or to one of its topics when topicID is not empty, and
// returns its MsgSeq, the next of that group's (or topic's) sequence.
func (s *Sim) PostGroupMessage(groupID, topicID string, at time.Time) uint64 {
	g := s.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.group(groupID, true).conv(topicID)
	c.next++
	c.msgs[c.next] = &groupMsg{state: GroupMsgPresent, sentAt: at}
	return c.next
}

// SetGroupMessage sets the state of one message of a group (or of its
// topic topicID); GroupMsgPresent makes a message exist, sent now. It
// returns ErrNoGroup for a group never created.
func (s *Sim) SetGroupMessage(groupID, topicID string, seq uint64, st GroupMsgState) error {
	return s.groups.existing(groupID, func(gr *simGroup) {
		m := gr.conv(topicID).msg(seq, true)
		if st == GroupMsgPresent && m.state != GroupMsgPresent {
			m.sentAt = s.cfg.Now()
		}
		m.state = st
	})
}

// DismissGroup dismisses the group: calls naming it answer 10010. It
// returns ErrNoGroup for a group never created.
func (s *Sim) DismissGroup(groupID string) error {
	return s.groups.existing(groupID, func(gr *simGroup) { gr.dismissed = true })
}

// existing runs change on the group under the store's lock, or returns
// ErrNoGroup when there is no such group.
func (g *groupStore) existing(groupID string, change func(*simGroup)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr := g.group(groupID, false)
	if gr == nil {
		return fmt.Errorf("%w: %q", ErrNoGroup, groupID)
	}
	change(gr)
	return nil
}

// ForceGroup answers code as the ErrorCode of the next times calls naming
// groupID (every such call when times <= 0) that pass the checks up to
// the body's, whether or not the group exists; no seq is touched. A later
// rule for the group replaces it; Reset clears all.
func (s *Sim) ForceGroup(groupID string, code, times int) {
	g := s.groups
	g.mu.Lock()
	g.callForce[groupID] = &forceRule{code: code, left: max(times, 0)}
	g.mu.Unlock()
}

// ForceGroupSeq answers code as the RetCode of one seq of a group (of its
// topic topicID when not empty) in the next times calls that reach it
// (every call when times <= 0); the message is not touched.
func (s *Sim) ForceGroupSeq(groupID, topicID string, seq uint64, code, times int) {
	g := s.groups
	g.mu.Lock()
	g.seqForce[seqKey{groupID, topicID, seq}] = &forceRule{code: code, left: max(times, 0)}
	g.mu.Unlock()
}

// SetGroupSettings replaces the group recall settings.
func (s *Sim) SetGroupSettings(gs GroupSettings) {
	g := s.groups
	g.mu.Lock()
	g.settings = gs
	g.mu.Unlock()
}

// GroupSettings returns the group recall settings in force.
func (s *Sim) GroupSettings() GroupSettings {
	g := s.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.settings
}

// GroupFate returns every code answered for one message of a group (of its
// topic topicID when not empty), in order (nil if none).
func (s *Sim) GroupFate(groupID, topicID string, seq uint64) []int {
	g := s.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	fate := g.fates[seqKey{groupID, topicID, seq}]
	if len(fate) == 0 {
		return nil
	}
	out := make([]int, len(fate))
	for i, c := range fate {
		out[i] = int(c)
	}
	return out
}

// GroupMessageState returns the state of one message of a group, as a
// recall would find it (GroupMsgGone for a group or seq that does not exist).
func (s *Sim) GroupMessageState(groupID, topicID string, seq uint64) GroupMsgState {
	g := s.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	gr := g.group(groupID, false)
	if gr == nil {
		return GroupMsgGone
	}
	c, ok := gr.convs[topicID]
	if !ok {
		return GroupMsgGone
	}
	if m := c.msg(seq, false); m != nil {
		return m.state
	}
	if seq >= 1 && seq <= c.bulk {
		return GroupMsgPresent
	}
	return GroupMsgGone
}

// GroupStats returns a snapshot of group_msg_recall's statistics.
func (s *Sim) GroupStats() GroupStats { return s.groups.stats(s.cfg.Now()) }
