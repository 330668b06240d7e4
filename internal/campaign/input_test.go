package campaign

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFormatIsDecidedByFlagExtensionThenContent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, source, content string
		flag                  Format
		want                  Format
		how                   string
	}{
		{"csv extension", "x.csv", `{"a":1}`, FormatAuto, FormatCSV, "extension .csv"},
		{"jsonl extension", "x.jsonl", "From_Account,To_Account,MsgKey\n", FormatAuto, FormatJSONL, "extension .jsonl"},
		{"ndjson extension", "X.NDJSON", "", FormatAuto, FormatJSONL, "extension .ndjson"},
		{"stdin json", "-", "\n  {\"From_Account\":\"a\"}\n", FormatAuto, FormatJSONL, "content"},
		{"stdin json after a BOM", "-", "\ufeff{}", FormatAuto, FormatJSONL, "content"},
		{"stdin csv", "-", "From_Account,To_Account,MsgKey\n", FormatAuto, FormatCSV, "content"},
		{"unknown extension, json content", "rows.txt", "{}", FormatAuto, FormatJSONL, "content"},
		{"flag wins", "x.csv", "", FormatJSONL, FormatJSONL, "as asked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, how, err := detectFormat(bufio.NewReader(strings.NewReader(tc.content)), tc.source, tc.flag)
			if err != nil || got != tc.want || !strings.Contains(how, tc.how) {
				t.Fatalf("= %s, %q, %v; want %s, %q", got, how, err, tc.want, tc.how)
			}
		})
	}
}

func TestCSVHeaderMustNameTheColumnsOfAKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, header string
		want         string // "" = accepted
	}{
		{"exact", "From_Account,To_Account,MsgKey", ""},
		{"any order, extra column, BOM, spaces", "\ufeffMsgKey, note ,To_Account , From_Account", ""},
		{"missing MsgKey", "From_Account,To_Account,Msg_Key", "no column MsgKey"},
		{"wrong case", "from_account,To_Account,MsgKey", "no column From_Account"},
		{"twice", "From_Account,To_Account,MsgKey,MsgKey", `column "MsgKey" twice`},
		{"empty input", "", "the input is empty"},
		{"group", "GroupId,MsgSeq", ""},
		{"group with a topic, any order", "TopicId,MsgSeq,note,GroupId", ""},
		{"group without MsgSeq", "GroupId,TopicId,Msg_Seq", "no column MsgSeq: a file of group messages"},
		{"both kinds, as an export", strings.Join(ExportHeader, ","), ""},
		{"one-to-one, a GroupId column among the others", "From_Account,To_Account,MsgKey,GroupId", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenInput(strings.NewReader(tc.header+"\n"), "x.csv", FormatAuto)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want ErrBadInput saying %q", err, tc.want)
			}
		})
	}
}

// readAll imports content and returns the rows queued and the rejects.
func readAll(t *testing.T, e *env, name, source, content string) ([]row, []Reject, ImportResult) {
	t.Helper()
	in, err := OpenInput(strings.NewReader(content), source, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var rejects []Reject
	res, err := Import(context.Background(), ImportConfig{Redis: e.rdb, Name: name, SDKAppID: testApp,
		Rejects: func(r Reject) error { rejects = append(rejects, r); return nil }}, in)
	if err != nil {
		t.Fatal(err)
	}
	return backlogRows(t, e, name), rejects, res
}

func backlogRows(t *testing.T, e *env, name string) []row {
	t.Helper()
	raw, err := e.rdb.LRange(context.Background(), keysFor(name).backlog, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []row
	for _, s := range raw {
		r, err := decodeRow(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestCSVRowsKeepTheirLineNumbersAndRejectsSayWhy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := "MsgKey,From_Account,To_Account\n" + // line 1
		"1_1_1,alice,bob\n" + // 2
		"\"2_2\n_2\",carol,dave\n" + // 3-4: a quoted MsgKey spanning two lines: each line a reject
		"3_3_3,erin\n" + // 5: short
		",frank,grace\n" + // 6: empty MsgKey
		"4_4_4," + strings.Repeat("x", 33) + ",heidi\n" + // 7: account too long
		"5_5_5,iv\"an,judy\n" + // 8: bare quote
		"\n" + // 9: blank, skipped
		"6_6_6,mallory,\"ni,ck\"\n" // 10
	rows, rejects, res := readAll(t, e, "csv-lines", "x.csv", content)
	wantRows := []row{c2c("alice", "bob", "1_1_1"), c2c("mallory", "ni,ck", "6_6_6")}
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("queued %q, want %q", rows, wantRows)
	}
	type rej struct {
		line   int
		reason string
	}
	want := []rej{{3, "a quoted MsgKey opened on line 3 is not closed on its line"}, {4, `bare " in a field`},
		{5, "has 2 fields; the header names 3"}, {6, "MsgKey: is empty"}, {7, "From_Account: is 33 bytes long"}, {8, "not valid CSV"}}
	if len(rejects) != len(want) {
		t.Fatalf("rejects = %+v, want %d", rejects, len(want))
	}
	for i, w := range want {
		if rejects[i].Line != w.line || !strings.Contains(rejects[i].Reason, w.reason) {
			t.Errorf("reject %d = line %d %q, want line %d %q", i, rejects[i].Line, rejects[i].Reason, w.line, w.reason)
		}
	}
	if res.New != 2 || res.Rejected != 6 || res.Records != 8 || res.Lines != 10 {
		t.Errorf("result %+v: want 2 new, 6 rejected, 8 records, 10 lines", res)
	}
}

func TestJSONLinesRowsAndRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := `{"From_Account":"alice","To_Account":"bob","MsgKey":"1_1_1"}` + "\n" + // 1
		"\n" + // 2: blank
		`{"From_Account":"carol","To_Account":"dave","MsgKey":12}` + "\n" + // 3: a number
		`{"From_Account":"erin","To_Account":"frank"` + "\n" + // 4: broken
		`["x"]` + "\n" + // 5: not an object
		`{"From_Account":"grace","To_Account":"heidi","MsgKey":""}` + "\n" + // 6: empty
		`{"From_Account":"ivan","To_Account":"judy","MsgKey":"2_2_2","extra":true}` + "\n" + // 7
		`{"From_Account":"` + strings.Repeat("y", maxLine) + `"}` + "\n" + // 8: too long
		`{"From_Account":"mallory","To_Account":"nick","MsgKey":"3_3_3"}` // 9: no final newline
	rows, rejects, _ := readAll(t, e, "jsonl-lines", "-", content)
	wantRows := []row{c2c("alice", "bob", "1_1_1"), c2c("ivan", "judy", "2_2_2"), c2c("mallory", "nick", "3_3_3")}
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("queued %q, want %q", rows, wantRows)
	}
	wantLines := map[int]string{3: "MsgKey: want a string, got a JSON number", 4: "not valid JSON", 5: "not a JSON object", 6: "MsgKey: is empty", 8: "longer than"}
	if len(rejects) != len(wantLines) {
		t.Fatalf("rejects = %+v", rejects)
	}
	for _, r := range rejects {
		if w, ok := wantLines[r.Line]; !ok || !strings.Contains(r.Reason, w) {
			t.Errorf("reject line %d %q; want %q", r.Line, r.Reason, w)
		}
	}
}

func TestRejectsFileListsEachRejectWithItsFields(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.rejects.csv")
	rf := &RejectsFile{Path: path}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a clean import left a rejects file: %v", err)
	}
	rf = &RejectsFile{Path: path}
	for _, r := range []Reject{{Line: 7, Reason: "MsgKey: is empty", FromAccount: "a", ToAccount: "b"}, {Line: 9, Reason: "not valid CSV: x, y"},
		{Line: 11, Reason: "MsgSeq: is missing or 0", GroupID: "@TGS#1", MsgSeq: "0"}} {
		if err := rf.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{RejectsHeader, {"a", "b", "", "7", "MsgKey: is empty", "", "", ""}, {"", "", "", "9", "not valid CSV: x, y", "", "", ""},
		{"", "", "", "11", "MsgSeq: is missing or 0", "'@TGS#1", "", "0"}} // neutralised; the reader takes the quote off
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rejects file = %q, want %q", got, want)
	}
	if DefaultRejectsPath("c", "/data/in.csv") != "/data/c.rejects.csv" || DefaultRejectsPath("c", "-") != "c.rejects.csv" {
		t.Fatal("default rejects path is not beside the input (or in the working directory for stdin)")
	}
}

// TestRowKindIsDecidedByTheColumnsItFills reads a CSV file naming both
// kinds' columns (an export, a rejects file) and JSON Lines: each row is
// the kind whose fields it gives, a row giving both is rejected.
func TestRowKindIsDecidedByTheColumnsItFills(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	both := "gives both a one-to-one message"
	for _, tc := range []struct {
		name, source, content string
		rejects               map[int]string
	}{
		{"csv", "x.csv", strings.Join(RejectsHeader, ",") + "\n" +
			"a,b,1_1_1,2,why,,,\n" + // 2
			",,,3,why,@TGS#1,,5\n" + // 3
			"a,b,1_1_1,4,why,@TGS#1,,5\n", // 4
			map[int]string{4: both}},
		{"jsonl", "x.jsonl", `{"From_Account":"a","To_Account":"b","MsgKey":"1_1_1"}` + "\n" +
			`{"GroupId":"@TGS#1","MsgSeq":5}` + "\n" +
			`{"From_Account":"a","GroupId":"@TGS#1","MsgSeq":5}` + "\n" +
			`{"GroupId":"@TGS#1","MsgSeq":5.5}` + "\n" +
			`{"GroupId":"@TGS#1","MsgSeq":true}` + "\n",
			map[int]string{3: both, 4: `MsgSeq: "5.5" is not a whole number`, 5: "MsgSeq: want a number or a string of digits, got a JSON boolean"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, rejects, _ := readAll(t, e, "kinds-"+tc.name, tc.source, tc.content)
			want := []row{c2c("a", "b", "1_1_1"), groupRow("@TGS#1", "", 5)}
			if !reflect.DeepEqual(rows, want) {
				t.Errorf("queued %+v, want %+v", rows, want)
			}
			if len(rejects) != len(tc.rejects) {
				t.Fatalf("rejects %+v, want %v", rejects, tc.rejects)
			}
			for _, r := range rejects {
				if !strings.HasPrefix(r.Reason, tc.rejects[r.Line]) || (r.GroupID != "@TGS#1" && !strings.Contains(r.Reason, "JSON boolean")) { // a value of the wrong type is not echoed
					t.Errorf("reject line %d %q (group %q), want %q", r.Line, r.Reason, r.GroupID, tc.rejects[r.Line])
				}
			}
		})
	}
}
