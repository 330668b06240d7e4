package tasks

import "fmt"

// GroupClass is what becomes of one MsgSeq of a group_msg_recall call.
// Its values are the names of the worker's classes (worker.Class's
// String), so that the rows below can join the worker's one outcome
// table, plus GroupCommon.
type GroupClass string

// Group classes.
const (
	GroupDone          GroupClass = "done"
	GroupDeadLetter    GroupClass = "dead_letter"
	GroupTransient     GroupClass = "transient"
	GroupRateLimited   GroupClass = "rate_limited"
	GroupConfiguration GroupClass = "config"
	GroupUnknown       GroupClass = "unknown"
	// GroupCommon: a code every REST API shares (60000-79999: UserSig,
	// SDKAppID, the gateway's rate limit...) or no Tencent answer at all:
	// the worker's one-to-one table and transport rules decide, for every
	// seq of the call alike.
	GroupCommon GroupClass = "common"
)

// groupRow is one row of groupOutcomes.
type groupRow struct {
	class   GroupClass
	meaning string
	fix     string // for configuration rows: what the operator must do
}

// groupOutcomes maps group_msg_recall's own codes, call-level ErrorCodes
// and per-seq RetCodes, to what becomes of each seq. 10030 has two rows
// (see SettleGroupCall); the codes 60000-79999 are GroupCommon.
var groupOutcomes = map[int]groupRow{
	// Per seq (RetCode in RecallRetList).
	0:     {GroupDone, "recalled", ""},
	10031: {GroupDeadLetter, "the message is past the recall time limit (roaming retention)", ""},
	10032: {GroupDeadLetter, "the message cannot be recalled", ""},
	10033: {GroupDeadLetter, "the group's type does not allow message recall", ""},
	10041: {GroupConfiguration, "the app has group message recall disabled", "enable group message recall for the app in the Chat console"},
	// Per call (ErrorCode): every seq of the call.
	10002: {GroupTransient, "internal server error", ""},
	10003: {GroupConfiguration, "no such command: the request did not reach group_msg_recall", "check TIM_ENDPOINT (or a proxy rewriting paths)"},
	10004: {GroupDeadLetter, "invalid parameter (GroupId, TopicId or MsgSeqList)", ""},
	10006: {GroupRateLimited, "operation frequency limit exceeded", ""},
	10007: {GroupConfiguration, "no permission", "TIM_ADMIN must be an app admin account"},
	10010: {GroupDeadLetter, "the group does not exist any more (dismissed)", ""},
	10011: {GroupDeadLetter, "the JSON request could not be parsed", ""},
	10015: {GroupDeadLetter, "no group has this GroupId", ""},
	10023: {GroupRateLimited, "frequency limit exceeded", ""},
	10026: {GroupConfiguration, "the app's use of this command is disabled", "ask Tencent why group_msg_recall is disabled for the SDKAppID"},
}

// 10030's two rows: the message does not exist, and the RetCode Tencent
// may give (Tencent does not say; the simulator does by default) for a
// message recalled before.
var (
	group10030First = groupRow{GroupDeadLetter, "the message does not exist (or was recalled before by someone else)", ""}
	group10030Again = groupRow{GroupDone, "already recalled: the message is gone after an earlier attempt whose answer was lost", ""}
)

// noAnswer is the code of a GroupSeqOutcome for a seq no answer settled.
const noAnswer = -1

// GroupSeqAnswer is Tencent's answer for one seq, as internal/tim's
// SeqResult gives it.
type GroupSeqAnswer struct {
	MsgSeq   uint64
	RetCode  int
	Answered bool // false: RecallRetList did not answer this seq (clearly)
}

// GroupCall is what one group_msg_recall call got back.
type GroupCall struct {
	// Answered is false when no Tencent answer was read (a transport
	// error, a non-200, a body not Tencent's).
	Answered bool
	// ErrorCode is the call's code (0: each seq has its own RetCode).
	ErrorCode int
	// Seqs is one answer per seq of the call.
	Seqs []GroupSeqAnswer
}

// GroupSeqOutcome is what becomes of one seq.
type GroupSeqOutcome struct {
	MsgSeq uint64
	Class  GroupClass
	// Code is the code that decided: the seq's RetCode, or the call's
	// ErrorCode when the call failed, or -1 when nothing answered the seq.
	Code    int
	Meaning string
	Fix     string // for GroupConfiguration: what to fix
}

// SettleGroupCall maps one call's answer to one outcome per seq, in
// order, by the table groupOutcomes:
//
//   - no Tencent answer: GroupCommon for every seq (the worker's transport
//     rules: outage, path faults, retry);
//   - a call-level ErrorCode: that code's row for every seq; a code of
//     60000-79999 is GroupCommon; an unlisted one GroupUnknown;
//   - ErrorCode 0: each seq by its own RetCode; a seq the answer did not
//     list is GroupTransient (never done: nothing says it was recalled);
//   - RetCode 10030 is dead-lettered when retried(seq) is false, done
//     when it is true. Set retried when an earlier call carrying this seq
//     may have reached Tencent without settling it (its answer lost, a
//     10002, a seq left unlisted): that call may have recalled it. A first
//     10030 means no such message; it is not counted recalled because a
//     wrong MsgSeq would then read as success while the message it meant
//     stays in the group.
//
// retried may be nil (no seq was tried before).
func SettleGroupCall(call GroupCall, retried func(seq uint64) bool) []GroupSeqOutcome {
	out := make([]GroupSeqOutcome, len(call.Seqs))
	for i, a := range call.Seqs {
		o := GroupSeqOutcome{MsgSeq: a.MsgSeq}
		var row groupRow
		switch {
		case !call.Answered:
			o.Code, row = noAnswer, groupRow{GroupCommon, "no Tencent answer", ""}
		case call.ErrorCode != 0:
			o.Code, row = call.ErrorCode, groupCodeRow(call.ErrorCode)
		case !a.Answered:
			o.Code, row = noAnswer, groupRow{GroupTransient, "Tencent's answer did not list this MsgSeq", ""}
		case a.RetCode == 10030 && retried != nil && retried(a.MsgSeq):
			o.Code, row = a.RetCode, group10030Again
		case a.RetCode == 10030:
			o.Code, row = a.RetCode, group10030First
		default:
			o.Code, row = a.RetCode, groupCodeRow(a.RetCode)
		}
		o.Class, o.Meaning, o.Fix = row.class, row.meaning, row.fix
		out[i] = o
	}
	return out
}

// groupCodeRow returns code's row of groupOutcomes, GroupCommon for the
// codes every REST API shares, GroupUnknown for any other.
func groupCodeRow(code int) groupRow {
	if row, ok := groupOutcomes[code]; ok {
		return row
	}
	if code == 10030 { // as a call's code: nothing says any seq was recalled
		return group10030First
	}
	if code >= 60000 && code <= 79999 {
		return groupRow{GroupCommon, fmt.Sprintf("REST code %d: the one-to-one table decides", code), ""}
	}
	return groupRow{GroupUnknown, fmt.Sprintf("unknown code %d", code), ""}
}
