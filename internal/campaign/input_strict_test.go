package campaign

import (
	"bufio"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Issue 10, item 1: encoding/csv read to the end of the file looking for
// the closing quote of line 4, queued 2 rows and said "import complete".
func TestStrayQuoteRejectsItsLineAndQueuesTheRest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b strings.Builder
	b.WriteString("From_Account,To_Account,MsgKey\n")
	const rows = 10000
	for i := range rows {
		if i == 2 { // line 4
			b.WriteString("u2,\"v2,2_2_2\n")
			continue
		}
		fmt.Fprintf(&b, "u%d,v%d,%d_1_1\n", i, i, i)
	}
	queued, rejects, res := readAll(t, e, "stray", "x.csv", b.String())
	if len(queued) != rows-1 || res.New != rows-1 || res.Rejected != 1 || res.Lines != rows+1 {
		t.Fatalf("queued %d, result %+v; want %d queued, 1 rejected, %d lines read", len(queued), res.ImportProgress, rows-1, rows+1)
	}
	if len(rejects) != 1 || rejects[0].Line != 4 || !strings.Contains(rejects[0].Reason, "not closed on its line") {
		t.Fatalf("rejects %+v; want line 4, a quote not closed on its line", rejects)
	}
	if queued[2] != (c2c("u3", "v3", "3_1_1")) {
		t.Fatalf("the row after the stray quote is %+v, want u3", queued[2])
	}
}

func TestQuotedFieldIsBoundedByLinesAndBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := "From_Account,To_Account,MsgKey,note\n" + // 1
		"a1,b1,1_1_1,\"two\nlines\"\n" + // 2-3: a multi-line note is fine
		"a2,b2,2_2_2,\"never closed\n" + // 4: an unterminated note
		strings.Repeat("a3,b3,3_3_3,x\n", maxRecordLines+5) + // 5-109
		"a4,b4,4_4_4,\"" + strings.Repeat("y", maxLine) + "\"\n" + // 110: too long
		"a5,b5,5_5_5,\"" + strings.Repeat("z\n", 10) + "\"\n" // 111-121: fine
	got, rejects, res := readAll(t, e, "bounds", "x.csv", content)
	want := []row{c2c("a1", "b1", "1_1_1")}
	for range maxRecordLines + 5 {
		want = append(want, c2c("a3", "b3", "3_3_3"))
	}
	want = append(want, c2c("a5", "b5", "5_5_5"))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("queued %d rows, want %d", len(got), len(want))
	}
	if len(rejects) != 2 || rejects[0].Line != 4 || !strings.Contains(rejects[0].Reason, fmt.Sprintf("not closed within %d lines", maxRecordLines)) ||
		rejects[1].Line != 110 || !strings.Contains(rejects[1].Reason, fmt.Sprintf("longer than %d bytes", maxLine)) {
		t.Fatalf("rejects %+v", rejects)
	}
	if res.Lines != 121 {
		t.Errorf("read %d lines, want 121", res.Lines)
	}
}

// Issue 10, item 4: a 10 MB field was read whole and copied whole into the
// rejects file.
func TestHugeFieldIsRejectedAndItsEchoTruncated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	huge := strings.Repeat("k", 10<<20)
	content := "From_Account,To_Account,MsgKey\n" +
		"a,b," + huge + "\n" +
		"a,b,\"" + huge + "\"\n" +
		"a,b," + strings.Repeat("m", 1000) + "\n" + // within the line bound, but too long a MsgKey
		"a,b,1_1_1\n"
	got, rejects, res := readAll(t, e, "huge", "x.csv", content)
	if !reflect.DeepEqual(got, []row{c2c("a", "b", "1_1_1")}) || res.Lines != 5 {
		t.Fatalf("queued %+v, %d lines; want the last row, 5 lines", got, res.Lines)
	}
	if len(rejects) != 3 {
		t.Fatalf("rejects %d, want 3", len(rejects))
	}
	for _, r := range rejects {
		if n := len(r.FromAccount) + len(r.ToAccount) + len(r.MsgKey); n > 3*maxEcho {
			t.Errorf("line %d: echoes %d bytes of the fields", r.Line, n)
		}
	}
	if !strings.Contains(rejects[2].Reason, "MsgKey: is 1000 bytes long") || !strings.HasPrefix(rejects[2].MsgKey, "mmm") {
		t.Errorf("reject %+v", rejects[2])
	}
}

func TestCSVRefusesSpacesAndControlCharactersLikeEveryDoor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := "From_Account,To_Account,MsgKey\n" +
		" u5 ,v,1_1_1\n" +
		"u,v,\"multi\nline\"\n" +
		"u,v,\"1\xff\"\n" +
		"u,v,2_2_2\n"
	got, rejects, res := readAll(t, e, "spaces", "x.csv", content)
	if !reflect.DeepEqual(got, []row{c2c("u", "v", "2_2_2")}) {
		t.Fatalf("queued %+v", got)
	}
	want := map[int]string{2: "From_Account: starts or ends with a space", 3: "not closed on its line", 4: `bare "`, 5: "MsgKey: is not valid UTF-8"}
	for _, r := range rejects {
		if !strings.Contains(r.Reason, want[r.Line]) || want[r.Line] == "" {
			t.Errorf("reject line %d %q; want %q", r.Line, r.Reason, want[r.Line])
		}
	}
	if len(rejects) != 4 || res.Lines != 6 {
		t.Fatalf("rejects %+v, %d lines", rejects, res.Lines)
	}
}

// Issue 10, items 2 and 3: JSON Lines kept the last of two MsgKeys, matched
// from_account regardless of case and stored U+FFFD for invalid UTF-8.
func TestJSONLinesIsAsStrictAsTheIntake(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := `{"From_Account":"a","To_Account":"b","MsgKey":"k1","MsgKey":"k2"}` + "\n" + // 1
		`{"from_account":"a","To_Account":"b","MsgKey":"k3"}` + "\n" + // 2
		`{"From_Account":"a","To_Account":"b","MsgKey":"k4","msgkey":"k5"}` + "\n" + // 3
		"{\"From_Account\":\"a\",\"To_Account\":\"b\",\"MsgKey\":\"\xff\xfe\"}\n" + // 4
		`{"From_Account":"a","To_Account":"b","MsgKey":"\udc00"}` + "\n" + // 5
		`{"From_Account":" a ","To_Account":"b","MsgKey":"k6"}` + "\n" + // 6
		`{"From_Account":"a","To_Account":"b","MsgKey":"multi\nline"}` + "\n" + // 7
		`{"From_Account":"a","To_Account":"b","MsgKey":"k7","note":"x"}` + "\n" // 8
	got, rejects, res := readAll(t, e, "strict-jsonl", "x.jsonl", content)
	if !reflect.DeepEqual(got, []row{c2c("a", "b", "k7")}) {
		t.Fatalf("queued %+v", got)
	}
	want := map[int]string{
		1: "MsgKey: is given twice",
		2: "from_account: names are case-sensitive: write From_Account",
		3: "msgkey: names are case-sensitive: write MsgKey",
		4: "MsgKey: is not valid UTF-8",
		5: "MsgKey: is not valid UTF-8",
		6: "From_Account: starts or ends with a space",
		7: "MsgKey: holds the control character U+000A",
	}
	if len(rejects) != len(want) || res.Lines != 8 {
		t.Fatalf("rejects %+v, %d lines", rejects, res.Lines)
	}
	for _, r := range rejects {
		if !strings.Contains(r.Reason, want[r.Line]) {
			t.Errorf("reject line %d %q; want %q", r.Line, r.Reason, want[r.Line])
		}
	}
}

// failingReader gives its data, then fails.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// Where the reader cannot go on (the input fails), the import stops with an
// error that says which line it got to; it never reports success.
func TestInputThatFailsStopsTheImportNamingTheLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	broken := errors.New("connection reset")
	in, err := OpenInput(&failingReader{data: []byte("From_Account,To_Account,MsgKey\na,b,1_1_1\na,b,2_2_2\na,b,3_3"), err: broken}, "-", FormatCSV)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(t.Context(), ImportConfig{Redis: e.rdb, Name: "broken", SDKAppID: testApp}, in)
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "line 4: connection reset") || !strings.Contains(err.Error(), "nothing after line 3 was read") {
		t.Fatalf("err = %v; want the input's error naming line 4", err)
	}
	if res.New != 2 || res.Lines != 3 {
		t.Fatalf("result %+v; want the 2 rows before the failure kept, 3 lines read", res.ImportProgress)
	}
}

func TestLineBoundIsExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		tooLong bool
	}{
		{"at the bound", strings.Repeat("x", maxLine) + "\r\n", false},
		{"at the bound, last line", strings.Repeat("x", maxLine), false},
		{"one over", strings.Repeat("x", maxLine+1) + "\n", true},
		{"one over, last line", strings.Repeat("x", maxLine+1), true},
		{"one over with CR", strings.Repeat("x", maxLine+1) + "\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if strings.HasSuffix(in, "\n") {
				in += "next\n"
			}
			lr := &lineReader{br: bufio.NewReaderSize(strings.NewReader(in), 16)}
			ln, err := lr.next()
			if err != nil || ln.tooLong != tc.tooLong || (!tc.tooLong && len(ln.text) != maxLine) {
				t.Fatalf("line %d: %d bytes, too long %v, %v", ln.no, len(ln.text), ln.tooLong, err)
			}
			if !strings.HasSuffix(tc.in, "\n") {
				return
			}
			if ln, err := lr.next(); err != nil || string(ln.text) != "next" || ln.no != 2 {
				t.Fatalf("the next line is %q (line %d), %v", ln.text, ln.no, err)
			}
		})
	}
}
