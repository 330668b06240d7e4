package tasks

import (
	"reflect"
	"testing"
)

// TestSettleGroupCall pins every row: each call-level code and RetCode,
// and what no answer means.
func TestSettleGroupCall(t *testing.T) {
	one := func(code int) GroupCall {
		return GroupCall{Answered: true, Seqs: []GroupSeqAnswer{{MsgSeq: 7, RetCode: code, Answered: true}}}
	}
	failed := func(code int) GroupCall {
		return GroupCall{Answered: true, ErrorCode: code, Seqs: []GroupSeqAnswer{{MsgSeq: 7}}}
	}
	never := func(uint64) bool { return false }
	always := func(uint64) bool { return true }
	tests := []struct {
		name    string
		call    GroupCall
		retried func(uint64) bool
		class   GroupClass
		code    int
	}{
		{"recalled", one(0), never, GroupDone, 0},
		{"10030 first attempt", one(10030), never, GroupDeadLetter, 10030},
		{"10030 without retried", one(10030), nil, GroupDeadLetter, 10030},
		{"10030 on a retried seq", one(10030), always, GroupDone, 10030},
		{"10031 past the window", one(10031), always, GroupDeadLetter, 10031},
		{"10032 cannot be recalled", one(10032), never, GroupDeadLetter, 10032},
		{"10033 group type", one(10033), never, GroupDeadLetter, 10033},
		{"10041 recall disabled", one(10041), never, GroupConfiguration, 10041},
		{"unknown RetCode", one(12345), never, GroupUnknown, 12345},
		{"seq not listed", GroupCall{Answered: true, Seqs: []GroupSeqAnswer{{MsgSeq: 7}}}, always, GroupTransient, -1},
		{"no Tencent answer", GroupCall{Seqs: []GroupSeqAnswer{{MsgSeq: 7, Answered: true}}}, never, GroupCommon, -1},
		{"call 10002", failed(10002), never, GroupTransient, 10002},
		{"call 10003", failed(10003), never, GroupConfiguration, 10003},
		{"call 10004", failed(10004), never, GroupDeadLetter, 10004},
		{"call 10006", failed(10006), never, GroupRateLimited, 10006},
		{"call 10007", failed(10007), never, GroupConfiguration, 10007},
		{"call 10010", failed(10010), never, GroupDeadLetter, 10010},
		{"call 10011", failed(10011), never, GroupDeadLetter, 10011},
		{"call 10015", failed(10015), never, GroupDeadLetter, 10015},
		{"call 10023", failed(10023), never, GroupRateLimited, 10023},
		{"call 10026", failed(10026), never, GroupConfiguration, 10026},
		{"call 60007 is the shared table's", failed(60007), never, GroupCommon, 60007},
		{"call 70001 is the shared table's", failed(70001), never, GroupCommon, 70001},
		{"call 10030 ignores retried", failed(10030), always, GroupDeadLetter, 10030},
		{"unknown call code", failed(91000), never, GroupUnknown, 91000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SettleGroupCall(tt.call, tt.retried)
			if len(got) != 1 || got[0].MsgSeq != 7 || got[0].Class != tt.class || got[0].Code != tt.code || got[0].Meaning == "" {
				t.Fatalf("got %+v, want class %s code %d", got, tt.class, tt.code)
			}
			if (tt.class == GroupConfiguration) != (got[0].Fix != "") {
				t.Errorf("Fix %q: configuration rows, and only they, say what to fix", got[0].Fix)
			}
		})
	}
}

// TestSettleGroupCallPerSeq: one call settles each seq by its own RetCode,
// in order, and asks retried only about its own seq.
func TestSettleGroupCallPerSeq(t *testing.T) {
	call := GroupCall{Answered: true, Seqs: []GroupSeqAnswer{
		{MsgSeq: 100, RetCode: 10030, Answered: true},
		{MsgSeq: 101, RetCode: 0, Answered: true},
		{MsgSeq: 102},
		{MsgSeq: 103, RetCode: 10030, Answered: true},
	}}
	var classes []GroupClass
	for _, o := range SettleGroupCall(call, func(seq uint64) bool { return seq == 103 }) {
		classes = append(classes, o.Class)
	}
	want := []GroupClass{GroupDeadLetter, GroupDone, GroupTransient, GroupDone}
	if !reflect.DeepEqual(classes, want) {
		t.Errorf("classes %v, want %v", classes, want)
	}
}

// TestGroupOutcomesCovered: every row of the table is pinned above.
func TestGroupOutcomesCovered(t *testing.T) {
	pinned := map[int]bool{0: true, 10031: true, 10032: true, 10033: true, 10041: true, 10002: true, 10003: true,
		10004: true, 10006: true, 10007: true, 10010: true, 10011: true, 10015: true, 10023: true, 10026: true}
	for code := range groupOutcomes {
		if !pinned[code] {
			t.Errorf("row %d is not pinned by TestSettleGroupCall", code)
		}
	}
}
