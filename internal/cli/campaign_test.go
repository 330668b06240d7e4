package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/redistest"
)

// runIn runs the command line with stdin.
func runIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewRoot(&out, &errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func campaignEnv(t *testing.T) string {
	t.Helper()
	s := redistest.Start(t)
	t.Setenv("REDIS_URL", s.URL)
	t.Setenv("TIM_SDKAPPID", "1400000000")
	t.Setenv("RECALL_RATE", "")
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

func TestCampaignStartReportsRejectsAndResumesAsAlreadyQueued(t *testing.T) {
	dir := campaignEnv(t)
	file := filepath.Join(dir, "wave.csv")
	data := "From_Account,To_Account,MsgKey\nalice,bob,1_1_1\ncarol,dave,\nerin,frank,2_2_2\ngrace,heidi,3_3_3\n"
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "campaign", "start", "--name", "wave", file)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"reading " + file + " as CSV (by its extension .csv)", "read 5 lines (4 rows): 3 new, 0 already queued, 1 rejected (listed in " + filepath.Join(dir, "wave.rejects.csv") + ")"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q does not say %q", out, want)
		}
	}
	if !strings.Contains(errOut, "line 3: MsgKey: is empty") {
		t.Errorf("stderr %q does not name the bad line", errOut)
	}
	f, err := os.Open(filepath.Join(dir, "wave.rejects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 2 || recs[1][0] != "carol" || recs[1][3] != "3" {
		t.Fatalf("rejects file %q (%v)", recs, err)
	}

	code, out, _ = run(t, "campaign", "start", "--name", "wave", file)
	if code != 0 || !strings.Contains(out, "read 5 lines (4 rows): 0 new, 3 already queued, 1 rejected") {
		t.Fatalf("second start: exit %d, %q", code, out)
	}

	code, out, _ = run(t, "campaign", "status", "wave", "--json")
	var st campaign.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --json: exit %d, %q", code, out)
	}
	// No worker runs: waiting says so, and there is no ETA (eta_seconds
	// is left out; TestCampaignNotMovingHasNoETA).
	if st.Queued != 3 || st.Rejected != 1 || st.Pending != 3 || st.State != campaign.StateRunning ||
		st.Rate != 200 || st.Waiting == "" || strings.Contains(out, "eta_seconds") {
		t.Fatalf("status %+v", st)
	}
	code, out, _ = run(t, "campaign", "status", "wave")
	// No worker runs in this test: status says so instead of an ETA.
	if code != 0 || !strings.Contains(out, "campaign wave (app 1400000000): running") ||
		!strings.Contains(out, "not moving: no worker of app 1400000000 is running") {
		t.Fatalf("status: exit %d, %q", code, out)
	}
	code, out, _ = run(t, "campaign", "list")
	if code != 0 || !strings.Contains(out, "wave") || !strings.Contains(out, "running") {
		t.Fatalf("list: exit %d, %q", code, out)
	}
	code, out, _ = run(t, "campaign", "export", "wave")
	if code != 0 || out != strings.Join(campaign.ExportHeader, ",")+"\n" {
		t.Fatalf("export: exit %d, %q", code, out)
	}

	code, out, _ = run(t, "campaign", "pause", "wave")
	if code != 0 || !strings.Contains(out, "campaign wave paused") {
		t.Fatalf("pause: exit %d, %q", code, out)
	}
	code, out, _ = run(t, "campaign", "resume", "wave")
	if code != 0 || !strings.Contains(out, "campaign wave resumed") {
		t.Fatalf("resume: exit %d, %q", code, out)
	}
	code, out, _ = run(t, "campaign", "cancel", "wave")
	if code != 0 || !strings.Contains(out, "removed 3 recalls that had not been called (3 from the backlog, 0 queued)") {
		t.Fatalf("cancel: exit %d, %q", code, out)
	}
	code, _, errOut = run(t, "campaign", "resume", "wave")
	if code != exitUsage || !strings.Contains(errOut, "it is cancelled") {
		t.Fatalf("resume after cancel: exit %d, %q", code, errOut)
	}
}

func TestCampaignStartReadsJSONLinesFromStdin(t *testing.T) {
	dir := campaignEnv(t)
	in := `{"From_Account":"alice","To_Account":"bob","MsgKey":"1_1_1"}` + "\n" + `{"From_Account":"carol"}` + "\n"
	out, _, err := runIn(t, in, "campaign", "start", "--name", "piped", "-")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"reading stdin as JSONL (by its content", "read 2 lines (2 rows): 1 new, 0 already queued, 1 rejected (listed in piped.rejects.csv)"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q does not say %q", out, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "piped.rejects.csv")); err != nil {
		t.Errorf("no rejects file in the working directory: %v", err)
	}
}

func TestCampaignBadInputIsAUsageError(t *testing.T) {
	dir := campaignEnv(t)
	file := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(file, []byte("from,to,key\na,b,c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"header", []string{"campaign", "start", "--name", "bad", file}, "has no column From_Account"},
		{"no name", []string{"campaign", "start", file}, "--name: bad campaign name"},
		{"bad name", []string{"campaign", "start", "--name", "a b", file}, "use letters, digits"},
		{"no file", []string{"campaign", "start", "--name", "x", filepath.Join(dir, "nope.csv")}, "cannot read"},
		{"unknown campaign", []string{"campaign", "status", "nope"}, "no such campaign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, exitUsage, tc.want)
			}
		})
	}
}

// Starting a cancelled campaign again is refused before anything is read:
// no "reading ..." line, no import progress, only the refusal.
func TestCampaignStartOfACancelledCampaignRefusesFirst(t *testing.T) {
	dir := campaignEnv(t)
	file := filepath.Join(dir, "keys.csv")
	if err := os.WriteFile(file, []byte("From_Account,To_Account,MsgKey\nalice,bob,1_1_1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "campaign", "start", "--name", "gone", file); code != 0 {
		t.Fatalf("start: exit %d %q %q", code, out, errOut)
	}
	if code, out, errOut := run(t, "campaign", "cancel", "gone"); code != 0 {
		t.Fatalf("cancel: exit %d %q %q", code, out, errOut)
	}
	code, out, errOut := run(t, "campaign", "start", "--name", "gone", file)
	if code != exitUsage || !strings.Contains(errOut, "it was cancelled") {
		t.Fatalf("start again: exit %d, stderr %q; want %d and the refusal", code, errOut, exitUsage)
	}
	if strings.Contains(errOut, "importing") || out != "" {
		t.Fatalf("start again printed more than the refusal: stdout %q, stderr %q", out, errOut)
	}
}
