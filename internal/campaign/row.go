package campaign

import (
	"fmt"
	"strconv"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// kind is what a campaign row recalls. One campaign may hold rows of both
// kinds (a --sender query finds both); each stored row carries its own
// (codec.go).
type kind uint8

const (
	// kindC2C is a one-to-one message: From_Account, To_Account, MsgKey
	// (a recall:c2c task).
	kindC2C kind = 0
	// kindGroup is a group message: GroupId, TopicId (optional), MsgSeq
	// (a recall:group task).
	kindGroup kind = 1
)

// Column names, as Tencent spells the fields.
const (
	colFrom    = "From_Account"
	colTo      = "To_Account"
	colMsgKey  = "MsgKey"
	colGroupID = "GroupId"
	colTopicID = "TopicId"
	colMsgSeq  = "MsgSeq"
)

// row is one message of a campaign, as read and as stored.
type row struct {
	kind kind
	// A one-to-one message.
	from, to, msgKey string
	// A group message; msgSeq is as read (stored in canonical decimal).
	groupID, topicID, msgSeq string
}

// rowOf is the row of kind k whose three stored fields are a, b and c.
func rowOf(k kind, a, b, c string) row {
	if k == kindGroup {
		return row{kind: kindGroup, groupID: a, topicID: b, msgSeq: c}
	}
	return row{from: a, to: b, msgKey: c}
}

// fields are the row's three stored fields, in the order of rowOf. They
// are also what an audit row shows, as worker.GroupRecallAsRecall does.
func (r row) fields() (a, b, c string) {
	if r.kind == kindGroup {
		return r.groupID, r.topicID, r.msgSeq
	}
	return r.from, r.to, r.msgKey
}

// eventRow is the row of the task an Event is about.
func eventRow(ev worker.Event) row {
	if g := ev.Group; g != nil {
		return row{kind: kindGroup, groupID: g.GroupID, topicID: g.TopicID, msgSeq: strconv.FormatUint(g.MsgSeq, 10)}
	}
	return row{from: ev.Recall.FromAccount, to: ev.Recall.ToAccount, msgKey: ev.Recall.MsgKey}
}

// recall is the one-to-one recall of a kindC2C row, with base's app, notes
// and campaign.
func (r row) recall(base tasks.Recall) tasks.Recall {
	base.FromAccount, base.ToAccount, base.MsgKey = r.from, r.to, r.msgKey
	return base
}

// groupRecall is the group recall of a kindGroup row, with base's app,
// notes and campaign. A MsgSeq that is not a decimal number is an error
// wrapping tasks.ErrInvalid and a *tasks.FieldError, as Validate's are.
func (r row) groupRecall(base tasks.Recall) (tasks.GroupRecall, error) {
	g := tasks.GroupRecall{SDKAppID: base.SDKAppID, GroupID: r.groupID, TopicID: r.topicID,
		RequestedBy: base.RequestedBy, Reason: base.Reason, Campaign: base.Campaign}
	if r.msgSeq == "" {
		return g, nil // Validate says it is missing
	}
	seq, err := strconv.ParseUint(r.msgSeq, 10, 64)
	if err != nil {
		return g, fmt.Errorf("%w: %w", tasks.ErrInvalid, &tasks.FieldError{Field: colMsgSeq,
			Reason: fmt.Sprintf("%q is not a whole number: give the MsgSeq Tencent gave the message in the group (1, 2, ...)", echo(r.msgSeq))})
	}
	g.MsgSeq = seq
	return g, nil
}

// validate checks the row as the task it becomes (tasks' Validate), and
// returns it in its stored form (a group row's MsgSeq in canonical
// decimal). Errors wrap tasks.ErrInvalid and a *tasks.FieldError.
func (r row) validate(base tasks.Recall) (row, error) {
	if r.kind != kindGroup {
		return r, r.recall(base).Validate()
	}
	g, err := r.groupRecall(base)
	if err == nil {
		err = g.Validate()
	}
	if err != nil {
		return r, err
	}
	r.msgSeq = strconv.FormatUint(g.MsgSeq, 10)
	return r, nil
}

// task is the asynq task a stored row becomes (tasks.NewTask or
// tasks.NewGroupTask, with base's app, notes and campaign and o's
// options) and its ID.
func (r row) task(base tasks.Recall, o tasks.Options) (*asynq.Task, string, error) {
	if r.kind != kindGroup {
		rc := r.recall(base)
		t, err := tasks.NewTask(rc, o)
		return t, rc.TaskID(), err
	}
	g, err := r.groupRecall(base)
	if err != nil {
		return nil, "", err
	}
	t, err := tasks.NewGroupTask(g, o)
	return t, g.TaskID(), err
}

// taskID is the task ID a stored row of app sdkAppID becomes.
func (r row) taskID(sdkAppID uint64) (string, error) {
	if r.kind != kindGroup {
		return r.recall(tasks.Recall{SDKAppID: sdkAppID}).TaskID(), nil
	}
	g, err := r.groupRecall(tasks.Recall{SDKAppID: sdkAppID})
	return g.TaskID(), err
}
