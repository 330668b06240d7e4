package campaign

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadInput (seeds in testdata/fuzz/FuzzReadInput) feeds arbitrary
// bytes to the CSV and JSON Lines readers of campaign start. They must never
// panic, must end, and every record must carry a line number that never goes
// back: an operator finds a rejected row by it.
func FuzzReadInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, jsonl bool) {
		format := FormatCSV
		if jsonl {
			format = FormatJSONL
		}
		rr, err := newRecordReader(bufio.NewReader(bytes.NewReader(data)), format)
		if err != nil {
			return // a bad header: reported before any row
		}
		last := 0
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("more records than input bytes: the reader does not end")
			}
			rec, err := rr.next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				return
			}
			if rec.line < 1 || rec.line < last {
				t.Fatalf("record line %d after line %d", rec.line, last)
			}
			last = rec.line
		}
	})
}
