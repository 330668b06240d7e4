package intake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/strictjson"
	"github.com/recallq/recallq/tasks"
)

// GroupRecallRequest is the body of POST /v1/group-recalls: messages of
// one group (or of one of its topics) by MsgSeq, and optionally why, by
// Tencent's names. Each MsgSeq becomes one task, as enqueue.GroupRecalls
// queues them; the worker recalls up to ten waiting seqs of a group in one
// call. Who asked is the token's name; the app is the request's
// (?sdkappid=, see requestApp).
type GroupRecallRequest struct {
	GroupID string   `json:"GroupId"`
	TopicID string   `json:"TopicId,omitempty"`
	MsgSeq  []uint64 `json:"MsgSeq"`
	Reason  string   `json:"reason,omitempty"`
}

// groupFields are the fields of a group recall request, by exact name.
var groupFields = []string{"GroupId", "TopicId", "MsgSeq", "reason"}

const groupHint = `send {"GroupId":"...","MsgSeq":[1,2,3],"TopicId":"... (optional)","reason":"..."}`

// postGroupRecalls queues the recall of messages of one group, one task
// per MsgSeq, all or nothing: a request with any bad field or MsgSeq
// queues none and lists every bad one. It answers as postRecalls does (202
// with a BatchResponse, one Queued per MsgSeq in order; 400, 403, 413,
// 422, 503); a MsgSeq given twice is queued once and its later rows say
// already_queued.
func (s *Server) postGroupRecalls(w http.ResponseWriter, r *http.Request) {
	app, ok := s.requestApp(w, r)
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	recalls, derr := s.decodeGroup(body, app, requester(r.Context()))
	if derr != nil {
		writeError(w, derr.status, derr.msg, derr.problems)
		return
	}
	results, ok := s.enqueueEach(w, r, taskIDs(recalls), func(ctx context.Context, i int) (enqueue.Result, error) {
		return s.queue.GroupRecall(ctx, recalls[i])
	})
	if ok {
		writeJSON(w, http.StatusAccepted, BatchResponse{Recalls: results})
	}
}

// decodeGroup parses a body into group recalls of app, one per MsgSeq,
// validated. It parses strictly, as decode does; a bad request lists every
// problem: each unknown or mistyped field, the first bad value of the
// group's fields, and every bad MsgSeq (its field "MsgSeq[3]", its row 3).
func (s *Server) decodeGroup(body []byte, app uint64, requestedBy string) ([]tasks.GroupRecall, *decodeError) {
	const what = "the group recall is invalid"
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, &decodeError{status: http.StatusBadRequest, msg: "the body is empty: " + groupHint}
	}
	obj, err := strictjson.Object(body)
	if err != nil {
		p, derr := bodyProblem(err, groupHint, "MsgSeq")
		if derr != nil {
			return nil, derr
		}
		return nil, refused(what, []Problem{*p})
	}
	var problems []Problem
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(groupFields, k) {
			reason := "is not a field of a group recall: use GroupId, MsgSeq, TopicId and reason (names are case-sensitive)"
			if want := strictjson.Miscased(k, groupFields); want != "" {
				reason = "is not a field of a group recall: names are case-sensitive: write " + want
			}
			problems = append(problems, Problem{Field: memberName(k), malformed: true, Reason: reason})
		}
	}
	g := tasks.GroupRecall{SDKAppID: app, RequestedBy: requestedBy}
	typed := true
	for _, f := range []struct {
		name string
		dst  *string
	}{{"GroupId", &g.GroupID}, {"TopicId", &g.TopicID}, {"reason", &g.Reason}} {
		raw, ok := obj[f.name]
		if !ok {
			continue
		}
		v, err := strictjson.String(raw)
		if err != nil {
			problems = append(problems, Problem{Field: f.name, malformed: true, Reason: "must be a string"})
			typed = false
			continue
		}
		*f.dst = v
	}
	if typed {
		// Every field but MsgSeq, checked once for all the seqs.
		one := g
		one.MsgSeq = 1
		if err := one.Validate(); err != nil {
			problems = append(problems, fieldProblem(err))
		}
	}
	seqs, seqProblems := s.msgSeqs(obj)
	problems = append(problems, seqProblems...)
	if len(problems) > 0 {
		return nil, refused(what, problems)
	}
	out := make([]tasks.GroupRecall, len(seqs))
	for i, seq := range seqs {
		out[i] = g
		out[i].MsgSeq = seq
	}
	return out, nil
}

// fieldProblem is the problem of a validation error, by the field its
// *tasks.FieldError names.
func fieldProblem(err error) Problem {
	p := Problem{Reason: err.Error()}
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		p.Field, p.Reason = fe.Field, fe.Reason
	}
	return p
}

// msgSeqs reads the MsgSeq member of obj: an array of 1 to MaxBatch
// positive integers. It returns them, or every problem.
func (s *Server) msgSeqs(obj map[string]jsontext.Value) ([]uint64, []Problem) {
	raw, ok := obj["MsgSeq"]
	if !ok {
		return nil, []Problem{{Field: "MsgSeq",
			Reason: "is missing: give the MsgSeq of each message to recall, as an array such as [101,102]"}}
	}
	rows, err := strictjson.Array(raw)
	if err != nil {
		return nil, []Problem{{Field: "MsgSeq", malformed: true,
			Reason: "must be an array of MsgSeq numbers, such as [101,102], even for one message: [101]"}}
	}
	switch {
	case len(rows) == 0:
		return nil, []Problem{{Field: "MsgSeq", Reason: "is empty: give at least one MsgSeq"}}
	case len(rows) > s.cfg.MaxBatch:
		return nil, []Problem{{Field: "MsgSeq", Reason: fmt.Sprintf(
			"has %d MsgSeq; at most %d are allowed in one request: split them over several requests", len(rows), s.cfg.MaxBatch)}}
	}
	seqs := make([]uint64, len(rows))
	var problems []Problem
	for i, v := range rows {
		seq, p := msgSeq(v)
		if p != nil {
			p.Field, p.Row = "MsgSeq["+strconv.Itoa(i)+"]", &i
			problems = append(problems, *p)
			continue
		}
		seqs[i] = seq
	}
	return seqs, problems
}

// msgSeq reads one MsgSeq: a JSON number written as a whole number in
// digits (no fraction, no exponent), from 1 to the largest uint64. A value
// of another JSON type or not a whole number is malformed (400); a whole
// number out of range is a bad value (422). The problem's field is unset.
func msgSeq(v jsontext.Value) (uint64, *Problem) {
	text := string(v)
	switch {
	case v.Kind() == '"':
		return 0, &Problem{malformed: true, Reason: "must be a number, not a string: write 101, not \"101\""}
	case v.Kind() != '0':
		return 0, &Problem{malformed: true, Reason: "must be a number: the MsgSeq Tencent gave the message in the group"}
	case strings.ContainsAny(text, ".eE"):
		return 0, &Problem{malformed: true, Reason: "must be a whole number written in digits, such as 101 (no fraction or exponent)"}
	case strings.HasPrefix(text, "-"), text == "0":
		return 0, &Problem{Reason: "must be at least 1: give the MsgSeq Tencent gave the message in the group (they start at 1)"}
	}
	seq, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, &Problem{Reason: fmt.Sprintf("is larger than %d, the largest MsgSeq", uint64(math.MaxUint64))}
	}
	return seq, nil
}
