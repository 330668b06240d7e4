package capture

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
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

// Errors of the callback reader. Each is wrapped with the detail.
var (
	// ErrBadCallback: the body is not a callback the capture can index
	// (not JSON, a field of the wrong type, MsgSeq or MsgTime missing or
	// out of range, or an identifier no recall task would take: see
	// checkIdentifiers). It is answered 400 and counted, never indexed.
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

// asSent are the identifiers of a callback as they came. lenient replaces
// invalid UTF-8 with U+FFFD, as encoding/json did, and so would name an
// account or a message Tencent never issued; when an identifier holds
// U+FFFD, readCallback reads them again so (see ident), and the check
// refuses what was not UTF-8. Tencent's own identifiers hardly ever hold
// U+FFFD, so the common callback is read once.
type asSent struct {
	From    ident `json:"From_Account"`
	To      ident `json:"To_Account"`
	GroupID ident `json:"GroupId"`
	MsgKey  ident `json:"MsgKey"`
	TopicID ident `json:"TopicId"`
}

// ident is an identifier as it came: its raw bytes as they are, an
// escaped lone surrogate ("\ud800") as the three bytes that would encode
// it, both invalid UTF-8, where lenient puts U+FFFD.
type ident string

// UnmarshalJSONFrom reads a JSON string (null is ""); any other value is
// an error.
func (s *ident) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case 'n':
		*s = ""
		return nil
	case '"':
		*s = ident(unquote(v))
		return nil
	}
	return fmt.Errorf("a JSON %s where a string was expected", v.Kind())
}

// unquote returns the value of q, a JSON string the decoder has checked,
// keeping invalid UTF-8 (see ident).
func unquote(q []byte) string {
	q = q[1 : len(q)-1]
	i := bytes.IndexByte(q, '\\')
	if i < 0 {
		return string(q)
	}
	b := append(make([]byte, 0, len(q)), q[:i]...)
	for i < len(q) {
		if q[i] != '\\' {
			b = append(b, q[i])
			i++
			continue
		}
		c := q[i+1]
		i += 2
		switch c {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(q[i:])
			i += 4
			if utf16.IsSurrogate(r) && i+6 <= len(q) && q[i] == '\\' && q[i+1] == 'u' {
				if pair := utf16.DecodeRune(r, hex4(q[i+2:])); pair != utf8.RuneError {
					r = pair
					i += 6
				}
			}
			if utf16.IsSurrogate(r) { // lone: encoded as if it were a rune, which UTF-8 forbids
				b = append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
				continue
			}
			b = utf8.AppendRune(b, r)
		default: // '"', '\\', '/'
			b = append(b, c)
		}
	}
	return string(b)
}

// hex4 is the value of the four hex digits that start h.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// maxFuture is how far ahead of the receiver's clock a MsgTime may be, in
// seconds: more is not a clock's skew but a bad callback.
const maxFuture = 24 * 60 * 60

// lenient reads a callback as encoding/json did (names matched without
// regard to case, a repeated name's last value, invalid UTF-8 replaced):
// the capture is not the place to refuse what Tencent sends, but for the
// identifiers a recall names (asSent, checkIdentifiers). The decoder
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
	if replaced(cb.From, cb.To, cb.GroupID, cb.MsgKey, cb.TopicID) {
		var raw asSent
		if err := json.Unmarshal(body, &raw, lenient); err != nil {
			return Message{}, 0, fmt.Errorf("%w: the body is not a JSON object of a callback: %v", ErrBadCallback, err)
		}
		cb.From, cb.To, cb.GroupID, cb.MsgKey, cb.TopicID = string(raw.From), string(raw.To), string(raw.GroupID), string(raw.MsgKey), string(raw.TopicID)
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
	var m Message
	switch command {
	case CommandC2CAfterSend:
		m = Message{Kind: C2C, From: cb.From, To: cb.To, MsgKey: cb.MsgKey, MsgSeq: cb.MsgSeq, Time: cb.MsgTime}
	case CommandGroupAfterSend:
		m = Message{Kind: Group, From: cb.From, GroupID: cb.GroupID, TopicID: cb.TopicID, MsgSeq: cb.MsgSeq, Time: cb.MsgTime}
	}
	if err := checkIdentifiers(m); err != nil {
		return Message{}, 0, err
	}
	if m.Kind == Group && m.MsgSeq == 0 {
		return Message{}, 0, fmt.Errorf("%w: MsgSeq is missing", ErrBadCallback)
	}
	switch {
	case cb.SendMsgResult != 0:
		return m, failedSend, nil
	case cb.OnlineOnlyFlag == 1:
		return m, onlineOnly, nil
	}
	return m, index, nil
}

// replaced reports whether any of ids holds U+FFFD, as lenient puts it
// for invalid UTF-8.
func replaced(ids ...string) bool {
	for _, s := range ids {
		if strings.ContainsRune(s, utf8.RuneError) {
			return true
		}
	}
	return false
}

// checkIdentifiers refuses a message whose identifiers no recall task
// would take, with an error wrapping ErrBadCallback that names the field
// and the rule: each is checked as tasks checks it (tasks.IdentifierFault),
// From_Account too, the UserID the index is queried by. Tencent never sends
// such a value; indexed, the message could only be rejected by the import
// of a --sender campaign, long after the callback.
func checkIdentifiers(m Message) error {
	type field struct{ name, value string }
	fields := [...]field{{"From_Account", m.From}, {"To_Account", m.To}, {"MsgKey", m.MsgKey}}
	if m.Kind == Group {
		fields = [...]field{{"From_Account", m.From}, {"GroupId", m.GroupID}, {"TopicId", m.TopicID}}
	}
	for _, f := range fields {
		if f.name == "TopicId" && f.value == "" {
			continue // a message of the group itself
		}
		if what, _ := tasks.IdentifierFault(f.name, f.value); what != "" {
			return fmt.Errorf("%w: %s %s, so no recall task could take the message", ErrBadCallback, f.name, what)
		}
	}
	return nil
}
