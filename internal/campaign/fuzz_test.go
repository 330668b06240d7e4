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
// panic and must end, and every line of the input must be accounted for:
// the records (rows, rejects, blank lines) follow each other line after
// line, from the header to the input's last line, each line in exactly one.
// A row (queued, or a duplicate the feeder finds) or a reject names the line
// it starts on, which an operator uses to find it. A quote left open must not
// take more than maxRecordLines lines with it. A row is of one kind and
// holds only that kind's fields.
func FuzzReadInput(f *testing.F) {
	f.Add([]byte("From_Account,To_Account,MsgKey\na,b,\"c\nd,e,f\n"), false)
	f.Add([]byte("MsgKey,From_Account,To_Account,note\n1,a,b,\"x\n\ny\"\n\n2,c,\"d\n"), false)
	f.Add([]byte("{\"From_Account\":\"a\",\"To_Account\":\"b\",\"MsgKey\":\"k\",\"MsgKey\":\"k\"}\n\n{\n"), true)
	f.Add([]byte("GroupId,MsgSeq,TopicId\n@TGS#1,1,\n@TGS#1,x,\"t\n,2\n"), false)
	f.Add([]byte("From_Account,To_Account,MsgKey,GroupId,TopicId,MsgSeq\na,b,k,,,\n,,,g,,1\na,,,g,,\n"), false)
	f.Add([]byte("{\"GroupId\":\"g\",\"MsgSeq\":1}\n{\"GroupId\":\"g\",\"MsgSeq\":1e3,\"From_Account\":\"a\"}\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, jsonl bool) {
		format := FormatCSV
		if jsonl {
			format = FormatJSONL
		}
		rr, err := newRecordReader(bufio.NewReader(bytes.NewReader(data)), format)
		if err != nil && format == FormatCSV {
			// A bad header is reported before any row; read the rest under a good one.
			data = append([]byte("From_Account,To_Account,MsgKey\n"), data...)
			rr, err = newRecordReader(bufio.NewReader(bytes.NewReader(data)), format)
		}
		if err != nil {
			t.Fatalf("a good header was refused: %v", err)
		}
		total := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			total++
		}
		covered := 0 // lines accounted for so far
		if c, ok := rr.(*csvReader); ok {
			covered = c.header.last
		}
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("more records than input bytes: the reader does not end")
			}
			rec, err := rr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reading from memory failed: %v", err)
			}
			if rec.line != covered+1 || rec.last < rec.line {
				t.Fatalf("record of lines %d-%d after line %d: lines skipped or read twice", rec.line, rec.last, covered)
			}
			if rec.last-rec.line >= maxRecordLines {
				t.Fatalf("record of lines %d-%d: more than %d lines", rec.line, rec.last, maxRecordLines)
			}
			if rec.reject != "" && rec.last != rec.line {
				t.Fatalf("a reject of lines %d-%d: a bad record must give back the lines after its first", rec.line, rec.last)
			}
			if a, b, c := rec.row.fields(); rec.reject == "" && !rec.blank && rec.row != rowOf(rec.row.kind, a, b, c) {
				t.Fatalf("row %+v of line %d mixes the fields of two kinds", rec.row, rec.line)
			}
			covered = rec.last
		}
		if covered != total {
			t.Fatalf("records account for %d lines of %d", covered, total)
		}
	})
}
