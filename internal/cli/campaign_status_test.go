package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// startFeeder runs a campaign feeder of app 1400000000 on the Redis of
// REDIS_URL, as a running worker does, until the returned stop is called
// (or the test ends).
func startFeeder(t *testing.T, rdb redis.UniversalClient) (stop func()) {
	t.Helper()
	opt, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	qopt := asynq.RedisClientOpt{Addr: opt.Addr, Password: opt.Password, DB: opt.DB}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f, err := campaign.NewFeeder(campaign.FeederConfig{Redis: rdb, Queue: qopt, SDKAppID: 1400000000, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; f.Close() }) }
	t.Cleanup(stop)
	return stop
}

// waitStatus polls `campaign status NAME --json` until cond holds.
func waitStatus(t *testing.T, name string, cond func(campaign.Status) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := campaignStatus(t, name)
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s did not get there: %+v", name, st)
		}
	}
}

// testRedis is a client of the Redis of REDIS_URL.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// A group campaign's dead letters are named by the group API's table in
// status, as export and the dashboard name them: 10015 is not an "unknown
// result code".
func TestCampaignStatusNamesGroupDeadLetterCodes(t *testing.T) {
	dir := campaignEnv(t)
	file := filepath.Join(dir, "groups.csv")
	if err := os.WriteFile(file, []byte("GroupId,MsgSeq\n@TGS#gone,7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "campaign", "start", "--name", "grp", file); code != 0 {
		t.Fatalf("start: exit %d %q %q", code, out, errOut)
	}
	rdb := testRedis(t)
	stop := startFeeder(t, rdb)
	waitStatus(t, "grp", func(st campaign.Status) bool { return st.InQueue == 1 })
	stop()
	// The worker's call answered 10015 for the seq: dead-lettered.
	g := tasks.GroupRecall{SDKAppID: 1400000000, GroupID: "@TGS#gone", MsgSeq: 7, Campaign: "grp"}
	campaign.NewRecorder(campaign.RecorderConfig{Redis: rdb}).Record(worker.Event{
		TaskID: g.TaskID(), Queue: tasks.QueueBulk, Recall: worker.GroupRecallAsRecall(g), Group: &g, CallSeqs: 1,
		Code: 10015, Class: worker.DeadLetter, Fate: worker.FateDeadLettered,
	})
	code, out, errOut := run(t, "campaign", "status", "grp")
	if code != 0 {
		t.Fatalf("status: exit %d %q %q", code, out, errOut)
	}
	want := campaign.CodeMeaning(10015)
	var line string
	for l := range strings.Lines(out) {
		if strings.Contains(l, " 10015 ") {
			line = l
		}
	}
	if !strings.Contains(line, "no group has this GroupId") || !strings.Contains(line, want) {
		t.Fatalf("status names 10015 %q, want %q:\n%s", strings.TrimSpace(line), want, out)
	}
}

// A running campaign that does not move (no worker runs, or the app's
// queue is paused) has no ETA: status says "not moving", list says so in
// its ETA column, and --json leaves eta_seconds out beside "waiting". Once
// a worker feeds it, the ETA is back.
func TestCampaignNotMovingHasNoETA(t *testing.T) {
	dir := campaignEnv(t)
	file := filepath.Join(dir, "still.csv")
	if err := os.WriteFile(file, []byte("From_Account,To_Account,MsgKey\nalice,bob,1_1_1\ncarol,dave,2_2_2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "campaign", "start", "--name", "still", file); code != 0 {
		t.Fatalf("start: exit %d %q %q", code, out, errOut)
	}
	listETA := func() string {
		t.Helper()
		code, out, errOut := run(t, "campaign", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 2 || !strings.HasSuffix(lines[0], "ETA") {
			t.Fatalf("list: exit %d %q %q", code, out, errOut)
		}
		// The ETA column is the last; "not moving" is two words.
		head := strings.Index(lines[0], "ETA")
		return strings.TrimSpace(lines[1][min(head, len(lines[1])):])
	}
	statusJSON := func() map[string]any {
		t.Helper()
		code, out, errOut := run(t, "campaign", "status", "still", "--json")
		var v map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("status --json: exit %d %q %q", code, out, errOut)
		}
		return v
	}

	// No worker runs.
	if eta := listETA(); eta != "not moving" {
		t.Errorf("list's ETA without a worker: %q, want \"not moving\"", eta)
	}
	v := statusJSON()
	if w, _ := v["waiting"].(string); !strings.Contains(w, "no worker of app 1400000000 is running") {
		t.Errorf("status --json: waiting = %q", w)
	}
	if eta, ok := v["eta_seconds"]; ok {
		t.Errorf("status --json gives eta_seconds %v beside waiting", eta)
	}
	code, out, _ := run(t, "campaign", "list", "--json")
	if code != 0 || strings.Contains(out, "eta_seconds") || !strings.Contains(out, `"waiting"`) {
		t.Errorf("list --json: exit %d %q", code, out)
	}

	// A worker's feeder runs: the campaign moves, and has an ETA again.
	startFeeder(t, testRedis(t))
	waitStatus(t, "still", func(st campaign.Status) bool { return st.Waiting == "" && st.InQueue == 2 })
	if eta := listETA(); eta == "not moving" || !strings.HasSuffix(eta, "s") {
		t.Errorf("list's ETA with a worker: %q", eta)
	}
	v = statusJSON()
	if eta, ok := v["eta_seconds"].(float64); !ok || eta <= 0 || v["waiting"] != nil {
		t.Errorf("status --json with a worker: eta_seconds %v, waiting %v", v["eta_seconds"], v["waiting"])
	}
}
