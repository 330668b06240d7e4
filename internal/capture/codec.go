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
	// Group is a group message: recalled with group_msg_recall by
	// (GroupId, TopicId, MsgSeq), TopicId for a topic's message only.
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
	// GroupID and MsgSeq identify a group message; TopicID, when set,
	// is the topic of a community it was sent to, whose MsgSeqs are the
	// topic's own: the same MsgSeq in the community itself or in another
	// topic is another message.
	GroupID string
	TopicID string
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
//	Group, tagGroupTopic: as tagGroup, then uvarint n, uvarint len(rest), rest
//	                (a topic's message: TopicId is GroupId[:n] + rest; a
//	                TopicId starts with its community's GroupId, which is
//	                not stored twice)
//
// A C2C message to a 10-byte UserID takes about 20 bytes. A message in a
// community itself is a tagGroup entry, as before topics were kept;
// entries written before are read unchanged.
const (
	tagC2C        byte = 1
	tagC2CKey     byte = 2
	tagGroup      byte = 3
	tagGroupTopic byte = 4
)

var errCorrupt = errors.New("capture: corrupt index entry")

// appendEntry appends m's encoding to dst; start is its bucket's start.
func appendEntry(dst []byte, m Message, start int64) []byte {
	off := uint64(max(m.Time-start, 0))
	switch m.Kind {
	case Group:
		if m.TopicID == "" {
			dst = append(dst, tagGroup)
		} else {
			dst = append(dst, tagGroupTopic)
		}
		dst = binary.AppendUvarint(dst, off)
		dst = appendString(dst, m.GroupID)
		dst = binary.AppendUvarint(dst, m.MsgSeq)
		if m.TopicID == "" {
			return dst
		}
		n := commonPrefix(m.GroupID, m.TopicID)
		dst = binary.AppendUvarint(dst, uint64(n))
		return appendString(dst, m.TopicID[n:])
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

// commonPrefix is how many bytes a and b start with in common.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
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
	case tagGroup, tagGroupTopic:
		m.Kind = Group
		if m.GroupID, b, err = readString(b); err != nil {
			return Message{}, err
		}
		if m.MsgSeq, b, err = readUvarint(b); err != nil {
			return Message{}, err
		}
		if tag == tagGroupTopic {
			var n uint64
			var rest string
			if n, b, err = readUvarint(b); err != nil {
				return Message{}, err
			}
			if rest, b, err = readString(b); err != nil {
				return Message{}, err
			}
			if n > uint64(len(m.GroupID)) {
				return Message{}, errCorrupt
			}
			if m.TopicID = m.GroupID[:n] + rest; m.TopicID == "" {
				return Message{}, errCorrupt
			}
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
