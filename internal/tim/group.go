package tim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// pathGroupRecall is the path of group_msg_recall ("Recalling Group
// Messages").
const pathGroupRecall = "/v4/group_open_http_svc/" + APIGroupRecall

// MaxGroupRecallSeqs is the most MsgSeqs one group_msg_recall call takes.
const MaxGroupRecallSeqs = 10

// ErrBadRequest is wrapped by an error for a request the Client refuses
// to send because Tencent would refuse it.
var ErrBadRequest = errors.New("tim: bad request")

// SeqResult is Tencent's answer for one MsgSeq of a group recall.
type SeqResult struct {
	MsgSeq uint64
	// RetCode is the seq's RetCode in RecallRetList (0: recalled). It means
	// nothing unless Answered.
	RetCode int
	// Answered is true only when the call succeeded (ErrorCode 0) and
	// RecallRetList holds a RetCode for this MsgSeq, one code however many
	// times it is listed. A seq not Answered was not recalled as far as
	// anyone can tell: not a success.
	Answered bool
}

// GroupRecallResponse is group_msg_recall's answer: the call's Response,
// and one SeqResult per MsgSeq asked, in the order asked.
type GroupRecallResponse struct {
	Response
	Seqs []SeqResult
}

// groupRecallRequest is the body of group_msg_recall.
type groupRecallRequest struct {
	GroupID    string       `json:"GroupId"`
	MsgSeqList []groupSeqIn `json:"MsgSeqList"`
	TopicID    string       `json:"TopicId,omitempty"`
}

type groupSeqIn struct {
	MsgSeq uint64 `json:"MsgSeq"`
}

// GroupRecall recalls the messages seqs (1 to MaxGroupRecallSeqs distinct
// MsgSeqs, each > 0) of the group groupID, or of its topic topicID when
// that is not empty, with group_msg_recall: POST
// {base}/v4/group_open_http_svc/group_msg_recall with the query string of
// Withdraw and the JSON body {"GroupId", "MsgSeqList": [{"MsgSeq"}...],
// "TopicId"}.
//
// The call's answer is in the Response, and each seq's in Seqs, read from
// RecallRetList's RetCode (Tencent answers ErrorCode 0 for a call in which
// some seqs failed): act on each seq by its own result. A seq RecallRetList
// does not answer, or answers with two different codes, is not Answered.
// When the call fails (ErrorCode not 0) no seq is Answered.
//
// The errors are Withdraw's, all redacted, and, with no request sent, one
// wrapping ErrBadRequest for seqs that are empty, more than
// MaxGroupRecallSeqs, 0 or repeated, or an empty groupID. A RecallRetList
// that is there but not a list is a *DecodeError. It invalidates a refused
// UserSig as Withdraw does, and does not retry.
func (c *Client) GroupRecall(ctx context.Context, groupID string, seqs []uint64, topicID string) (GroupRecallResponse, error) {
	const op = "tim: group_msg_recall"
	if err := checkGroupRecall(groupID, seqs); err != nil {
		return GroupRecallResponse{}, fmt.Errorf("%s: %w: %s", op, ErrBadRequest, err)
	}
	req := groupRecallRequest{GroupID: groupID, TopicID: topicID, MsgSeqList: make([]groupSeqIn, len(seqs))}
	for i, s := range seqs {
		req.MsgSeqList[i].MsgSeq = s
	}
	body, err := json.Marshal(req)
	if err != nil {
		return GroupRecallResponse{}, fmt.Errorf("%s: encode request: %w", op, err)
	}
	var raw json.RawMessage // the whole body, when the call succeeded
	resp, sig, err := c.callInto(ctx, op, pathGroupRecall, body, &raw)
	if err != nil {
		return GroupRecallResponse{Response: resp, Seqs: unanswered(seqs)}, err
	}
	c.refusedSig(ctx, resp.ErrorCode, sig)
	res, err := groupAnswer(resp, raw, seqs)
	if err != nil {
		return res, fmt.Errorf("%s: %w", op, &DecodeError{Body: c.snippet(raw), Err: err})
	}
	return res, nil
}

// checkGroupRecall says what Tencent would refuse in a request.
func checkGroupRecall(groupID string, seqs []uint64) error {
	switch {
	case groupID == "":
		return errors.New("GroupId is empty")
	case len(seqs) == 0:
		return errors.New("no MsgSeq: give 1 to " + strconv.Itoa(MaxGroupRecallSeqs))
	case len(seqs) > MaxGroupRecallSeqs:
		return fmt.Errorf("%d MsgSeqs: give 1 to %d a call", len(seqs), MaxGroupRecallSeqs)
	}
	seen := make(map[uint64]bool, len(seqs))
	for _, s := range seqs {
		if s == 0 {
			return errors.New("MsgSeq 0: a group's MsgSeqs start at 1")
		}
		if seen[s] {
			return fmt.Errorf("MsgSeq %d given twice: give each once", s)
		}
		seen[s] = true
	}
	return nil
}

func unanswered(seqs []uint64) []SeqResult {
	out := make([]SeqResult, len(seqs))
	for i, s := range seqs {
		out[i] = SeqResult{MsgSeq: s}
	}
	return out
}

// groupAnswer reads the per-seq results of a decoded answer: body is the
// whole answer when resp.ErrorCode is 0 (nothing is read otherwise). It
// reads RecallRetList exactly (not, as one widely used SDK does, a field
// of another name that is never there, which reads every seq as
// recalled), leniently per entry: an entry whose MsgSeq or RetCode cannot
// be read answers nothing, and a seq given two different RetCodes is not
// answered. It returns an error only when RecallRetList is there and not
// a JSON array, with the seqs unanswered.
func groupAnswer(resp Response, body []byte, seqs []uint64) (GroupRecallResponse, error) {
	res := GroupRecallResponse{Response: resp, Seqs: unanswered(seqs)}
	if resp.ErrorCode != 0 || len(body) == 0 {
		return res, nil
	}
	var w struct{ RecallRetList json.RawMessage }
	if err := json.Unmarshal(body, &w); err != nil {
		return res, err
	}
	if s := strings.TrimSpace(string(w.RecallRetList)); s == "" || s == "null" {
		return res, nil
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(w.RecallRetList, &list); err != nil {
		var items []json.RawMessage // an array of things other than objects
		if json.Unmarshal(w.RecallRetList, &items) != nil {
			return res, fmt.Errorf("%w: RecallRetList is not a list", ErrNotTencentResponse)
		}
		return res, nil
	}
	type answer struct {
		code     int
		conflict bool // listed with two different codes
	}
	answers := make(map[uint64]answer, len(list))
	for _, e := range list {
		seq, ok := decodeSeq(e["MsgSeq"])
		code, present, err := decodeCode(e["RetCode"])
		if !ok || !present || err != nil {
			continue
		}
		prev, seen := answers[seq]
		answers[seq] = answer{code: code, conflict: seen && (prev.conflict || prev.code != code)}
	}
	for i := range res.Seqs {
		if a, ok := answers[res.Seqs[i].MsgSeq]; ok && !a.conflict {
			res.Seqs[i].RetCode, res.Seqs[i].Answered = a.code, true
		}
	}
	return res, nil
}

// decodeSeq decodes a MsgSeq: a JSON integer > 0 or a string of its digits.
func decodeSeq(raw json.RawMessage) (uint64, bool) {
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) && json.Unmarshal(raw, &s) != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0
}
