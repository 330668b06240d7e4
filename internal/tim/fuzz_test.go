package tim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecodeResponse (seeds in testdata/fuzz/FuzzDecodeResponse) feeds arbitrary bodies to the response decoder. It must
// never panic, and no body may read as success (code 0) unless Tencent said
// OK: a misread success would mark a message recalled that was not.
func FuzzDecodeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := decodeResponse(body)
		if err != nil {
			return
		}
		if resp.ErrorCode == 0 && !strings.EqualFold(resp.ActionStatus, "OK") {
			t.Fatalf("%q decoded as success with ActionStatus %q", body, resp.ActionStatus)
		}
		if resp.ActionStatus == "" {
			t.Fatalf("%q decoded without an ActionStatus", body)
		}
	})
}

// FuzzGroupAnswer (seeds in testdata/fuzz/FuzzGroupAnswer) feeds arbitrary
// bodies to group_msg_recall's decoding, as GroupRecall runs it. It must
// never panic, must give one result per seq asked, in order, and no seq may
// read as answered unless the call succeeded and RecallRetList holds an
// entry with that MsgSeq and that RetCode: a seq misread as recalled
// (RetCode 0) would leave a message in the group that an operator believes
// gone.
func FuzzGroupAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, seq1, seq2 uint64) {
		seqs := []uint64{seq1, seq2}
		resp, err := decodeResponse(body)
		if err != nil {
			return
		}
		var raw []byte
		if resp.ErrorCode == 0 {
			raw = body
		}
		res, err := groupAnswer(resp, raw, seqs)
		if len(res.Seqs) != len(seqs) {
			t.Fatalf("%d results for %d seqs", len(res.Seqs), len(seqs))
		}
		for i, r := range res.Seqs {
			if r.MsgSeq != seqs[i] {
				t.Fatalf("result %d is for seq %d, want %d", i, r.MsgSeq, seqs[i])
			}
			if !r.Answered {
				continue
			}
			if err != nil || resp.ErrorCode != 0 || !strings.EqualFold(resp.ActionStatus, "OK") {
				t.Fatalf("%q: seq %d answered although the call failed (%d, %v)", body, r.MsgSeq, resp.ErrorCode, err)
			}
			if !listed(body, r.MsgSeq, r.RetCode) {
				t.Fatalf("%q: seq %d answered %d, which RecallRetList does not say", body, r.MsgSeq, r.RetCode)
			}
		}
	})
}

// listed is the oracle of FuzzGroupAnswer, written apart from the code
// under test: whether RecallRetList (matched case-insensitively, as
// encoding/json matches names) has an entry with MsgSeq seq and RetCode
// code, each a JSON number or a string of one.
func listed(body []byte, seq uint64, code int) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	for name, v := range top {
		if !strings.EqualFold(name, "RecallRetList") {
			continue
		}
		var list []map[string]any
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber() // exact, where a float64 would round a large MsgSeq
		_ = dec.Decode(&list)
		for _, e := range list {
			if number(e["MsgSeq"]) == strconv.FormatUint(seq, 10) && numberIs(e["RetCode"], code) {
				return true
			}
		}
	}
	return false
}

// number returns a JSON number or string as decimal text (trimmed).
func number(v any) string {
	switch x := v.(type) {
	case json.Number:
		return string(x)
	case string:
		return strings.TrimSpace(x)
	}
	return ""
}

func numberIs(v any, code int) bool {
	f, err := strconv.ParseFloat(number(v), 64)
	return err == nil && f == float64(code)
}
