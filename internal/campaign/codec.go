package campaign

import (
	"encoding/binary"
	"errors"
)

// Rows are stored compactly: each field as a uvarint length and its bytes.
// A typical one-to-one row (two short UserIDs and a MsgKey) takes about 45
// bytes.
//
// A row of another kind starts with kindMark and a byte naming its kind,
// then its fields. A one-to-one row has no mark: it is stored exactly as
// before kinds existed, so rows already in Redis (backlogs, windows, dead
// letters, audits) still decode, and an interrupted import's checkpoint
// CRC still matches. The mark cannot start a one-to-one row: its first
// field, From_Account, is never empty, so its length's uvarint never
// begins with a zero byte.

var errCorruptRow = errors.New("corrupt stored row")

// kindMark starts a stored row (or audit row) of a kind other than kindC2C.
const kindMark = 0

// appendKind appends the mark of kind k to dst (nothing for kindC2C).
func appendKind(dst []byte, k kind) []byte {
	if k == kindC2C {
		return dst
	}
	return append(dst, kindMark, byte(k))
}

// cutKind reads the kind a stored row starts with and returns the rest.
func cutKind(b []byte) (kind, []byte, error) {
	if len(b) == 0 || b[0] != kindMark {
		return kindC2C, b, nil
	}
	if len(b) < 2 || kind(b[1]) != kindGroup {
		return 0, nil, errCorruptRow
	}
	return kind(b[1]), b[2:], nil
}

// appendFields appends the encoding of fields to dst.
func appendFields(dst []byte, fields ...string) []byte {
	for _, f := range fields {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// decodeFields decodes exactly n fields from b.
func decodeFields(b []byte, n int) ([]string, error) {
	out := make([]string, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return nil, errCorruptRow
		}
		out = append(out, string(b[k:k+int(l)]))
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, errCorruptRow
	}
	return out, nil
}

// appendTo appends the row's stored form to dst.
func (r row) appendTo(dst []byte) []byte {
	a, b, c := r.fields()
	return appendFields(appendKind(dst, r.kind), a, b, c)
}

func (r row) encode() string { return string(r.appendTo(nil)) }

func decodeRow(s string) (row, error) {
	k, rest, err := cutKind([]byte(s))
	if err != nil {
		return row{}, err
	}
	f, err := decodeFields(rest, 3)
	if err != nil {
		return row{}, err
	}
	return rowOf(k, f[0], f[1], f[2]), nil
}
