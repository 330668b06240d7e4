package campaign

import (
	"errors"
	"testing"
)

// TestStoredRowsOfBeforeKindsDecodeAsOneToOne pins the stored form: a row
// written before rows had a kind (in a backlog, window or audit in Redis
// now) decodes as the one-to-one row it was, a one-to-one row is still
// written byte for byte as then (an interrupted import's checkpoint CRC
// depends on it), and a group row comes back as itself.
func TestStoredRowsOfBeforeKindsDecodeAsOneToOne(t *testing.T) {
	t.Parallel()
	const old = "\x02u1\x02v1\x111_1001_1700000000" // written by the codec before kinds
	r, err := decodeRow(old)
	if err != nil || r != c2c("u1", "v1", "1_1001_1700000000") {
		t.Fatalf("old row decoded as %+v, %v", r, err)
	}
	if got := r.encode(); got != old {
		t.Fatalf("a one-to-one row is now written %q, was %q", got, old)
	}
	const oldAudit = "\x0d1700000000000\x02u1\x02v1\x111_1001_1700000000\x0520022\x00"
	a, err := decodeAudit(oldAudit)
	if err != nil || a.row != r || a.code != "20022" || a.at.UnixMilli() != 1700000000000 {
		t.Fatalf("old audit row decoded as %+v, %v", a, err)
	}
	g := groupRow("@TGS#1", "@TGS#1@TOPIC#_t", 42)
	back, err := decodeRow(g.encode())
	if err != nil || back != g {
		t.Fatalf("group row came back as %+v, %v", back, err)
	}
	for _, bad := range []string{"\x00", "\x00\x07\x01a\x01b\x011", g.encode() + "x"} {
		if _, err := decodeRow(bad); !errors.Is(err, errCorruptRow) {
			t.Errorf("decodeRow(%q) = %v, want errCorruptRow", bad, err)
		}
	}
}
