package campaign

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A Sentinel failover in the middle of a campaign: the primary is killed
// with a third of the campaign done, the sentinels promote the replica, and
// the campaign finishes by itself with every message recalled once, the
// counts right, and the cap held at the simulator.
func TestCampaignSurvivesASentinelFailover(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow: kills the primary and waits for the sentinels' failover")
	}
	e, set := newSentinelEnv(t)
	// The limiter as in production: its 1 s Horizon is what keeps a
	// schedule restarted on the promoted replica from crowding the slots
	// granted before the failover.
	e.startPipeline(pipelineOptions{noFeeder: true, latency: 5 * time.Millisecond, realLimiter: true})
	const n = 600
	rows := msgRows(0, n)
	if res := e.importRows("failover", rows); res.New != n {
		t.Fatalf("import %+v", res)
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); wg.Wait() })
	e.startFeeder(ctx, &wg, FeederConfig{})

	e.waitFor("a third of the campaign", 20*time.Second, func() bool { return e.status("failover").Recalled >= n/3 })
	// Let the replica catch up first: Redis replicates asynchronously, and
	// a write acknowledged but not replicated is lost in any failover.
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := set.SyncReplica(sctx, 10*time.Second); err != nil {
		t.Fatalf("the replica did not catch up: %v", err)
	}
	set.Primary.Stop()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := set.WaitPrimary(wctx, set.Replica.Addr); err != nil {
		t.Fatalf("the sentinels did not promote the replica: %v", err)
	}

	st := e.waitState("failover", StateDone, 40*time.Second)
	if st.Recalled != n || st.DeadLettered != 0 || st.Pending != 0 || st.Retrying != 0 {
		t.Fatalf("after the failover: %+v; want all %d recalled, nothing left", st, n)
	}
	for _, r := range rows {
		recalled := 0
		for _, code := range e.sim.Fate(r.from, r.to, r.msgKey) {
			if code == 0 {
				recalled++
			}
		}
		if recalled != 1 {
			t.Fatalf("message %s: the simulator answered %v; want it recalled exactly once", r.msgKey, e.sim.Fate(r.from, r.to, r.msgKey))
		}
	}
	if s := e.sim.Stats(); s.MaxInAnyWindow > 200 || s.Rejected60007 != 0 {
		t.Fatalf("the cap did not hold through the failover: %d in one sliding second, %d refused with 60007", s.MaxInAnyWindow, s.Rejected60007)
	}
}
