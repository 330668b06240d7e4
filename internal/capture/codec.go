package capture

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
)

// Kind is what a captured message is.
type Kind uint8

// Kinds.
const (
	// C2C is a one-to-one message: recalled with admin_msgwithdraw by
	// (From_Account, To_Account, MsgKey).
	C2C Kind = iota + 1
	// Group is a group message: recalled by (GroupId, MsgSeq), with a
	// group recall task type that recallq does not have yet.
	Group
)

func (k Kind) String() string {
	switch k {
	case C2C:
		return "c2c"
	case Group:
		return "group"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Message is one captured message, as a query returns it.
type Message struct {
	Kind Kind
	// From is the sender's UserID.
	From string
	// To is the recipient's UserID (C2C only).
	To string
	// MsgKey identifies a C2C message for admin_msgwithdraw.
	MsgKey string
	// GroupID and MsgSeq identify a group message.
	GroupID string
	MsgSeq  uint64
	// Time is Tencent's MsgTime, in Unix seconds.
	Time int64
}

// An entry is stored as one element of a sender's bucket list. The sender
// and the bucket's start are in the key, so an entry carries only what
// differs between the sender's messages in the bucket:
//
//	tag byte
//	uvarint  MsgTime - bucket start (seconds)
//	C2C, tagC2C:    uvarint len(To), To, uvarint MsgSeq, uvarint MsgRandom
//	                (the MsgKey is "{MsgSeq}_{MsgRandom}_{MsgTime}", rebuilt on read)
//	C2C, tagC2CKey: uvarint len(To), To, uvarint len(MsgKey), MsgKey
//	                (a MsgKey that is not built from the callback's three numbers)
//	Group, tagGroup: uvarint len(GroupId), GroupId, uvarint MsgSeq
//
// A C2C message to a 10-byte UserID takes about 20 bytes.
const (
	tagC2C    byte = 1
	tagC2CKey byte = 2
	tagGroup  byte = 3
)

var errCorrupt = errors.New("capture: corrupt index entry")

// appendEntry appends m's encoding to dst; start is its bucket's start.
func appendEntry(dst []byte, m Message, start int64) []byte {
	off := uint64(max(m.Time-start, 0))
	switch m.Kind {
	case Group:
		dst = append(dst, tagGroup)
		dst = binary.AppendUvarint(dst, off)
		dst = appendString(dst, m.GroupID)
		return binary.AppendUvarint(dst, m.MsgSeq)
	default:
		if seq, rnd, ok := splitMsgKey(m.MsgKey, m.Time); ok {
			dst = append(dst, tagC2C)
			dst = binary.AppendUvarint(dst, off)
			dst = appendString(dst, m.To)
			dst = binary.AppendUvarint(dst, seq)
			return binary.AppendUvarint(dst, rnd)
		}
		dst = append(dst, tagC2CKey)
		dst = binary.AppendUvarint(dst, off)
		dst = appendString(dst, m.To)
		return appendString(dst, m.MsgKey)
	}
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// splitMsgKey returns the MsgSeq and MsgRandom of a MsgKey that reads
// exactly "{MsgSeq}_{MsgRandom}_{t}" in canonical decimal, so that
// rebuilding it gives back the same string.
func splitMsgKey(k string, t int64) (seq, rnd uint64, ok bool) {
	a, rest, ok1 := strings.Cut(k, "_")
	b, c, ok2 := strings.Cut(rest, "_")
	if !ok1 || !ok2 || c != strconv.FormatInt(t, 10) {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(a, 10, 64)
	rnd, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || strconv.FormatUint(seq, 10) != a || strconv.FormatUint(rnd, 10) != b {
		return 0, 0, false
	}
	return seq, rnd, true
}

// decodeEntry decodes an entry of sender's bucket starting at start.
func decodeEntry(b []byte, sender string, start int64) (Message, error) {
	if len(b) == 0 {
		return Message{}, errCorrupt
	}
	tag := b[0]
	b = b[1:]
	off, b, err := readUvarint(b)
	if err != nil {
		return Message{}, err
	}
	m := Message{From: sender, Time: start + int64(off)}
	switch tag {
	case tagC2C:
		m.Kind = C2C
		if m.To, b, err = readString(b); err != nil {
			return Message{}, err
		}
		var seq, rnd uint64
		if seq, b, err = readUvarint(b); err != nil {
			return Message{}, err
		}
		if rnd, b, err = readUvarint(b); err != nil {
			return Message{}, err
		}
		m.MsgKey = strconv.FormatUint(seq, 10) + "_" + strconv.FormatUint(rnd, 10) + "_" + strconv.FormatInt(m.Time, 10)
		m.MsgSeq = seq
	case tagC2CKey:
		m.Kind = C2C
		if m.To, b, err = readString(b); err != nil {
			return Message{}, err
		}
		if m.MsgKey, b, err = readString(b); err != nil {
			return Message{}, err
		}
	case tagGroup:
		m.Kind = Group
		if m.GroupID, b, err = readString(b); err != nil {
			return Message{}, err
		}
		if m.MsgSeq, b, err = readUvarint(b); err != nil {
			return Message{}, err
		}
	default:
		return Message{}, errCorrupt
	}
	if len(b) != 0 {
		return Message{}, errCorrupt
	}
	return m, nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return v, b[n:], nil
}

func readString(b []byte) (string, []byte, error) {
	l, b, err := readUvarint(b)
	if err != nil || uint64(len(b)) < l {
		return "", nil, errCorrupt
	}
	return string(b[:l]), b[l:], nil
}
