package redisconn_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
)

const (
	dataPassword     = "data-pw-2Rt"
	sentinelPassword = "sentinel-pw-6Yu"
)

func startSentinelSet(t *testing.T) (*redistest.SentinelSet, *redisconn.Conn) {
	t.Helper()
	set := redistest.StartSentinelSet(t, redistest.SentinelConfig{Password: dataPassword, SentinelPassword: sentinelPassword})
	conn, err := redisconn.ParseWith(set.URL, redisconn.Options{SentinelPassword: sentinelPassword})
	if err != nil {
		t.Fatal(err)
	}
	if conn.Kind() != redisconn.Sentinel {
		t.Fatalf("Kind = %v, want sentinel", conn.Kind())
	}
	if _, ok := conn.Client().(*redis.Client); !ok {
		t.Fatalf("Client() is %T, want a failover *redis.Client", conn.Client())
	}
	return set, conn
}

func TestSentinelRunsQueuesWorkerAndLimiter(t *testing.T) {
	t.Parallel()
	_, conn := startSentinelSet(t)
	checkQueuesAndLimiter(t, conn)

	const n = 100
	ids := enqueueRecalls(t, conn, n)
	w := startWorker(t, conn, 8, 2*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitAllCompleted(ctx, t, conn, n+1)
	w.stop()
	for id := range ids {
		if !w.done.has(id) {
			t.Errorf("task %s completed without a recall call", id)
		}
	}
}

// TestSentinelFailoverDuringProcessing kills the primary (SIGKILL) while
// the worker is busy, lets the sentinels promote the replica, and checks
// that processing resumes on its own and every task ends completed.
//
// The worker's clients use FailoverRetries: with go-redis's defaults the
// tasks in flight at the kill stay active for one to two minutes (see
// FailoverRetries), longer than this test may last.
//
// Slow (about 8 s: the set's start, one down-after of 1 s, the election)
// but bounded: it fails after failoverBudget. It runs in the normal suite;
// -short skips it.
//
// Redis replicates asynchronously, so a SIGKILL may lose the writes of the
// last instant before it: a task asynq was told is done could be active
// again on the promoted replica, and asynq recovers such a task only after
// its lease (30 s) and the recoverer's 30 s grace, on a 1 minute tick. That
// is Redis's guarantee, not something this package can change, and it
// would make the test last minutes. So the test first pauses writes on the
// primary (CLIENT PAUSE WRITE, as Redis's own FAILOVER command does) and
// waits for the replica to hold every acknowledged write; the workers'
// writes then hang and die with the primary, unacknowledged.
func TestSentinelFailoverDuringProcessing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow: kills the primary and waits for the sentinels' failover")
	}
	const failoverBudget = 40 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), failoverBudget)
	defer cancel()
	set, conn := startSentinelSet(t)

	const n = 400
	ids := enqueueRecalls(t, conn, n)
	start := time.Now()
	w := startWorker(t, conn.WithRetries(redisconn.FailoverRetries), 8, 10*time.Millisecond)

	for d, _ := w.done.counts(); d < n/3; d, _ = w.done.counts() {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d recalled before the failover", d, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := set.SyncReplica(ctx, 10*time.Second); err != nil {
		t.Fatalf("the replica did not catch up: %v", err)
	}
	killed := time.Now()
	doneAtKill, _ := w.done.counts()
	set.Primary.Stop()

	if err := set.WaitPrimary(ctx, set.Replica.Addr); err != nil {
		t.Fatalf("the sentinels did not promote the replica: %v", err)
	}
	promoted := time.Now()
	waitAllCompleted(ctx, t, conn, n)
	finished := time.Now()
	w.stop()

	distinct, calls := w.done.counts()
	for id := range ids {
		if !w.done.has(id) {
			t.Errorf("task %s completed without a recall call", id)
		}
	}
	if distinct != n {
		t.Errorf("%d distinct tasks recalled, want %d", distinct, n)
	}
	// The cap holds through the failover: the promoted replica's schedule
	// restarts one horizon ahead, so no burst follows the kill.
	if most := mostInAnySecond(w.api.callTimes()); most > 200 {
		t.Errorf("%d calls in one sliding second around the failover; the cap is 200", most)
	}
	st := w.lim.Stats()
	if st.Resets < 2 {
		t.Errorf("limiter resets = %d, want 2 (first use, then the promoted replica's other run_id)", st.Resets)
	}

	// What happened, for the record.
	var firstAfter time.Time
	var longestGap time.Duration
	times := w.api.callTimes()
	for i, at := range times {
		if at.After(promoted) && firstAfter.IsZero() {
			firstAfter = at
		}
		if i > 0 && at.After(killed) {
			longestGap = max(longestGap, at.Sub(times[i-1]))
		}
	}
	t.Logf("failover: %d of %d recalled before the kill, %s after the start", doneAtKill, n, killed.Sub(start).Round(time.Millisecond))
	t.Logf("failover: sentinels promoted the replica %s after the kill", promoted.Sub(killed).Round(time.Millisecond))
	t.Logf("failover: first recall after the promotion %s after it; longest pause between recalls %s",
		firstAfter.Sub(promoted).Round(time.Millisecond), longestGap.Round(time.Millisecond))
	t.Logf("failover: all %d completed %s after the kill; %d calls for %d tasks (%d ran twice); limiter %+v",
		n, finished.Sub(killed).Round(time.Millisecond), calls, distinct, calls-distinct, st)
	logs := w.logs.String()
	t.Logf("failover: worker log lines at WARN or ERROR: %d", strings.Count(logs, "level=WARN")+strings.Count(logs, "level=ERROR"))
	for _, line := range sample(strings.Split(logs, "\n"), "level=WARN", "level=ERROR", "limiter") {
		t.Logf("  %s", line)
	}
}

// sample returns, among the lines holding any of marks, the first of each
// message (told apart by its first 60 bytes).
func sample(lines []string, marks ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		hit := false
		for _, m := range marks {
			hit = hit || strings.Contains(l, m)
		}
		_, msg, _ := strings.Cut(l, " msg=")
		key := msg[:min(len(msg), 60)]
		if hit && !seen[key] {
			seen[key] = true
			out = append(out, l)
		}
	}
	return out
}

// mostInAnySecond is the largest number of times in any sliding second.
func mostInAnySecond(times []time.Time) int {
	sorted := slices.SortedFunc(slices.Values(times), func(a, b time.Time) int { return a.Compare(b) })
	most, lo := 0, 0
	for hi := range sorted {
		for sorted[hi].Sub(sorted[lo]) >= time.Second {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

// TestSentinelPasswordMissingIsNamed: when the sentinels refuse the
// client, the fix is REDIS_SENTINEL_PASSWORD, not the password in
// REDIS_URL (the data nodes'), which the explanation named alone.
func TestSentinelPasswordMissingIsNamed(t *testing.T) {
	set := redistest.StartSentinelSet(t, redistest.SentinelConfig{Password: dataPassword, SentinelPassword: sentinelPassword})
	conn, err := redisconn.ParseWith(set.URL, redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := conn.Client()
	defer rdb.Close()
	pingErr := rdb.Ping(context.Background()).Err()
	if pingErr == nil {
		t.Fatal("the sentinels answered a client without their password")
	}
	got := redisconn.Explain(pingErr, conn).Error()
	if !strings.Contains(got, redisconn.EnvSentinelPassword) {
		t.Errorf("Explain(%v) = %q, want it to name %s", pingErr, got, redisconn.EnvSentinelPassword)
	}
	if strings.Contains(got, dataPassword) || strings.Contains(got, sentinelPassword) {
		t.Errorf("Explain shows a password: %q", got)
	}
}
