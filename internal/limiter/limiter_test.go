package limiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
)

// Every assertion here is about Redis-side arithmetic (slots, intervals,
// counts), never about how fast the machine ran: the only time bounds are
// liveness guards far beyond anything a healthy run needs.

// The test bucket: testApp's admin_msgwithdraw.
const (
	testApp = 1400000000
	testAPI = "admin_msgwithdraw"
)

func newTestLimiter(t *testing.T, rdb redis.UniversalClient, cfg Config) *Limiter {
	t.Helper()
	cfg.Redis = rdb
	if cfg.App == 0 {
		cfg.App = testApp
	}
	if cfg.API == "" {
		cfg.API = testAPI
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	// Its first publish runs at once in the background; a test's own
	// publishes must not race it.
	<-l.spreadRead
	return l
}

// seed writes a live schedule (tat = Redis now, written by this server), as
// a bucket in use would have, so a test does not start with a reset and its
// one-Horizon wait.
func seed(t *testing.T, rdb *redis.Client, l *Limiter) {
	t.Helper()
	ctx := context.Background()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`run_id:([0-9a-f]+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("no run_id in INFO server: %q", info)
	}
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, l.keys.gcra, "tat", now.UnixMicro(), "srv", m[1]).Err(); err != nil {
		t.Fatal(err)
	}
}

func redisNow(t *testing.T, rdb *redis.Client) time.Time {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// grantRec is one permit and who took it.
type grantRec struct {
	inst int
	lane Lane
	p    Permit
}

// collect runs goroutines on each limiter, alternating lanes when mixed,
// until n permits are granted, and returns them sorted by RedisSlot.
func collect(t *testing.T, ls []*Limiter, goroutines, n int, lanes ...Lane) []grantRec {
	t.Helper()
	var (
		mu    sync.Mutex
		out   []grantRec
		taken atomic.Int64
		wg    sync.WaitGroup
		start = make(chan struct{})
		errc  = make(chan error, len(ls)*goroutines)
	)
	for i, l := range ls {
		for g := 0; g < goroutines; g++ {
			lane := lanes[g%len(lanes)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for taken.Add(1) <= int64(n) {
					p, err := l.Wait(context.Background(), lane)
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					out = append(out, grantRec{inst: i, lane: lane, p: p})
					mu.Unlock()
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("Wait: %v", err)
	}
	slices.SortFunc(out, func(a, b grantRec) int { return a.p.RedisSlot.Compare(b.p.RedisSlot) })
	return out
}

// checkSpacing fails unless consecutive slots are at least interval apart
// and no 1-second window of Redis time holds more than rate slots.
func checkSpacing(t *testing.T, gs []grantRec, interval time.Duration, rate float64) {
	t.Helper()
	for i := 1; i < len(gs); i++ {
		if gap := gs[i].p.RedisSlot.Sub(gs[i-1].p.RedisSlot); gap < interval {
			t.Errorf("slots %d and %d are %s apart, less than the interval %s", i-1, i, gap, interval)
		}
	}
	j := 0
	for i := range gs {
		for j < len(gs) && gs[j].p.RedisSlot.Before(gs[i].p.RedisSlot.Add(time.Second)) {
			j++
		}
		if j-i > int(rate) {
			t.Errorf("%d slots in the second from %s, cap %v", j-i, gs[i].p.RedisSlot, rate)
		}
	}
}

// checkNoGaps fails if a slot requested while the previous one was still
// ahead does not follow it by exactly the interval: work waiting must keep
// the bucket at full rate. The only gaps allowed are the slots the limiters
// dropped as granted too late (Stats.LateDrops of ls, which a loaded
// machine can cause): each leaves one interval empty.
func checkNoGaps(t *testing.T, gs []grantRec, interval time.Duration, ls ...*Limiter) {
	t.Helper()
	var drops int64
	for _, l := range ls {
		drops += l.Stats().LateDrops
	}
	for i := 1; i < len(gs); i++ {
		prev, cur := gs[i-1].p, gs[i].p
		if cur.redisNow.Before(prev.RedisSlot) {
			gap := cur.RedisSlot.Sub(prev.RedisSlot)
			if gap%interval == 0 && gap > interval && int64(gap/interval-1) <= drops {
				drops -= int64(gap/interval - 1)
				continue
			}
			if gap != interval {
				t.Errorf("slot %d was requested before slot %d (%s) but follows it by %s, not the interval %s (late drops left to explain it: %d)",
					i, i-1, prev.RedisSlot, gap, interval, drops)
			}
		}
	}
}

// slotInterval is the interval as the script applies it: whole µs.
func slotInterval(l *Limiter) time.Duration {
	return time.Duration(ceilMicros(l.Interval())) * time.Microsecond
}

func TestGrantsAreSpacedAcrossProcesses(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	var ls []*Limiter
	for range 3 {
		ls = append(ls, newTestLimiter(t, s.Client(t), Config{Rate: 200}))
	}
	seed(t, rdb, ls[0])

	// 230 slots at (1+0.05+0.005)/200 span more than a second, so whole sliding
	// windows are checked.
	gs := collect(t, ls, 4, 230, Urgent, Bulk)

	iv := slotInterval(ls[0])
	if want := time.Duration(math.Ceil(1.055 / 200 * 1e9)); ls[0].Interval() != want {
		t.Fatalf("Interval() = %s before any sample, want (1+InitialSpread+LateCutoff)/Rate = %s", ls[0].Interval(), want)
	}
	checkSpacing(t, gs, iv, 200)
	checkNoGaps(t, gs, iv, ls...)
	perInst := map[int]int{}
	for _, g := range gs {
		perInst[g.inst]++
	}
	if len(perInst) != 3 {
		t.Errorf("grants per instance %v: every instance should have been served", perInst)
	}
	for i, l := range ls {
		if st := l.Stats(); st.Resets != 0 || st.Failures != 0 {
			t.Errorf("instance %d: %d resets, %d failures; want none on a live schedule", i, st.Resets, st.Failures)
		}
	}
}

func TestClockSkewChangesNothing(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	const skew = 7 * time.Hour
	honest := newTestLimiter(t, s.Client(t), Config{Rate: 200})
	skewed := newTestLimiter(t, s.Client(t), Config{Rate: 200, Now: func() time.Time { return time.Now().Add(skew) }})
	seed(t, rdb, honest)

	gs := collect(t, []*Limiter{honest, skewed}, 3, 80, Bulk)

	iv := slotInterval(honest)
	checkSpacing(t, gs, iv, 200)
	checkNoGaps(t, gs, iv, honest, skewed)

	var span [2][2]time.Time // per instance: first and last slot
	// A slot dropped as granted too late (a loaded machine) still took its
	// place in the schedule: each one may push later grants one interval on.
	drops := honest.Stats().LateDrops + skewed.Stats().LateDrops
	for _, g := range gs {
		if span[g.inst][0].IsZero() {
			span[g.inst][0] = g.p.RedisSlot
		}
		span[g.inst][1] = g.p.RedisSlot
		// Each grant waits for at most the lookahead of both instances.
		if ahead := g.p.RedisSlot.Sub(g.p.redisNow); ahead > time.Duration(2*DefaultAheadBulk+drops)*iv {
			t.Errorf("instance %d was granted a slot %s ahead: the skew leaked into the schedule", g.inst, ahead)
		}
	}
	if span[1][0].IsZero() || span[1][0].After(span[0][1]) || span[0][0].After(span[1][1]) {
		t.Errorf("slots of the real-clock instance %v and the skewed one %v do not interleave", span[0], span[1])
	}
	// The skewed instance places its permits on its own clock.
	for _, g := range gs {
		if g.inst == 1 && g.p.Slot.Sub(time.Now()) < skew/2 {
			t.Fatalf("skewed instance's Permit.Slot %s is not on its own clock", g.p.Slot)
		}
	}
}

func TestKeyLossRestartsOneHorizonAhead(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	// Four slots at 52.5 ms reach 210 ms ahead, within the 500 ms horizon.
	l := newTestLimiter(t, s.Client(t), Config{Rate: 20, AheadBulk: 4, Horizon: 500 * time.Millisecond})
	seed(t, rdb, l)
	granted := make(chan Permit, 16)
	l.afterGrant = func(p Permit) { granted <- p }

	var (
		mu sync.Mutex
		gs []grantRec
		wg sync.WaitGroup
	)
	wait := func(n int) {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := l.Wait(ctx, Bulk)
				if err != nil {
					t.Errorf("Wait: %v", err)
					return
				}
				mu.Lock()
				gs = append(gs, grantRec{p: p})
				mu.Unlock()
			}()
		}
	}

	wait(4)
	for range 4 {
		<-granted // all four reserved; three of them lie ahead of now
	}
	var flushed *redis.TimeCmd
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		flushed = p.Time(ctx)
		p.FlushAll(ctx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wait(4)
	wg.Wait()

	slices.SortFunc(gs, func(a, b grantRec) int { return a.p.RedisSlot.Compare(b.p.RedisSlot) })
	outstanding := 0
	for _, g := range gs {
		if g.p.redisNow.Before(flushed.Val()) && g.p.RedisSlot.After(flushed.Val()) {
			outstanding++
		}
	}
	if outstanding == 0 {
		t.Fatalf("no slot was reserved ahead at the flush: the test did not exercise a loss mid-stream")
	}
	checkSpacing(t, gs, slotInterval(l), 20)
	if st := l.Stats(); st.Resets != 1 || st.BeyondHorizon != 0 {
		t.Errorf("Stats() resets=%d beyond_horizon=%d, want 1 (the flush) and 0", st.Resets, st.BeyondHorizon)
	}
}

func TestLookaheadBeyondHorizonIsCounted(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	// b holds 8 slots ahead; a, which has not yet seen the schedule nor the
	// fleet, has only its 1 ms Horizon when its grant lands 8 slots ahead.
	a := newTestLimiter(t, s.Client(t), Config{Horizon: time.Millisecond})
	b := newTestLimiter(t, s.Client(t), Config{AheadBulk: 8})
	seed(t, rdb, a)
	grabAhead(t, b, 8)
	grabAhead(t, a, 1)
	if st := a.Stats(); st.BeyondHorizon == 0 {
		t.Errorf("Stats().BeyondHorizon = 0 with a lookahead beyond the horizon")
	}
}

func TestGrantsWithoutINFOPermission(t *testing.T) {
	// A locked-down Redis user may not run INFO: grants go on without the
	// run_id check.
	s := redistest.Start(t, "--user", "default", "on", "nopass", "~*", "&*", "+@all", "-info")
	rdb := s.Client(t)
	ctx := context.Background()
	if err := rdb.Info(ctx, "server").Err(); err == nil {
		t.Fatal("INFO is allowed: the server did not take the ACL")
	}
	l := newTestLimiter(t, rdb, Config{Horizon: 10 * time.Millisecond})
	gs := collect(t, []*Limiter{l}, 2, 5, Urgent)
	checkSpacing(t, gs, slotInterval(l), DefaultRate)
	if st := l.Stats(); st.Resets != 1 {
		t.Errorf("Stats().Resets = %d, want 1 (first use only)", st.Resets)
	}
}

func TestScheduleFromAnotherServerIsTreatedAsLost(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	const horizon = 200 * time.Millisecond
	l := newTestLimiter(t, rdb, Config{Horizon: horizon})
	// As after a failover or a restore from a snapshot: a tat that lags,
	// written by a server with another run_id.
	stale := redisNow(t, rdb).Add(-time.Second)
	if err := rdb.HSet(ctx, l.keys.gcra, "tat", stale.UnixMicro(), "srv", "0123456789abcdef").Err(); err != nil {
		t.Fatal(err)
	}
	p, err := l.Wait(ctx, Urgent)
	if err != nil {
		t.Fatal(err)
	}
	if ahead := p.RedisSlot.Sub(p.redisNow); ahead < horizon {
		t.Errorf("first slot after a foreign schedule is %s ahead, want at least the horizon %s", ahead, horizon)
	}
	if st := l.Stats(); st.Resets != 1 {
		t.Errorf("Stats().Resets = %d, want 1", st.Resets)
	}
	// The schedule is now this server's: the next grant is an ordinary one.
	q, err := l.Wait(ctx, Urgent)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.RedisSlot.Sub(p.RedisSlot); got < slotInterval(l) {
		t.Errorf("second slot follows the first by %s, less than the interval", got)
	}
	if st := l.Stats(); st.Resets != 1 {
		t.Errorf("Stats().Resets = %d after a second grant, want still 1", st.Resets)
	}
}

func TestSlowDownPausesEveryProcess(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	a := newTestLimiter(t, s.Client(t), Config{})
	b := newTestLimiter(t, s.Client(t), Config{AheadBulk: 3})
	seed(t, rdb, a)

	const pause = 300 * time.Millisecond
	before := redisNow(t, rdb)
	// Two rate-limit answers within a second: not isolated, a pause.
	for range 2 {
		if err := a.SlowDown(ctx, pause); err != nil {
			t.Fatal(err)
		}
	}
	until, err := rdb.HGet(ctx, a.keys.gcra, "pause").Int64()
	if err != nil {
		t.Fatal(err)
	}
	// A shorter pause never shortens the one in force.
	if err := b.SlowDown(ctx, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, _ := rdb.HGet(ctx, a.keys.gcra, "pause").Int64(); got != until {
		t.Fatalf("a 1ms SlowDown moved the pause end from %d to %d", until, got)
	}

	// The strikes also lowered the rate scale (aimd_test.go); this test is
	// about the pause alone.
	if err := rdb.HDel(ctx, a.keys.gcra, "scale", "scaled").Err(); err != nil {
		t.Fatal(err)
	}
	gs := collect(t, []*Limiter{b}, 3, 6, Bulk)
	for _, g := range gs {
		if g.p.RedisSlot.Before(before.Add(pause)) {
			t.Errorf("slot %s granted before the pause end %s", g.p.RedisSlot, before.Add(pause))
		}
	}
	if first := gs[0].p; first.redisNow.Before(time.UnixMicro(until)) && !first.RedisSlot.Equal(time.UnixMicro(until)) {
		t.Errorf("first slot %s, want the pause end %s", first.RedisSlot, time.UnixMicro(until))
	}
	checkNoGaps(t, gs, slotInterval(b), a, b) // full rate again after the pause
	if st := a.Stats(); st.SlowDowns != 1 || st.IsolatedStrikes != 1 {
		t.Errorf("Stats() SlowDowns=%d IsolatedStrikes=%d, want 1 and 1", st.SlowDowns, st.IsolatedStrikes)
	}
	if err := a.SlowDown(ctx, 0); err == nil {
		t.Errorf("SlowDown(0) succeeded, want an error")
	}
}

func TestLookaheadIsBoundedPerLane(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	const aheadBulk = 2
	l := newTestLimiter(t, rdb, Config{AheadBulk: aheadBulk})
	seed(t, rdb, l)
	var (
		mu      sync.Mutex
		grants  []Permit
		urgentC = make(chan Permit, 1)
	)
	l.afterGrant = func(p Permit) {
		mu.Lock()
		grants = append(grants, p)
		n := len(grants)
		mu.Unlock()
		if n == 10 { // mid-backlog: ask for an urgent slot
			go func() {
				p, err := l.Wait(context.Background(), Urgent)
				if err != nil {
					t.Errorf("urgent Wait: %v", err)
				}
				urgentC <- p
			}()
		}
	}

	bulk := collect(t, []*Limiter{l}, 20, 40, Bulk)
	urgent := <-urgentC

	for _, g := range bulk {
		at := g.p.redisNow
		ahead := 0
		for _, h := range bulk {
			if !h.p.redisNow.After(at) && h.p.RedisSlot.After(at) {
				ahead++
			}
		}
		if ahead > aheadBulk {
			t.Errorf("at %s, %d bulk slots were reserved ahead, AheadBulk is %d", at, ahead, aheadBulk)
		}
	}
	iv := slotInterval(l)
	// A slot dropped as granted too late (a loaded machine) still holds its
	// place: each may put the urgent slot one interval further.
	limit := aheadBulk + 1 + int(l.Stats().LateDrops)
	if wait := urgent.RedisSlot.Sub(urgent.redisNow); wait > time.Duration(limit)*iv {
		t.Errorf("urgent slot granted %s ahead behind 20 waiting bulk calls, want at most %d intervals (%s)",
			wait, limit, time.Duration(limit)*iv)
	}
}

func TestCancelReturnsPromptlyAndFreesThePermit(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	l := newTestLimiter(t, rdb, Config{AheadBulk: 1})
	seed(t, rdb, l)
	pauseBucket(t, l, time.Hour)
	granted := make(chan Permit, 1)
	l.afterGrant = func(p Permit) { granted <- p }

	// The first Wait gets a slot an hour away and sleeps on it, holding the
	// only bulk permit.
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	err1 := make(chan error, 1)
	go func() { _, err := l.Wait(ctx1, Bulk); err1 <- err }()
	<-granted

	// A second Wait queues on the permit; cancelling it returns at once.
	ctx2, cancel2 := context.WithCancel(context.Background())
	err2 := make(chan error, 1)
	go func() { _, err := l.Wait(ctx2, Bulk); err2 <- err }()
	cancel2()
	if err := waitErr(t, err2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait queued on the permit returned %v after cancel, want context.Canceled", err)
	}
	if n := len(l.sems[Bulk]); n != 1 {
		t.Fatalf("%d bulk permits held after the queued Wait gave up, want 1 (the sleeper's)", n)
	}

	cancel1()
	if err := waitErr(t, err1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait sleeping on its slot returned %v after cancel, want context.Canceled", err)
	}
	if n := len(l.sems[Bulk]); n != 0 {
		t.Fatalf("%d bulk permits held after the sleeper gave up, want 0", n)
	}
	if st := l.Stats(); st.Failures != 2 || st.Calls != 0 {
		t.Errorf("Stats() calls=%d failures=%d, want 0 and 2", st.Calls, st.Failures)
	}
}

func TestCloseEndsWaits(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	l := newTestLimiter(t, rdb, Config{})
	seed(t, rdb, l)
	pauseBucket(t, l, time.Hour)
	granted := make(chan Permit, 1)
	l.afterGrant = func(p Permit) { granted <- p }
	errc := make(chan error, 1)
	go func() { _, err := l.Wait(context.Background(), Urgent); errc <- err }()
	<-granted
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, errc); !errors.Is(err, ErrClosed) {
		t.Errorf("pending Wait returned %v on Close, want ErrClosed", err)
	}
	if _, err := l.Wait(context.Background(), Urgent); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close returned %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// waitErr is a liveness guard, not a timing assertion: a healthy Wait
// returns in microseconds after a cancel.
func waitErr(t *testing.T, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
		return nil
	}
}

func TestSpreadSetsTheIntervalOfEveryProcess(t *testing.T) {
	s := redistest.Start(t)
	ctx := context.Background()
	const rate = 200.0
	a := newTestLimiter(t, s.Client(t), Config{Rate: rate})
	b := newTestLimiter(t, s.Client(t), Config{Rate: rate})
	ignoreStalls(a) // a hiccup of this loaded machine must not drop the samples

	// Answers 10 to 40 ms after their slots: a spread of 30 ms.
	base := time.Now()
	for i := range 1000 {
		a.Observe(Permit{Slot: base}, base.Add(10*time.Millisecond+time.Duration(i)*30*time.Millisecond/999))
	}
	// Uniform over 30 ms: the mean difference of two latencies is
	// G = 30/3 = 10 ms, and r + 5*sqrt(r*G) = 200 gives r = 193.05/s
	// (192.1/s with the late cutoff's room). But the band is narrow: the
	// worst case (1+J+cutoff)/200 with J = p99.5-p0.5 = 29.7 ms is the
	// shorter spacing (193.3/s), and it holds for certain.
	want := time.Duration(math.Round((1.0297 + DefaultLateCutoff.Seconds()) / rate * 1e9))
	near := func(got time.Duration) bool { return math.Abs(float64(got-want)) <= 0.005*float64(want) }

	if err := a.publishSpread(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Interval(); !near(got) {
		t.Errorf("after latencies uniform over 30 ms, a.Interval() = %s (G = %s), want (1+J+cutoff)/200 = %s, shorter than 1.005/193.05", got, a.Stats().Dispersion, want)
	}
	if got := b.Interval(); got != time.Duration(math.Ceil(1.055/rate*1e9)) {
		t.Errorf("b.Interval() = %s before it read the shared spread, want the initial one", got)
	}
	if err := b.publishSpread(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Interval(); got != a.Interval() {
		t.Errorf("b.Interval() = %s after reading the shared spread, want a's %s", got, a.Interval())
	}
	if st := b.Stats(); st.LocalSpread != 0 || st.Spread != a.Stats().Spread {
		t.Errorf("b.Stats() spread=%s local=%s, want a's %s and none of its own", st.Spread, st.LocalSpread, a.Stats().Spread)
	}

	// A process that stops withdraws its spread; with no live samples
	// left, the others pace from what the fleet last measured (remembered
	// under the bucket), not from the initial worst case.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.publishSpread(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Interval(); !near(got) || b.Stats().LocalSpread != 0 {
		t.Errorf("b.Interval() = %s after a closed, want the %s the fleet last measured", got, want)
	}
}

func TestStaleSpreadsAreIgnored(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	l := newTestLimiter(t, rdb, Config{})
	now := redisNow(t, rdb)
	old := now.Add(-2 * spreadMaxAge)
	if err := rdb.HSet(ctx, l.keys.spread,
		"dead-process", fmt.Sprintf("2000|0|400000|1|%d", old.UnixMicro()),
		"live-process", fmt.Sprintf("200|20000|120000|0,1|%d", now.UnixMicro()), // enough samples to be trusted (matureSamples)
		"garbage", "not a spread",
		"old-format", fmt.Sprintf("400000:%d", now.UnixMicro()),
		"tails-format", fmt.Sprintf("2000|0|400000|%d", now.UnixMicro()),
	).Err(); err != nil {
		t.Fatal(err)
	}
	// An earlier version's hash, "<spread µs>:<Redis µs>" per process, is
	// another key: it is neither read nor cleaned, so both versions can run
	// side by side in a rolling deploy.
	var oldKeys []string
	for _, old := range []struct{ key, entry string }{
		{"spread-tails", fmt.Sprintf("400000:%d", now.UnixMicro())},
		// The histogram form: its counts read as a sketch would be
		// latencies of a few µs, and pace far too fast.
		{"spread-hist", fmt.Sprintf("2000|0|400000|0,0,0,5,1995|%d", now.UnixMicro())},
	} {
		oldKey := strings.TrimSuffix(l.keys.spread, "spread-q") + old.key
		if oldKey == l.keys.spread {
			t.Fatalf("the spread hash kept its earlier name %q", oldKey)
		}
		if err := rdb.HSet(ctx, oldKey, "old-process", old.entry).Err(); err != nil {
			t.Fatal(err)
		}
		oldKeys = append(oldKeys, oldKey)
	}
	if err := l.publishSpread(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Spread; got != 100*time.Millisecond {
		t.Errorf("shared spread %s, want the live 100ms, not the dead or old-format 400ms", got)
	}
	fields, err := rdb.HKeys(ctx, l.keys.spread).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fields, []string{"live-process"}) {
		t.Errorf("spread fields after publishing: %v, want only the live one", fields)
	}
	for _, oldKey := range oldKeys {
		if n, err := rdb.HLen(ctx, oldKey).Result(); err != nil || n != 1 {
			t.Errorf("the earlier version's hash %s has %d fields (%v) after publishing, want its 1 untouched", oldKey, n, err)
		}
	}
}

func TestSpreadIsTheFleetQuantileOfAllSamples(t *testing.T) {
	s := redistest.Start(t)
	ctx := context.Background()
	ms := func(v float64) time.Duration {
		return time.Duration(v * float64(time.Millisecond)).Truncate(time.Microsecond)
	}
	// Three processes with 1000, 300 and 50 samples. The small one has an
	// outlier: its own spread is its extremes, 190 ms, and the largest
	// per-process spread would be that. Over all 1350 samples the outlier is
	// cut (r = ceil(0.005*1350) = 7).
	perProc := [][]sample{nil, nil, nil}
	now := time.Now()
	for i := range 1000 {
		d := ms(10 + 30*float64(i)/999)
		perProc[0] = append(perProc[0], sample{at: now, lo: d, hi: d + ms(1)})
	}
	for i := range 300 {
		d := ms(15 + 10*float64(i)/299)
		perProc[1] = append(perProc[1], sample{at: now, lo: d, hi: d + 2*time.Millisecond})
	}
	for i := range 49 {
		d := ms(20 + float64(i)/10)
		perProc[2] = append(perProc[2], sample{at: now, lo: d, hi: d})
	}
	perProc[2] = append(perProc[2], sample{at: now, lo: ms(200), hi: ms(210)})

	var (
		ls            []*Limiter
		lows, highs   []time.Duration
		maxLocal      time.Duration
		sampleCounter int
		sketches      []sketch
		all           []time.Duration
	)
	for _, ss := range perProc {
		l := newTestLimiter(t, s.Client(t), Config{})
		ignoreStalls(l) // a hiccup of this loaded machine must not drop the samples
		for _, x := range ss {
			// Observe measures lo from the slot and adds the round trip.
			l.Observe(Permit{Slot: now, uncertain: x.hi - x.lo}, now.Add(x.lo))
			lows = append(lows, x.lo)
			highs = append(highs, x.hi)
			all = append(all, x.hi)
			sampleCounter++
		}
		his := make([]time.Duration, 0, len(ss))
		for _, x := range ss {
			his = append(his, x.hi.Truncate(time.Microsecond))
		}
		slices.Sort(his)
		sketches = append(sketches, sketchOf(his))
		local, _ := l.window.spread(time.Now())
		maxLocal = max(maxLocal, local)
		ls = append(ls, l)
	}
	slices.Sort(lows)
	slices.SortFunc(highs, func(a, b time.Duration) int { return int(b - a) })
	r := min(max(int(math.Ceil(0.005*float64(sampleCounter))), 1), spreadTail)
	want, wantRef := highs[r-1]-lows[r-1], lows[r-1]
	if r != 7 || want >= maxLocal/2 {
		t.Fatalf("test data: r=%d, merged spread %s, largest local %s: want r=7 and a merged spread well below the largest", r, want, maxLocal)
	}

	for _, l := range ls {
		if err := l.publishSpread(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range ls {
		if err := l.publishSpread(ctx); err != nil { // every process reads the fleet's
			t.Fatal(err)
		}
		if got := l.Stats().Spread; got != want {
			t.Errorf("process %d: shared spread %s, want the merged p99.5-p0.5 %s (not the largest local %s)", i, got, want, maxLocal)
		}
		if got := time.Duration(l.lateBound.Load()); got != wantRef+want {
			t.Errorf("process %d: late bound %s, want the merged p0.5 %s + spread %s", i, got, wantRef, want)
		}
		// Paced from the dispersion of every sample: the mixture of the
		// processes' sketches, within 2% of the samples' own.
		// The worst case (1+J)/Rate wins where it is the shorter.
		g, _ := meanDifference(sketches)
		if exact := exactMeanDifference(all); math.Abs(float64(g-exact)) > 0.02*float64(exact) {
			t.Errorf("the sketches' dispersion %s, the samples' own %s: more than 2%% apart", g, exact)
		}
		late := DefaultLateCutoff.Seconds()
		worst := time.Duration(math.Ceil((1 + want.Seconds() + late) / DefaultRate * 1e9))
		if got, want := l.Interval(), min(worst, time.Duration(math.Ceil((1+late)*1e9/pacedRate(DefaultRate, g)))); got != want || l.Stats().Dispersion != g {
			t.Errorf("process %d: Interval() = %s with dispersion %s, want %s from the dispersion of all samples %s", i, got, l.Stats().Dispersion, want, g)
		}
	}

	// The rank stops at spreadTail, the most each process shares: with a
	// full window of 2000 more samples, N = 3350 asks for the 17th.
	big := newTestLimiter(t, s.Client(t), Config{})
	for i := range spreadSamples {
		d := ms(10 + float64(i)/100)
		big.window.add(sample{at: time.Now(), lo: d, hi: d})
		lows = append(lows, d)
		highs = append(highs, d)
	}
	slices.Sort(lows)
	slices.SortFunc(highs, func(a, b time.Duration) int { return int(b - a) })
	if err := big.publishSpread(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := big.Stats().Spread, highs[spreadTail-1]-lows[spreadTail-1]; got != want {
		t.Errorf("spread over 3350 samples %s, want the 10th most extreme on each side, %s", got, want)
	}
}

func TestLateObserveCompensates(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	// Rate 1: the next slot lies a second ahead, so tat = max(tat, now) + d is
	// tat + d whatever the machine's speed.
	l := newTestLimiter(t, rdb, Config{Rate: 1})
	seed(t, rdb, l)
	ignoreStalls(l) // a hiccup of this loaded machine must not hide the late answers

	// 1001 samples, r = 6 for up to 1200: the late bound is the 6th largest
	// hi, and the flat top (every hi from 39 ms on is 39 ms) keeps it there
	// when the two samples observed below are added, so a background
	// publish in between changes nothing.
	now := time.Now()
	for i := range 1001 {
		lo := 10*time.Millisecond + time.Duration(i)*30*time.Microsecond
		l.window.add(sample{at: now, lo: lo, hi: min(lo, 39*time.Millisecond)})
	}
	if err := l.publishSpread(ctx); err != nil {
		t.Fatal(err)
	}
	bound := time.Duration(l.lateBound.Load())
	if want := 39 * time.Millisecond; bound != want {
		t.Fatalf("late bound %s after the spread was shared, want %s", bound, want)
	}

	p1, err := l.Wait(ctx, Urgent)
	if err != nil {
		t.Fatal(err)
	}
	tat := func() int64 {
		t.Helper()
		v, err := rdb.HGet(ctx, l.keys.gcra, "tat").Int64()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tat0 := tat()

	// On time: the answer came exactly at the bound.
	l.Observe(Permit{Slot: p1.Slot, uncertain: time.Millisecond}, p1.Slot.Add(bound-time.Millisecond))
	l.bg.Wait()
	if got := tat(); got != tat0 {
		t.Errorf("an on-time Observe moved tat by %dµs", got-tat0)
	}
	if st := l.Stats(); st.Compensations != 0 {
		t.Errorf("Stats().Compensations = %d after on-time calls, want 0", st.Compensations)
	}

	// Late by 7 ms (its round trip included).
	const excess = 7 * time.Millisecond
	l.Observe(Permit{Slot: p1.Slot, uncertain: time.Millisecond}, p1.Slot.Add(bound+excess-time.Millisecond))
	l.bg.Wait()
	if got := tat(); got != tat0+excess.Microseconds() {
		t.Errorf("a call %s late moved tat by %dµs, want %dµs", excess, got-tat0, excess.Microseconds())
	}
	if st := l.Stats(); st.Compensations != 1 {
		t.Errorf("Stats().Compensations = %d, want 1", st.Compensations)
	}

	// The next grant lies later by the excess. Its Wait is abandoned as
	// soon as it is granted, not slept through.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var p2 Permit
	l.afterGrant = func(p Permit) { p2 = p; cancel() }
	if _, err := l.Wait(wctx, Urgent); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled after the grant", err)
	}
	if want := time.UnixMicro(tat0).Add(excess); !p2.RedisSlot.Equal(want) {
		t.Errorf("slot after the late call %s, want the old next slot %s + %s", p2.RedisSlot, time.UnixMicro(tat0), excess)
	}
	if got := p2.RedisSlot.Sub(p1.RedisSlot); got < slotInterval(l)+excess {
		t.Errorf("slot after the late call follows the previous by %s, want at least interval %s + %s", got, slotInterval(l), excess)
	}

	// Ten seconds late (a slow server, a timeout): one slot, not ten
	// seconds, or a slow API would stall the whole fleet.
	tat1, iv := tat(), l.Interval()
	l.Observe(Permit{Slot: p1.Slot, uncertain: time.Millisecond}, p1.Slot.Add(10*time.Second))
	l.bg.Wait()
	if got, want := tat()-tat1, ceilMicros(iv); got != want {
		t.Errorf("a call 10 s late moved tat by %dµs, want one interval, %dµs", got, want)
	}
	if st := l.Stats(); st.Compensations != 2 {
		t.Errorf("Stats().Compensations = %d, want 2", st.Compensations)
	}
}

func TestOneRoundTripPerWait(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	l := newTestLimiter(t, rdb, Config{Rate: 1000})
	seed(t, rdb, l)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil { // a shared TEST_REDIS_URL may know it
		t.Fatal(err)
	}

	// The first Wait sends the script (EVALSHA answers NOSCRIPT, then EVAL).
	if _, err := l.Wait(ctx, Urgent); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.WaitRoundTrips != 2+st.LateDrops {
		t.Errorf("first Wait took %d round trips with %d late drops, want 2 (EVALSHA, EVAL) and one per drop", st.WaitRoundTrips, st.LateDrops)
	}
	before := l.Stats()
	const n = 50
	for i := range n {
		if _, err := l.Wait(ctx, Lane(i%2)); err != nil {
			t.Fatal(err)
		}
	}
	after := l.Stats()
	// A slot dropped as granted too late (a loaded machine) costs one more.
	drops := after.LateDrops - before.LateDrops
	if trips, calls := after.WaitRoundTrips-before.WaitRoundTrips, after.Calls-before.Calls; trips != n+drops || calls != n {
		t.Errorf("%d Waits took %d round trips (%d calls counted, %d late drops), want one each and one per drop", n, trips, calls, drops)
	}
	if after.RoundTrips < after.WaitRoundTrips {
		t.Errorf("Stats().RoundTrips %d < WaitRoundTrips %d", after.RoundTrips, after.WaitRoundTrips)
	}
}

func TestWaitRejectsUnknownLane(t *testing.T) {
	s := redistest.Start(t)
	l := newTestLimiter(t, s.Client(t), Config{})
	if _, err := l.Wait(context.Background(), Lane(7)); !errors.Is(err, ErrUnknownLane) {
		t.Errorf("Wait(Lane(7)) = %v, want ErrUnknownLane", err)
	}
}

func TestNewAppliesDefaultsAndNamesTheBadField(t *testing.T) {
	rdb := redistest.Start(t).Client(t)

	l, err := New(Config{Redis: rdb, App: testApp, API: testAPI})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	c := l.cfg
	if c.Prefix != DefaultPrefix || c.Rate != DefaultRate || c.AheadUrgent != DefaultAheadUrgent ||
		c.AheadBulk != DefaultAheadBulk || c.Horizon != DefaultHorizon || c.InitialSpread != DefaultInitialSpread ||
		c.Logger == nil || c.Now == nil {
		t.Errorf("defaults not applied: %+v", c)
	}
	if got, want := l.keys.gcra, "recallq:{lim:1400000000:admin_msgwithdraw}:gcra"; got != want {
		t.Errorf("gcra key %q, want %q", got, want)
	}

	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no redis", Config{App: testApp, API: testAPI}, "Config.Redis"},
		{"no app", Config{Redis: rdb, API: testAPI}, "Config.App"},
		{"no API", Config{Redis: rdb, App: testApp}, "Config.API"},
		{"brace in API", Config{Redis: rdb, App: testApp, API: "a}b"}, "Config.API"},
		{"colon in API", Config{Redis: rdb, App: testApp, API: "a:b"}, "Config.API"},
		{"brace in prefix", Config{Redis: rdb, App: testApp, API: testAPI, Prefix: "{x"}, "Config.Prefix"},
		{"negative rate", Config{Redis: rdb, App: testApp, API: testAPI, Rate: -1}, "Config.Rate"},
		{"NaN rate", Config{Redis: rdb, App: testApp, API: testAPI, Rate: math.NaN()}, "Config.Rate"},
		{"negative urgent lookahead", Config{Redis: rdb, App: testApp, API: testAPI, AheadUrgent: -1}, "Config.AheadUrgent"},
		{"negative bulk lookahead", Config{Redis: rdb, App: testApp, API: testAPI, AheadBulk: -1}, "Config.AheadBulk"},
		{"negative horizon", Config{Redis: rdb, App: testApp, API: testAPI, Horizon: -time.Second}, "Config.Horizon"},
		{"spread beyond bound", Config{Redis: rdb, App: testApp, API: testAPI, InitialSpread: time.Second}, "Config.InitialSpread"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("New = %v, want ErrInvalidConfig naming %s", err, tc.field)
			}
		})
	}
}

func TestKeysShareOneHashSlot(t *testing.T) {
	k := newKeys("recallq", BucketName(testApp, testAPI))
	tag := func(key string) string {
		i := strings.IndexByte(key, '{')
		j := strings.IndexByte(key[i:], '}')
		return key[i+1 : i+j]
	}
	for _, key := range []string{k.gcra, k.spread} {
		if got, want := tag(key), "lim:"+BucketName(testApp, testAPI); got != want {
			t.Errorf("key %q has hash tag %q, want %q", key, got, want)
		}
	}
}

// BenchmarkWait prints the Redis cost of a permit: go test -run - -bench Wait
// ./internal/limiter/. The rate is set high so the bucket, not the spacing,
// is measured.
func BenchmarkWait(b *testing.B) {
	s := redistest.Start(b)
	l, err := New(Config{Redis: s.Client(b), App: testApp, API: testAPI, Rate: 1e5, Horizon: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Wait(ctx, Urgent); err != nil { // load the script
		b.Fatal(err)
	}
	before := l.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Wait(ctx, Bulk); err != nil {
				b.Error(err)
				return
			}
		}
	})
	after := l.Stats()
	calls := float64(after.Calls - before.Calls)
	b.ReportMetric(float64(after.WaitRoundTrips-before.WaitRoundTrips)/calls, "redis_ops/call")
	b.ReportMetric(float64(after.RoundTrips-before.RoundTrips)/calls, "all_redis_ops/call")
}

// TestLateAnswerUnderStatisticalPacingDoesNotPushBack: where the latency's
// tail is long (here 50 ms to 1.5 s) the interval is the statistical one,
// whose margin is set by the whole distribution of latencies, tail
// included (pacing.go). An answer beyond the fleet's p99.5 is that tail,
// not an arrival the model missed: pushing the schedule back for it paid
// for it twice (recallq-lab bench, lognormal 80 ms / 600 ms: about 3
// slots a second, 1.5% of the rate). Under the worst-case interval it
// still does (TestLateObserveCompensates).
func TestLateAnswerUnderStatisticalPacingDoesNotPushBack(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	ctx := context.Background()
	l := newTestLimiter(t, rdb, Config{})
	seed(t, rdb, l)
	ignoreStalls(l)
	st := paceFrom(t, l, uniformLatency(50, 1500))
	g := st.Dispersion
	statistical := time.Duration(math.Ceil((1 + l.cfg.LateCutoff.Seconds()) * 1e9 / pacedRate(l.cfg.Rate, g)))
	if iv := st.Interval; g <= 0 || iv != statistical {
		t.Fatalf("interval %s with G %s, want the statistical %s", iv, g, statistical)
	}
	p, err := l.Wait(ctx, Urgent)
	if err != nil {
		t.Fatal(err)
	}
	tat0, err := rdb.HGet(ctx, l.keys.gcra, "tat").Int64()
	if err != nil {
		t.Fatal(err)
	}
	l.Observe(Permit{Slot: p.Slot, uncertain: time.Millisecond}, p.Slot.Add(3*time.Second))
	l.bg.Wait()
	tat1, err := rdb.HGet(ctx, l.keys.gcra, "tat").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if tat1 != tat0 || l.Stats().Compensations != 0 {
		t.Fatalf("an answer 3 s after its slot under statistical pacing moved tat by %dµs (compensations %d), want 0",
			tat1-tat0, l.Stats().Compensations)
	}
}

// exactMeanDifference is E|X - X'| over the distinct pairs of xs.
func exactMeanDifference(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := float64(len(s))
	var sum float64
	for i, x := range s {
		sum += (2*float64(i) - n + 1) * float64(x)
	}
	return time.Duration(2 * sum / (n * (n - 1)))
}
