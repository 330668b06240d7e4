package imsim

import (
	"fmt"
	"sync"
	"time"
)

// DefaultGroupRecallWindow is GroupSettings.Window's default: 7 days, the
// roaming retention of Tencent's Free Trial and Standard editions. Tencent
// recalls a group message only while it is within roaming retention.
const DefaultGroupRecallWindow = 7 * 24 * time.Hour

// GroupMsgState is what the simulator knows of one group message.
type GroupMsgState uint8

// Group message states.
const (
	// GroupMsgPresent: the message exists and can be recalled.
	GroupMsgPresent GroupMsgState = iota
	// GroupMsgRecalled: recalled; a later recall answers
	// GroupSettings.RecalledAgain.
	GroupMsgRecalled
	// GroupMsgGone: the message does not exist: 10030.
	GroupMsgGone
	// GroupMsgUnrecallable: the message exists but cannot be recalled
	// (a group tip, a system message): 10032.
	GroupMsgUnrecallable
)

var groupMsgStateNames = [...]string{"present", "recalled", "gone", "unrecallable"}

func (st GroupMsgState) String() string {
	if int(st) < len(groupMsgStateNames) {
		return groupMsgStateNames[st]
	}
	return fmt.Sprintf("GroupMsgState(%d)", uint8(st))
}

// MarshalText writes the state's name.
func (st GroupMsgState) MarshalText() ([]byte, error) { return []byte(st.String()), nil }

// UnmarshalText reads a state's name: present, recalled, gone, unrecallable.
func (st *GroupMsgState) UnmarshalText(b []byte) error {
	for i, n := range groupMsgStateNames {
		if string(b) == n {
			*st = GroupMsgState(i)
			return nil
		}
	}
	return fmt.Errorf("group message state %q: use present, recalled, gone or unrecallable", b)
}

// RecalledAgain chooses what a recall of an already recalled group message
// answers. Tencent does not document it: its API page lists no "already
// recalled" code for groups (admin_msgwithdraw has 20023).
type RecalledAgain uint8

const (
	// RecalledAgainNotFound answers 10030 (no such message): the default,
	// the harder case for a caller, which cannot tell a message recalled
	// before from one that never existed.
	RecalledAgainNotFound RecalledAgain = iota
	// RecalledAgainOK answers 0, as if recalling were idempotent.
	RecalledAgainOK
)

// MarshalText writes "not_found" or "ok".
func (a RecalledAgain) MarshalText() ([]byte, error) {
	if a == RecalledAgainOK {
		return []byte("ok"), nil
	}
	return []byte("not_found"), nil
}

// UnmarshalText reads "not_found" or "ok".
func (a *RecalledAgain) UnmarshalText(b []byte) error {
	switch string(b) {
	case "not_found":
		*a = RecalledAgainNotFound
	case "ok":
		*a = RecalledAgainOK
	default:
		return fmt.Errorf("RecalledAgain %q: use \"not_found\" (10030) or \"ok\" (0)", b)
	}
	return nil
}

// code is the RetCode a recall of a recalled message answers.
func (a RecalledAgain) code() int {
	if a == RecalledAgainOK {
		return codeOK
	}
	return codeGroupMsgNotFound
}

// GroupSettings are the app-wide settings of group message recall (see
// Sim.SetGroupSettings and POST /sim/group/settings).
type GroupSettings struct {
	// RecalledAgain is what recalling a recalled message answers.
	// Default RecalledAgainNotFound (10030).
	RecalledAgain RecalledAgain
	// RecallDisabled: the app has group message recall turned off; every
	// seq answers 10041.
	RecallDisabled bool
	// Window: a message sent longer ago than this answers 10031 (past the
	// recall window). Default DefaultGroupRecallWindow; 0 means the default.
	Window jsonDuration
}

func (g GroupSettings) window() time.Duration {
	if g.Window <= 0 {
		return DefaultGroupRecallWindow
	}
	return time.Duration(g.Window)
}

// GroupSpec describes a group for Sim.CreateGroup.
type GroupSpec struct {
	// GroupID is the group's ID. Required.
	GroupID string `json:"GroupId"`
	// Messages makes the messages 1..Messages of the group exist (not of
	// its topics), all sent at SentAt. They cost no memory until something
	// happens to one.
	Messages uint64
	// SentAt is when those messages were sent. Default: the simulator's Now.
	SentAt time.Time `json:",omitzero"`
	// TypeForbidsRecall makes every seq of the group answer 10033, as for
	// a group type that does not allow recall (AVChatRoom, on some of
	// Tencent's pages).
	TypeForbidsRecall bool
}

// groupMsg is one group message something happened to.
type groupMsg struct {
	state  GroupMsgState
	sentAt time.Time
}

// groupConv is a group's message sequence, or one topic's: seqs 1..bulk
// exist, sent at bulkAt, unless msgs says otherwise; msgs holds the others.
type groupConv struct {
	bulk   uint64
	bulkAt time.Time
	next   uint64 // the highest seq given out
	msgs   map[uint64]*groupMsg
}

// msg returns seq's entry, creating one that says what seq is now when
// create is true (nil otherwise when there is none).
func (c *groupConv) msg(seq uint64, create bool) *groupMsg {
	if m, ok := c.msgs[seq]; ok || !create {
		return m
	}
	m := &groupMsg{state: GroupMsgGone}
	if seq >= 1 && seq <= c.bulk {
		m.state, m.sentAt = GroupMsgPresent, c.bulkAt
	}
	c.msgs[seq] = m
	return m
}

type simGroup struct {
	dismissed         bool
	typeForbidsRecall bool
	convs             map[string]*groupConv // by TopicId; "" is the group itself
}

func (g *simGroup) conv(topic string) *groupConv {
	c, ok := g.convs[topic]
	if !ok {
		c = &groupConv{msgs: map[uint64]*groupMsg{}}
		g.convs[topic] = c
	}
	return c
}

// seqKey names one message of one group's topic ("" for the group).
type seqKey struct {
	group, topic string
	seq          uint64
}

// groupStore is the state of group_msg_recall: groups, settings, forced
// codes, and the API's own rate limit and statistics. One mutex guards
// everything but the meter and counters (which have their own): the API
// runs at 200 calls a second of at most 10 seqs.
type groupStore struct {
	meter    *meter
	counters *counters

	mu        sync.Mutex
	groups    map[string]*simGroup
	settings  GroupSettings
	callForce map[string]*forceRule // by GroupId: the call's ErrorCode
	seqForce  map[seqKey]*forceRule // one seq's RetCode
	fates     map[seqKey][]int32    // every code answered for a seq
	byRet     map[int]int64
	seqs      int64
}

func newGroupStore(capacity int, window time.Duration, now time.Time) *groupStore {
	g := &groupStore{meter: newMeter(capacity, window, now), counters: newCounters()}
	g.reset(now)
	return g
}

// reset forgets every group, force rule and setting, and the statistics.
func (g *groupStore) reset(now time.Time) {
	g.mu.Lock()
	g.groups = map[string]*simGroup{}
	g.settings = GroupSettings{}
	g.callForce = map[string]*forceRule{}
	g.seqForce = map[seqKey]*forceRule{}
	g.fates = map[seqKey][]int32{}
	g.mu.Unlock()
	g.resetStats(now)
}

func (g *groupStore) resetStats(now time.Time) {
	g.meter.reset(now)
	g.counters.reset()
	g.mu.Lock()
	g.byRet = map[int]int64{}
	g.seqs = 0
	g.mu.Unlock()
}

// group returns the group, creating it when create is true.
func (g *groupStore) group(id string, create bool) *simGroup {
	gr, ok := g.groups[id]
	if !ok && create {
		gr = &simGroup{convs: map[string]*groupConv{}}
		g.groups[id] = gr
	}
	return gr
}

// GroupStats is what the simulator has seen of group_msg_recall: Stats
// for its calls (the rate limit's rejections, 10006, are counted in
// Rejected60007, whose name is admin_msgwithdraw's), plus the seqs.
type GroupStats struct {
	Stats
	// Seqs counts the seqs answered with a RetCode.
	Seqs int64 `json:"seqs"`
	// ByRetCode counts those RetCodes.
	ByRetCode map[int]int64 `json:"by_ret_code"`
}

// stats returns a snapshot.
func (g *groupStore) stats(now time.Time) GroupStats {
	var st GroupStats
	g.meter.fill(&st.Stats, now)
	g.counters.fill(&st.Stats)
	g.mu.Lock()
	defer g.mu.Unlock()
	st.Seqs = g.seqs
	st.ByRetCode = make(map[int]int64, len(g.byRet))
	for k, v := range g.byRet {
		st.ByRetCode[k] = v
	}
	return st
}
