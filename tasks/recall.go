// Package tasks is the contract between producers and workers: the recall
// task's type name, its payload, how a payload is validated, which queue it
// goes to and the deterministic task ID that makes queuing the same recall
// twice a no-op.
//
// Both enqueue/ (the producer side) and worker/ (the consumer side) import
// this package; neither imports the other.
package tasks

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/strictjson"
)

// TypeRecall is the asynq task type of a one-to-one message recall
// (Tencent's v4/openim/admin_msgwithdraw).
const TypeRecall = "recall:c2c"

// Lanes. Workers serve an app's urgent queue strictly before its bulk
// queue, so a single recall a moderator queues never waits behind a bulk
// campaign. Each app has its own pair of queues (AppQueue), so that two
// apps on one Redis never take each other's tasks and one app's backlog
// never delays another's recalls. The lane names are also the queues of
// recallq before it had an app in the queue name (LegacyQueues): workers
// still serve those, so nothing queued before an upgrade is lost.
const (
	QueueUrgent = "recall_urgent"
	QueueBulk   = "recall_bulk"
)

// AppQueue is the asynq queue of lane (QueueUrgent or QueueBulk) for the
// app sdkAppID: "recall_urgent:1400000000".
func AppQueue(lane string, sdkAppID uint64) string {
	return lane + ":" + strconv.FormatUint(sdkAppID, 10)
}

// LegacyQueues are the queues of every app before AppQueue; workers serve
// them after their own and move another app's task to its app's queue.
var LegacyQueues = []string{QueueUrgent, QueueBulk}

// ParseQueue reads an asynq queue name of recallq's: its lane and app
// (app 0 for a legacy queue). ok is false for any other queue.
func ParseQueue(q string) (lane string, sdkAppID uint64, ok bool) {
	lane, app, hasApp := strings.Cut(q, ":")
	if lane != QueueUrgent && lane != QueueBulk {
		return "", 0, false
	}
	if !hasApp {
		return lane, 0, true
	}
	id, err := strconv.ParseUint(app, 10, 64)
	if err != nil || id == 0 || strconv.FormatUint(id, 10) != app {
		return "", 0, false
	}
	return lane, id, true
}

// Limits on the payload's fields.
const (
	// MaxAccountLen is Tencent's documented limit on a UserID: 32 bytes.
	MaxAccountLen = 32
	// MaxMsgKeyLen bounds the opaque MsgKey. Tencent documents no limit;
	// every key it issues is far shorter (e.g. "31906_833502_1572869830").
	MaxMsgKeyLen = 256
	// MaxNoteLen bounds the free-text RequestedBy and Reason fields.
	MaxNoteLen = 512
)

// Defaults for the options NewTask sets.
const (
	// DefaultMaxRetry is how many times a transient failure (91000, a
	// network error, a 5xx) is retried before the task is dead-lettered.
	DefaultMaxRetry = 10
	// DefaultRetention keeps a finished task's record so that queuing the
	// same recall again within this time is reported as already queued.
	DefaultRetention = 24 * time.Hour
	// DefaultTimeout bounds one attempt, including the wait for a token.
	DefaultTimeout = 5 * time.Minute
)

// Recall is the payload of a recall task. The three Tencent fields keep
// Tencent's names on the wire, so a payload reads like the API call it
// becomes.
type Recall struct {
	// SDKAppID is the Chat app the message belongs to.
	SDKAppID uint64 `json:"SDKAppID"`
	// FromAccount is the UserID of the message's sender.
	FromAccount string `json:"From_Account"`
	// ToAccount is the UserID of the message's recipient.
	ToAccount string `json:"To_Account"`
	// MsgKey identifies the message. It is opaque: only its length is checked.
	MsgKey string `json:"MsgKey"`
	// RequestedBy says who asked for the recall (a moderator, a service). Optional.
	RequestedBy string `json:"requested_by,omitempty"`
	// Reason says why (spam wave, leaked data, ...). Optional.
	Reason string `json:"reason,omitempty"`
	// Campaign names the bulk campaign the recall belongs to, if any.
	Campaign string `json:"campaign,omitempty"`
}

// FieldError says which field of a payload is wrong and how to fix it.
type FieldError struct {
	Field  string // the field's wire name, e.g. "MsgKey"
	Reason string // what is wrong and what to do
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ErrInvalid is wrapped by every validation error, so callers can test for
// bad input with errors.Is and still reach the *FieldError with errors.As.
var ErrInvalid = errors.New("invalid recall")

// Validate checks the payload against what Tencent documents: the accounts
// and MsgKey are present, valid UTF-8 and within their lengths, and hold no
// control character and no leading or trailing space (see IdentifierFault).
// Every door (the CLI, campaign files, the intake, the producer library)
// validates with it, so each accepts and refuses the same values. It
// returns nil or an error wrapping ErrInvalid and a *FieldError naming the
// first bad field.
func (r Recall) Validate() error {
	if r.SDKAppID == 0 {
		return invalid("SDKAppID", "is missing: set it to the app's SDKAppID from the Chat console")
	}
	return checkFields([]field{
		identifier("From_Account", r.FromAccount),
		identifier("To_Account", r.ToAccount),
		identifier("MsgKey", r.MsgKey),
		{"requested_by", r.RequestedBy, MaxNoteLen, false},
		{"reason", r.Reason, MaxNoteLen, false},
		{"campaign", r.Campaign, MaxNoteLen, false},
	})
}

// field is one string field of a payload to validate: an identifier
// (identifier) that must not be empty when required, or free text.
type field struct {
	name, value string
	max         int
	required    bool
}

// identifier is the identifier field name of a payload with value, its
// limit that of identifierMax.
func identifier(name, value string) field {
	limit := identifierMax(name)
	if limit == 0 {
		panic("tasks: " + name + " is not an identifier field of a payload")
	}
	return field{name, value, limit, true}
}

// identifierMax is the limit in bytes of the identifier field name of a
// payload, or 0 when name is none: the one place each limit is tied to its
// field.
func identifierMax(name string) int {
	switch name {
	case "From_Account", "To_Account":
		return MaxAccountLen
	case "MsgKey":
		return MaxMsgKeyLen
	case "GroupId":
		return MaxGroupIDLen
	case "TopicId":
		return MaxTopicIDLen
	}
	return 0
}

// checkFields checks each field's length and UTF-8, and an identifier's
// characters, and returns an error naming the first bad one.
func checkFields(fields []field) error {
	for _, f := range fields {
		if what, fix := f.fault(); what != "" {
			if fix != "" {
				what += ": " + fix
			}
			return invalid(f.name, what)
		}
	}
	return nil
}

// fault says what is wrong with f and what to do ("" when the first says
// all), or "", "" when nothing is.
func (f field) fault() (what, fix string) {
	switch {
	case f.value == "" && f.required:
		return "is empty", "give the " + describe(f.name)
	case len(f.value) > f.max:
		return fmt.Sprintf("is %d bytes long; at most %d are allowed", len(f.value), f.max), ""
	case !utf8.ValidString(f.value):
		return "is not valid UTF-8", "pass the value exactly as Tencent returned it"
	case f.required:
		return characterFault(f.value)
	}
	return "", ""
}

// IdentifierFault says what is wrong with value as the identifier field
// name of a payload ("From_Account", "To_Account", "MsgKey", "GroupId" or
// "TopicId") and what to do, or "", "" when nothing is. It is the check
// Recall.Validate and GroupRecall.Validate make of that field: present,
// within its limit (MaxAccountLen, MaxMsgKeyLen, MaxGroupIDLen,
// MaxTopicIDLen), valid UTF-8, and with no control character and no space
// at either end. A door that takes identifiers from elsewhere (the capture,
// from Tencent's callbacks) checks each with it, so that it takes exactly
// what a recall task takes. It panics for any other name: naming one is
// the caller's bug.
func IdentifierFault(name, value string) (what, fix string) {
	return identifier(name, value).fault()
}

// characterFault says what is wrong with an identifier that is valid
// UTF-8, and what to do, or "", "" when nothing is: a control character (a
// newline, a tab, NUL, DEL, U+0080-U+009F) or a leading or trailing space
// (any Unicode space) is refused rather than queued as given or trimmed.
// Tencent never issues such a value, so one is a copying mistake: queuing
// it would recall nothing, and trimming it would recall a message nobody
// named.
func characterFault(s string) (what, fix string) {
	for i, c := range s {
		if unicode.IsControl(c) {
			return fmt.Sprintf("holds the control character %U at byte %d", c, i), "pass the value exactly as Tencent returned it, on one line"
		}
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return "starts or ends with a space", "remove the spaces around the value"
	}
	return "", ""
}

func describe(field string) string {
	switch field {
	case "From_Account":
		return "UserID of the message's sender"
	case "To_Account":
		return "UserID of the message's recipient"
	case "GroupId":
		return "GroupId of the group the message was sent to"
	case "TopicId":
		return "TopicId of the topic the message was sent to"
	default:
		return "MsgKey Tencent returned when the message was sent"
	}
}

func invalid(field, reason string) error {
	return fmt.Errorf("%w: %w", ErrInvalid, &FieldError{Field: field, Reason: reason})
}

// TaskID is the deterministic asynq task ID of a recall: the same app and
// message always give the same ID, whoever asks and why, so asynq refuses a
// second copy while the first one's record exists.
func (r Recall) TaskID() string {
	return hashID(TaskIDPrefix, r.SDKAppID, r.FromAccount, r.ToAccount, r.MsgKey)
}

// hashID is prefix and the hex of the first 16 bytes of the SHA-256 of the
// app's decimal ID and each part, length-prefixed so that no two different
// lists of parts encode to the same bytes.
func hashID(prefix string, sdkAppID uint64, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(strconv.FormatUint(sdkAppID, 10)))
	for _, s := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// TaskIDPrefix starts every recall's task ID. It has no '-': asynqmon shows
// a task ID only up to its first '-', as if it were a UUID.
const TaskIDPrefix = "recall_"

// IsTaskID reports whether s has the shape of Recall.TaskID: anything else
// cannot name a recall.
func IsTaskID(s string) bool {
	if len(s) != len(TaskIDPrefix)+32 || s[:len(TaskIDPrefix)] != TaskIDPrefix {
		return false
	}
	for _, c := range s[len(TaskIDPrefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Encode validates r and returns its wire form.
func (r Recall) Encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// Decode parses and validates a payload. A payload that cannot be decoded
// is an error wrapping ErrInvalid. It decodes strictly, as the intake and
// campaign JSON Lines do (see internal/strictjson): a field given twice,
// invalid UTF-8 and a second JSON value are errors, and names match
// exactly, so a payload no producer validated cannot become another
// message's recall.
func Decode(b []byte) (Recall, error) {
	var r Recall
	if err := strictjson.Unmarshal(b, &r); err != nil {
		return Recall{}, fmt.Errorf("%w: payload is not a recall: %v", ErrInvalid, err)
	}
	return r, r.Validate()
}

// Options tunes NewTask. The zero value gives the defaults.
type Options struct {
	// Queue is the lane, QueueUrgent (default) or QueueBulk; the task goes
	// to that lane's queue of its app (AppQueue).
	Queue string
	// MaxRetry is how many transient failures the task may have before it
	// is dead-lettered. Default DefaultMaxRetry.
	MaxRetry int
	// Retention keeps the finished task's record. Default DefaultRetention.
	Retention time.Duration
}

// NewTask validates r and returns the asynq task that recalls it, with its
// deterministic ID, queue, retry budget, timeout and retention set.
//
// asynq's MaxRetry is the budget itself, so what asynqmon and asynq's CLI
// show (Max Retry, Retried) is the truth. asynq archives a task on its last
// attempt whatever the error; the worker puts back one that was archived
// there for a reason that is not its own (see package worker).
func NewTask(r Recall, o Options) (*asynq.Task, error) {
	payload, err := r.Encode()
	if err != nil {
		return nil, err
	}
	return newTask(TypeRecall, payload, r.TaskID(), r.SDKAppID, o)
}

// Rebuild returns the task of type typeName with payload and id, as
// NewTask or NewGroupTask made it, for the app sdkAppID with o: the
// worker moves another app's task to that app's queue with it.
func Rebuild(typeName string, payload []byte, id string, sdkAppID uint64, o Options) (*asynq.Task, error) {
	return newTask(typeName, payload, id, sdkAppID, o)
}

// newTask returns the asynq task of a validated payload with its ID, its
// app's queue of o's lane, the retry budget and retention of o (defaults
// applied) and DefaultTimeout.
func newTask(typeName string, payload []byte, id string, sdkAppID uint64, o Options) (*asynq.Task, error) {
	if o.Queue == "" {
		o.Queue = QueueUrgent
	}
	if o.Queue != QueueUrgent && o.Queue != QueueBulk {
		return nil, fmt.Errorf("queue %q: use %q or %q", o.Queue, QueueUrgent, QueueBulk)
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = DefaultMaxRetry
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	return asynq.NewTask(typeName, payload,
		asynq.TaskID(id),
		asynq.Queue(AppQueue(o.Queue, sdkAppID)),
		asynq.MaxRetry(o.MaxRetry),
		asynq.Timeout(DefaultTimeout),
		asynq.Retention(o.Retention),
	), nil
}

// RetryBudget returns the number of transient failures a task may have,
// given asynq's MaxRetry for it: the same number (see NewTask).
func RetryBudget(asynqMaxRetry int) int { return max(asynqMaxRetry, 0) }
