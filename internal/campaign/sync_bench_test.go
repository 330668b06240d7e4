package campaign

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
)

// BenchmarkSyncWindow measures one check of a campaign's window against
// asynq (what the feeder does every SyncInterval) with a full default
// window of DefaultWindow queued tasks, on a real redis-server:
//
//	go test -run '^$' -bench SyncWindow -benchtime 50x ./internal/campaign
func BenchmarkSyncWindow(b *testing.B) {
	rdb, insp := benchWindow(b)
	b.ResetTimer()
	for b.Loop() {
		n, err := syncWindow(context.Background(), rdb, insp, "bench", testApp)
		if err != nil || n != 0 {
			b.Fatalf("sync settled %d: %v", n, err)
		}
	}
	b.ReportMetric(float64(DefaultWindow), "tasks/op")
}

// BenchmarkFindQueuedReruns measures one look of the feeder (every
// SyncInterval) for dead letters run again by hand, at the head of a bulk
// queue holding a full default window of DefaultWindow queued tasks, none
// run by hand: each look asks every listed task for its pending_since
// (rerunLooks says why it does not skip the ones seen before):
//
//	go test -run '^$' -bench FindQueuedReruns -benchtime 50x ./internal/campaign
func BenchmarkFindQueuedReruns(b *testing.B) {
	rdb, insp := benchWindow(b)
	lookedUp := map[string]string{}
	for b.Loop() {
		n, err := findQueuedReruns(context.Background(), rdb, insp, testApp, DefaultWindow, lookedUp)
		if err != nil || n != 0 || len(lookedUp) != 0 {
			b.Fatalf("took back %d, looked up %d: %v", n, len(lookedUp), err)
		}
	}
	b.ReportMetric(float64(DefaultWindow), "tasks/op")
}

// benchWindow fills campaign "bench", on a real redis-server, with a full
// default window of DefaultWindow tasks queued in asynq, and stops its
// feeder.
func benchWindow(b *testing.B) (redis.UniversalClient, *asynq.Inspector) {
	b.Helper()
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	opt := asynq.RedisClientOpt{Addr: srv.Addr}
	insp := asynq.NewInspector(opt)
	b.Cleanup(func() { insp.Close() })
	mgr, err := NewManager(ManagerConfig{Redis: rdb, Queue: opt})
	if err != nil {
		b.Fatal(err)
	}
	defer mgr.Close()
	var csv bytes.Buffer
	csv.WriteString("From_Account,To_Account,MsgKey\n")
	for _, r := range msgRows(0, DefaultWindow) {
		fmt.Fprintf(&csv, "%s,%s,%s\n", r.from, r.to, r.msgKey)
	}
	in, err := OpenInput(&csv, "bench.csv", FormatAuto)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Import(context.Background(), ImportConfig{Redis: rdb, Name: "bench", SDKAppID: testApp}, in); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	f, ferr := NewFeeder(FeederConfig{Redis: rdb, Queue: opt, SDKAppID: testApp, Window: DefaultWindow, Interval: 10 * time.Millisecond})
	if ferr != nil {
		b.Fatal(ferr)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = f.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := mgr.Status(context.Background(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		// Every task queued in asynq, not only entered in the window.
		if qi, err := insp.GetQueueInfo(bulkQ); err == nil && qi.Pending == DefaultWindow && st.InQueue == DefaultWindow {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the window never filled: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	f.Close()
	return rdb, insp
}
