package cli

import (
	"context"
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
