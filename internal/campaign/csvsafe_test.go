package campaign

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// Issue 10, item 6: a cell starting with = + - @ (or a tab or CR) is a
// formula to a spreadsheet. Written with a leading ', read back without.
func TestRejectsFileNeutralisesFormulasAndImportsBackUnchanged(t *testing.T) {
	t.Parallel()
	hostile := []Reject{
		{Line: 2, Reason: "=cmd|' /C calc'!A0", FromAccount: "=HYPERLINK(\"http://x\")", ToAccount: "+1", MsgKey: "-2+3"},
		{Line: 3, Reason: "x", FromAccount: "@SUM(A1)", ToAccount: "'=already", MsgKey: "-1"},
		{Line: 4, Reason: "x", FromAccount: "\tz", ToAccount: "\rz", MsgKey: "''-x"},
		{Line: 5, Reason: "x", FromAccount: "-abc", ToAccount: "ok", MsgKey: "1_1_1"},
	}
	path := filepath.Join(t.TempDir(), "r.csv")
	rf := &RejectsFile{Path: path}
	for _, r := range hostile {
		if err := rf.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cells, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range cells[1:] {
		for _, c := range rec {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) && c != "-1" && c != "+1" {
				t.Errorf("cell %q starts a formula", c)
			}
		}
	}
	if cells[2][2] != "-1" || cells[1][1] != "+1" {
		t.Errorf("the numbers -1 and +1 were written %q, %q; a number is no formula", cells[2][2], cells[1][1])
	}
	// Imported again, the rejects file gives back the values as read.
	in, err := OpenInput(bytes.NewReader(raw), path, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for {
		rec, err := in.records.next()
		if err != nil {
			break
		}
		if !rec.blank {
			got = append(got, rec.row)
		}
	}
	var want []row
	for _, r := range hostile {
		want = append(want, c2c(r.FromAccount, r.ToAccount, r.MsgKey))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %q\nwant        %q", got, want)
	}
}

func TestExportNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.importRows("formula", []row{c2c("u1", "v1", "1_1_1")})
	r := tasks.Recall{SDKAppID: testApp, Campaign: "formula", FromAccount: "@u", ToAccount: "+v", MsgKey: "=k"}
	id := r.TaskID()
	// As if the feeder had queued the task: the recorder audits only those.
	// Export lists the dead letters still current, by the ID the recall derives.
	if err := e.rdb.HSet(t.Context(), keysFor("formula").window, id, 1).Err(); err != nil {
		t.Fatal(err)
	}
	NewRecorder(RecorderConfig{Redis: e.rdb, Logger: e.log}).Record(worker.Event{
		TaskID: id, Fate: worker.FateDeadLettered, Code: 20022, Err: errors.New("=1+1"), Recall: r,
	})
	recs := e.export("formula")
	if len(recs) != 2 {
		t.Fatalf("export %q", recs)
	}
	if got := recs[1][:3]; !slices.Equal(got, []string{"'@u", "'+v", "'=k"}) {
		t.Errorf("export wrote %q", got)
	}
	if recs[1][5] != "'=1+1" {
		t.Errorf("export wrote the detail %q", recs[1][5])
	}
}
