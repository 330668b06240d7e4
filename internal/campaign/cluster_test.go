package campaign

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Campaigns run on Redis Cluster: every script touches only one campaign's
// keys (one hash slot), and the pipelines that span campaigns are not
// transactions. This drains a campaign through a real worker, feeder and
// limiter on a real three-master cluster, pauses and resumes it, and cancels
// another, checking the counts and the audit.
func TestCampaignOnRedisCluster(t *testing.T) {
	t.Parallel()
	e := newClusterEnv(t)
	e.startPipeline(pipelineOptions{noFeeder: true})
	rows := msgRows(0, 40)
	missing := msgRows(100, 103)
	for _, r := range missing {
		e.sim.ForgetMessage(r.from, r.to, r.msgKey) // 20022
	}
	rows = append(rows, missing...)
	if res := e.importRows("on-cluster", rows); res.New != int64(len(rows)) {
		t.Fatalf("import %+v", res)
	}
	if res := e.importRows("to-cancel", msgRows(500, 520)); res.New != 20 {
		t.Fatalf("import %+v", res)
	}
	ctx := context.Background()
	if _, err := e.mgr.Pause(ctx, "to-cancel"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	fctx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); wg.Wait() })
	e.startFeeder(fctx, &wg, FeederConfig{Window: 10, Batch: 4})

	st := e.waitState("on-cluster", StateDone, 30*time.Second)
	if st.Recalled != 40 || st.DeadLettered != 3 || st.DeadByCode["20022"] != 3 || st.Pending != 0 || st.Retrying != 0 {
		t.Fatalf("status on the cluster: %+v; want 40 recalled, 3 dead-lettered (20022), nothing left", st)
	}
	if recs := e.export("on-cluster"); len(recs) != 1+3 {
		t.Fatalf("export lists %d dead letters, want 3: %v", len(recs)-1, recs)
	}
	res, err := e.mgr.Cancel(ctx, "to-cancel")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.status("to-cancel"); got.State != StateCancelled || got.Recalled != 0 {
		t.Fatalf("cancelled campaign: %+v (cancel said %+v)", got, res)
	}
	for i := 500; i < 520; i++ {
		r := msgRow(i)
		if calls := e.sim.Fate(r.from, r.to, r.msgKey); len(calls) != 0 {
			t.Fatalf("message %s of the paused, then cancelled campaign was called: %v", r.msgKey, calls)
		}
	}
}
