package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/imsim"
)

// indexFor indexes messages into the Redis of REDIS_URL, as a capture would.
func indexFor(t *testing.T, msgs []capture.Message) {
	t.Helper()
	opt, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ix, err := capture.NewIndex(capture.IndexConfig{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	for _, m := range msgs {
		if err := ix.Add(context.Background(), 1400000000, m); err != nil {
			t.Fatal(err)
		}
	}
}

func campaignStatus(t *testing.T, name string) campaign.Status {
	t.Helper()
	code, out, errOut := run(t, "campaign", "status", name, "--json")
	var st campaign.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d %q %q", code, out, errOut)
	}
	return st
}

func TestCampaignStartBySender(t *testing.T) {
	campaignEnv(t)
	now := time.Now()
	var msgs []capture.Message
	for i := range 40 {
		at := now.Add(-time.Duration(i) * 15 * time.Minute).Unix() // 0 .. 9h45m ago
		msgs = append(msgs,
			capture.Message{Kind: capture.C2C, From: "spammer", To: fmt.Sprintf("v%d", i%3), MsgKey: fmt.Sprintf("%d_7_%d", i+1, at), Time: at},
			capture.Message{Kind: capture.C2C, From: "someone", To: "v1", MsgKey: fmt.Sprintf("%d_8_%d", i+1, at), Time: at})
		if i%10 == 0 {
			msgs = append(msgs, capture.Message{Kind: capture.Group, From: "spammer", GroupID: "@TGS#1", MsgSeq: uint64(i + 1), Time: at},
				capture.Message{Kind: capture.Group, From: "someone", GroupID: "@TGS#1", MsgSeq: uint64(i + 1000), Time: at})
		}
	}
	indexFor(t, msgs)
	// 6h back: i = 0..24 (25 C2C), group i = 0, 10, 20 (3). An absolute
	// --since: "6h" would move i = 24 out on a run slower than a second.
	since := now.Add(-6 * time.Hour).UTC().Format(time.RFC3339)
	code, out, errOut := run(t, "campaign", "start", "--name", "wave", "--sender", "spammer", "--since", since, "--dry-run")
	if code != 0 || !strings.Contains(out, "one-to-one messages to queue  25") || !strings.Contains(out, "group messages to queue       3") || !strings.Contains(out, "nothing was queued") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run(t, "campaign", "list"); code != 0 || !strings.Contains(out, "no campaigns") {
		t.Fatalf("a dry run created a campaign: %s", out)
	}
	code, out, errOut = run(t, "campaign", "start", "--name", "wave-v2", "--sender", "spammer", "--to", "v2", "--since", since, "--dry-run")
	if code != 0 || !strings.Contains(out, "one-to-one messages to queue  8") {
		t.Fatalf("--to v2 dry run: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = run(t, "campaign", "start", "--name", "wave", "--sender", "spammer", "--since", since)
	if code != 0 || !strings.Contains(out, "25 one-to-one messages and 3 group messages found") || !strings.Contains(out, "28 new") {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := campaignStatus(t, "wave"); st.Queued != 28 || st.Format != "query" {
		t.Fatalf("status %+v", st)
	}
	// The group messages queued are the spammer's three in the window.
	opt, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	var seqs []uint64
	rows, err := rdb.LRange(context.Background(), "recallq:{camp:wave}:backlog", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if g, ok := strings.CutPrefix(r, "\x00\x01\x06@TGS#1\x00"); ok { // a group row of @TGS#1, no topic (codec.go)
			seq, _ := strconv.ParseUint(g[1:], 10, 64)
			seqs = append(seqs, seq)
		}
	}
	if slices.Sort(seqs); !slices.Equal(seqs, []uint64{1, 11, 21}) {
		t.Fatalf("group seqs queued %v, want the spammer's 1, 11, 21", seqs)
	}
}

// serveSim serves a simulator of the test app and points the command's
// TIM_ENDPOINT and secret key at it.
func serveSim(t *testing.T) *imsim.Sim {
	t.Helper()
	const secret = "cli-secret-0123456789abcdef0123456789"
	sim, err := imsim.New(imsim.Config{SDKAppID: 1400000000, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Setenv("TIM_ENDPOINT", srv.URL)
	t.Setenv("TIM_SECRET_KEY", secret)
	t.Setenv("TIM_SECRET_KEY_FILE", "")
	return sim
}

func TestCampaignStartByConversationPagesTheHistory(t *testing.T) {
	campaignEnv(t)
	sim := serveSim(t)
	now := time.Now()
	for i := range 230 {
		from, to := "alice", "bob"
		if i%2 == 1 {
			from, to = to, from
		}
		if _, err := sim.Send(context.Background(), from, to, now.Add(-time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run(t, "campaign", "start", "--name", "ab", "--conversation", "alice,bob", "--since", "2d", "--dry-run")
	if code != 0 || !strings.Contains(out, "one-to-one messages to queue  230") || !strings.Contains(out, "3 pages") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := sim.Stats(); st.Calls != 3 {
		t.Fatalf("the simulator answered %d calls (codes %v, HTTP errors %d), want 3 pages of 100\n%s", st.Calls, st.ByCode, st.HTTPErrors, errOut)
	}
	code, out, errOut = run(t, "campaign", "start", "--name", "ab", "--conversation", "alice,bob", "--since", "2d")
	if code != 0 || !strings.Contains(out, "230 new") {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := campaignStatus(t, "ab"); st.Queued != 230 {
		t.Fatalf("status %+v", st)
	}
}

func TestCampaignStartQueryUsageErrors(t *testing.T) {
	campaignEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sender", "x"}, "--since is required"},
		{[]string{"--sender", "x", "--conversation", "a,b", "--since", "1h"}, "give one"},
		{[]string{"--to", "y", "--conversation", "a,b", "--since", "1h"}, "--to narrows --sender"},
		{[]string{"--conversation", "a", "--since", "1h"}, "two different accounts"},
		{[]string{"--sender", "x", "--since", "yesterday"}, "--since \"yesterday\""},
		{[]string{"--sender", "x", "--since", "1h", "--until", "2h"}, "is not before --until"},
		{[]string{"--sender", "x", "--since", "1h", "file.csv"}, "not both"},
		// A time without a zone is read in no zone: in UTC it would recall
		// hours outside the window an operator west of UTC meant.
		{[]string{"--sender", "x", "--since", "2026-12-03 02:00:00"}, `--since "2026-12-03 02:00:00" has no time zone`},
		{[]string{"--sender", "x", "--since", "2026-12-03T02:00:00"}, "add Z for UTC or the offset"},
		{[]string{"--sender", "x", "--since", "2026-12-03"}, `--since "2026-12-03" has no time zone`},
		{[]string{"--sender", "x", "--since", "6h", "--until", "2026-12-03T02:00:00"}, `--until "2026-12-03T02:00:00" has no time zone`},
	} {
		code, _, errOut := run(t, append([]string{"campaign", "start", "--name", "q"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want a usage error saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// An index written before the capture checked identifiers as tasks do
// holds accounts and GroupIds up to 64 bytes, the import takes at most
// Tencent's 32 and 48: a --sender campaign that finds a message it cannot
// queue says which and why, as a file campaign does (the reason, the
// rejects file), --dry-run counts it, and start fails.
func TestCampaignStartBySenderSaysWhyRowsAreRejected(t *testing.T) {
	dir := campaignEnv(t)
	now := time.Now().Unix()
	long := "tenant-0042:" + strings.Repeat("u", 28) // 40 bytes: indexed by an earlier capture
	indexFor(t, []capture.Message{
		{Kind: capture.C2C, From: "spammer", To: "bob", MsgKey: fmt.Sprintf("1_7_%d", now), Time: now},
		{Kind: capture.C2C, From: "spammer", To: long, MsgKey: fmt.Sprintf("2_7_%d", now), Time: now},
	})
	why := "To_Account: is 40 bytes long; at most 32 are allowed"
	code, out, errOut := run(t, "campaign", "start", "--name", "wave", "--sender", "spammer", "--since", "1h", "--dry-run")
	if code != 0 || !strings.Contains(out, "one-to-one messages to queue  1\n") || !strings.Contains(out, "rejected (not queued)         1\n") || !strings.Contains(errOut, why) {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, "campaign", "start", "--name", "wave", "--sender", "spammer", "--since", "1h")
	if code != exitError || !strings.Contains(errOut, why) || !strings.Contains(errOut, long) || !strings.Contains(out, "1 new, 0 already queued, 1 rejected") {
		t.Fatalf("start: exit %d, want %d\n%s\n%s", code, exitError, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "wave.rejects.csv")); err != nil || !strings.Contains(string(b), long+",2_7_") {
		t.Fatalf("rejects file: %v\n%s", err, b)
	}
	if st := campaignStatus(t, "wave"); st.Queued != 1 || st.Rejected != 1 {
		t.Fatalf("status %+v", st)
	}
}

// A query campaign that cannot take the import (cancelled, another app's)
// is refused before the query runs, as a file campaign is before its file
// is read: --conversation would otherwise page through admin_getroammsg
// (minutes, and the API's quota) only to be refused at the import. No call
// reaches the simulator, and nothing but the refusal is printed.
func TestCampaignStartByQueryRefusesFirst(t *testing.T) {
	dir := campaignEnv(t)
	sim := serveSim(t)
	now := time.Now()
	for i := range 3 {
		if _, err := sim.Send(context.Background(), "alice", "bob", now.Add(-time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	indexFor(t, []capture.Message{{Kind: capture.C2C, From: "alice", To: "bob", MsgKey: fmt.Sprintf("1_7_%d", now.Unix()), Time: now.Unix()}})

	file := filepath.Join(dir, "keys.csv")
	if err := os.WriteFile(file, []byte("From_Account,To_Account,MsgKey\nalice,bob,1_1_1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "campaign", "start", "--name", "gone", file); code != 0 {
		t.Fatalf("start gone: exit %d %q %q", code, out, errOut)
	}
	if code, out, errOut := run(t, "campaign", "cancel", "gone"); code != 0 {
		t.Fatalf("cancel gone: exit %d %q %q", code, out, errOut)
	}
	if code, out, errOut := run(t, "campaign", "start", "--name", "theirs", "--sdkappid", "1400000001", file); code != 0 {
		t.Fatalf("start theirs: exit %d %q %q", code, out, errOut)
	}
	for _, name := range []struct{ campaign, want string }{
		{"gone", "it was cancelled; start a new campaign under another name"},
		{"theirs", "campaign belongs to another app 1400000001, not 1400000000: pick another name"},
	} {
		for _, query := range [][]string{
			{"--conversation", "alice,bob", "--since", "1h"},
			{"--conversation", "alice,bob", "--since", "1h", "--dry-run"},
			{"--sender", "alice", "--since", "1h"},
			{"--sender", "alice", "--since", "1h", "--dry-run"},
		} {
			t.Run(name.campaign+" "+strings.Join(query, " "), func(t *testing.T) {
				sim.ResetStats()
				code, out, errOut := run(t, append([]string{"campaign", "start", "--name", name.campaign}, query...)...)
				if n := sim.Stats().Calls; n != 0 {
					t.Errorf("the query called admin_getroammsg %d times before it was refused", n)
				}
				if code != exitUsage || !strings.Contains(errOut, name.want) {
					t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, exitUsage, name.want)
				}
				if out != "" {
					t.Fatalf("printed more than the refusal: stdout %q, stderr %q", out, errOut)
				}
			})
		}
	}
	if st := campaignStatus(t, "gone"); st.State != campaign.StateCancelled || st.Queued != 1 {
		t.Fatalf("the cancelled campaign changed: %+v", st)
	}
}
