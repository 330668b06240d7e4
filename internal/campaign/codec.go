package campaign

import (
	"encoding/binary"
	"errors"
)

// Rows are stored compactly: each field as a uvarint length and its bytes.
// A typical row (two short UserIDs and a MsgKey) takes about 45 bytes.

var errCorruptRow = errors.New("corrupt stored row")

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

// row is one message of a campaign.
type row struct{ from, to, msgKey string }

func (r row) appendTo(dst []byte) []byte { return appendFields(dst, r.from, r.to, r.msgKey) }

func (r row) encode() string { return string(r.appendTo(nil)) }

func decodeRow(s string) (row, error) {
	f, err := decodeFields([]byte(s), 3)
	if err != nil {
		return row{}, err
	}
	return row{from: f[0], to: f[1], msgKey: f[2]}, nil
}
