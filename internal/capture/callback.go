package capture

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/recallq/recallq/tasks"
)

// The callbacks the capture indexes. Any other CallbackCommand is answered
// OK and counted as ignored, so that one callback URL may serve several
// callbacks.
const (
	CommandC2CAfterSend   = "C2C.CallbackAfterSendMsg"
	CommandGroupAfterSend = "Group.CallbackAfterSendMsg"
)

// Limits of the fields the index stores. Tencent's UserIDs are at most 32
// bytes and GroupIds 48; the room left covers prefixes some apps add. A
// TopicId is the community's GroupId, "@TOPIC#_" and the topic's own ID;
// its bound is the one a group recall task accepts (tasks.MaxTopicIDLen),
// so that every topic message indexed can be queued.
const (
	MaxAccountLen = 64
	MaxGroupIDLen = 64
	MaxMsgKeyLen  = 64
	MaxTopicIDLen = 128
)

// Errors of the callback reader. Each is wrapped with the detail.
var (
	// ErrBadCallback: the body is not a callback the capture can index
	// (not JSON, a field of the wrong type, a required field missing or
	// too long, a TopicId with a control character or a space at either
	// end). It is answered 400 and counted, never indexed.
	ErrBadCallback = errors.New("bad callback")
)

// callbackBody is the part of an after-send callback's body the index
// needs. MsgBody and the rest are skipped by the decoder.
type callbackBody struct {
	CallbackCommand string `json:"CallbackCommand"`
	From            string `json:"From_Account"`
	To              string `json:"To_Account"`
	GroupID         string `json:"GroupId"`
	MsgKey          string `json:"MsgKey"`
	MsgSeq          uint64 `json:"MsgSeq"`
	MsgTime         int64  `json:"MsgTime"`
	// TopicID is set for a message sent in a topic of a topic-enabled
	// community (each topic has its own MsgSeqs); absent otherwise.
	TopicID string `json:"TopicId"`
	// SendMsgResult is 0 when the message was sent; absent counts as 0.
	SendMsgResult int64 `json:"SendMsgResult"`
	// OnlineOnlyFlag 1: an online-only message, never stored by Tencent,
	// so there is nothing to recall.
	OnlineOnlyFlag int `json:"OnlineOnlyFlag"`
}

// maxFuture is how far ahead of the receiver's clock a MsgTime may be, in
// seconds: more is not a clock's skew but a bad callback.
const maxFuture = 24 * 60 * 60

// lenient reads a callback as encoding/json did (names matched without
// regard to case, a repeated name's last value, invalid UTF-8 replaced):
// the capture is not the place to refuse what Tencent sends. The decoder
// is go-json-experiment's, at about half encoding/json's cost per
// callback (BenchmarkReadCallback); data after the object is refused.
var lenient = json.JoinOptions(
	json.MatchCaseInsensitiveNames(true),
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// verdict is what to do with a well-formed callback.
type verdict int

const (
	index      verdict = iota // index the message
	failedSend                // SendMsgResult != 0: the message was not sent
	onlineOnly                // OnlineOnlyFlag 1: not stored by Tencent
	ignored                   // a callback the capture does not index
)

// readCallback decodes one callback body for command (the URL's
// CallbackCommand). It returns the message to index and the verdict, or an
// error wrapping ErrBadCallback that says what is wrong. now is the
// receipt time in Unix seconds, used when MsgTime is missing.
func readCallback(command string, body []byte, now int64) (Message, verdict, error) {
	if command != CommandC2CAfterSend && command != CommandGroupAfterSend {
		return Message{}, ignored, nil
	}
	var cb callbackBody
	if err := json.Unmarshal(body, &cb, lenient); err != nil {
		return Message{}, 0, fmt.Errorf("%w: the body is not a JSON object of a callback: %v", ErrBadCallback, err)
	}
	if cb.CallbackCommand != "" && cb.CallbackCommand != command {
		return Message{}, 0, fmt.Errorf("%w: the body's CallbackCommand %q differs from the URL's %q", ErrBadCallback, cb.CallbackCommand, command)
	}
	if cb.MsgTime < 0 {
		return Message{}, 0, fmt.Errorf("%w: MsgTime %d is negative", ErrBadCallback, cb.MsgTime)
	}
	if cb.MsgTime > now+maxFuture {
		return Message{}, 0, fmt.Errorf("%w: MsgTime %d is more than a day ahead of this server's clock", ErrBadCallback, cb.MsgTime)
	}
	if cb.MsgTime == 0 {
		cb.MsgTime = now
	}
	if cb.From == "" {
		return Message{}, 0, fmt.Errorf("%w: From_Account is missing", ErrBadCallback)
	}
	if len(cb.From) > MaxAccountLen {
		return Message{}, 0, fmt.Errorf("%w: From_Account is %d bytes long; at most %d are indexed", ErrBadCallback, len(cb.From), MaxAccountLen)
	}
	var m Message
	switch command {
	case CommandC2CAfterSend:
		switch {
		case cb.To == "":
			return Message{}, 0, fmt.Errorf("%w: To_Account is missing", ErrBadCallback)
		case len(cb.To) > MaxAccountLen:
			return Message{}, 0, fmt.Errorf("%w: To_Account is %d bytes long; at most %d are indexed", ErrBadCallback, len(cb.To), MaxAccountLen)
		case cb.MsgKey == "":
			return Message{}, 0, fmt.Errorf("%w: MsgKey is missing", ErrBadCallback)
		case len(cb.MsgKey) > MaxMsgKeyLen:
			return Message{}, 0, fmt.Errorf("%w: MsgKey is %d bytes long; at most %d are indexed", ErrBadCallback, len(cb.MsgKey), MaxMsgKeyLen)
		}
		m = Message{Kind: C2C, From: cb.From, To: cb.To, MsgKey: cb.MsgKey, MsgSeq: cb.MsgSeq, Time: cb.MsgTime}
	case CommandGroupAfterSend:
		switch {
		case cb.GroupID == "":
			return Message{}, 0, fmt.Errorf("%w: GroupId is missing", ErrBadCallback)
		case len(cb.GroupID) > MaxGroupIDLen:
			return Message{}, 0, fmt.Errorf("%w: GroupId is %d bytes long; at most %d are indexed", ErrBadCallback, len(cb.GroupID), MaxGroupIDLen)
		case len(cb.TopicID) > MaxTopicIDLen:
			return Message{}, 0, fmt.Errorf("%w: TopicId is %d bytes long; at most %d are indexed", ErrBadCallback, len(cb.TopicID), MaxTopicIDLen)
		case cb.MsgSeq == 0:
			return Message{}, 0, fmt.Errorf("%w: MsgSeq is missing", ErrBadCallback)
		}
		if reason := badIdentifier(cb.TopicID); reason != "" {
			return Message{}, 0, fmt.Errorf("%w: TopicId %s", ErrBadCallback, reason)
		}
		m = Message{Kind: Group, From: cb.From, GroupID: cb.GroupID, TopicID: cb.TopicID, MsgSeq: cb.MsgSeq, Time: cb.MsgTime}
	}
	switch {
	case cb.SendMsgResult != 0:
		return m, failedSend, nil
	case cb.OnlineOnlyFlag == 1:
		return m, onlineOnly, nil
	}
	return m, index, nil
}

// badIdentifier says what is wrong with an ID Tencent issued (""
// when nothing is): not valid UTF-8, a control character, or a space at
// either end, as tasks' validation refuses them (tasks.IdentifierFault).
// Tencent never sends one; indexed, it would be queued as a recall of no
// message, or rejected by the import.
func badIdentifier(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	what, _ := tasks.IdentifierFault(s)
	return what
}
