package tasks

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/strictjson"
)

// TypeGroupRecall is the asynq task type of a group message recall
// (Tencent's v4/group_open_http_svc/group_msg_recall).
const TypeGroupRecall = "recall:group"

// Limits on a group recall's fields.
const (
	// MaxGroupIDLen is Tencent's limit on a GroupId: 48 bytes.
	MaxGroupIDLen = 48
	// MaxTopicIDLen bounds a TopicId, which Tencent builds from the
	// community's GroupId, "@TOPIC#_" and the topic's own ID.
	MaxTopicIDLen = 128
)

// GroupTaskIDPrefix starts every group recall's task ID (no '-', as for
// TaskIDPrefix, and distinct from it).
const GroupTaskIDPrefix = "grecall_"

// GroupRecall is the payload of a group recall task: one message of a
// group, or of one of its topics. One task holds one MsgSeq, so that
// queuing the same message twice is refused by its task ID whatever else
// was queued with it; the worker packs up to ten waiting seqs of the same
// group and topic into one call. The Tencent fields keep Tencent's names.
type GroupRecall struct {
	// SDKAppID is the Chat app the group belongs to.
	SDKAppID uint64 `json:"SDKAppID"`
	// GroupID is the group's ID.
	GroupID string `json:"GroupId"`
	// TopicID, for a topic-enabled community, is the topic the message
	// was sent to. Optional.
	TopicID string `json:"TopicId,omitempty"`
	// MsgSeq is the message's sequence number in the group (or topic),
	// from Group.CallbackAfterSendMsg or the group's history; from 1.
	MsgSeq uint64 `json:"MsgSeq"`
	// RequestedBy, Reason and Campaign are as in Recall. Optional.
	RequestedBy string `json:"requested_by,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Campaign    string `json:"campaign,omitempty"`
}

// Validate checks the payload as Recall.Validate does: GroupId present,
// at most MaxGroupIDLen bytes, valid UTF-8, no control character and no
// leading or trailing space; TopicId, when given, the same within
// MaxTopicIDLen; MsgSeq at least 1. It returns nil or an error wrapping
// ErrInvalid and a *FieldError naming the first bad field.
func (g GroupRecall) Validate() error {
	if g.SDKAppID == 0 {
		return invalid("SDKAppID", "is missing: set it to the app's SDKAppID from the Chat console")
	}
	if err := checkFields([]field{identifier("GroupId", g.GroupID)}); err != nil {
		return err
	}
	if g.TopicID != "" {
		if err := checkFields([]field{identifier("TopicId", g.TopicID)}); err != nil {
			return err
		}
	}
	if g.MsgSeq == 0 {
		return invalid("MsgSeq", "is missing or 0: give the MsgSeq Tencent gave the message in the group (they start at 1)")
	}
	return checkFields([]field{
		{"requested_by", g.RequestedBy, MaxNoteLen, false},
		{"reason", g.Reason, MaxNoteLen, false},
		{"campaign", g.Campaign, MaxNoteLen, false},
	})
}

// TaskID is the deterministic asynq task ID of a group recall: the same
// app, group, topic and MsgSeq always give the same ID, whoever asks and
// why. The topic is part of it because a topic's MsgSeqs are its own.
func (g GroupRecall) TaskID() string {
	return hashID(GroupTaskIDPrefix, g.SDKAppID, g.GroupID, g.TopicID, strconv.FormatUint(g.MsgSeq, 10))
}

// Encode validates g and returns its wire form.
func (g GroupRecall) Encode() ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(g)
}

// DecodeGroupRecall parses and validates a group recall payload as Decode
// does a Recall's: strictly (see internal/strictjson), any failure wrapping
// ErrInvalid.
func DecodeGroupRecall(b []byte) (GroupRecall, error) {
	var g GroupRecall
	if err := strictjson.Unmarshal(b, &g); err != nil {
		return GroupRecall{}, fmt.Errorf("%w: payload is not a group recall: %v", ErrInvalid, err)
	}
	return g, g.Validate()
}

// NewGroupTask validates g and returns the asynq task that recalls it, as
// NewTask does for a Recall: its deterministic ID, queue, retry budget,
// timeout and retention set.
func NewGroupTask(g GroupRecall, o Options) (*asynq.Task, error) {
	payload, err := g.Encode()
	if err != nil {
		return nil, err
	}
	return newTask(TypeGroupRecall, payload, g.TaskID(), g.SDKAppID, o)
}
