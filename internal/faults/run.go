package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/childproc"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/sleep"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// Bounds of a run's steps.
const (
	// workersReadyTimeout bounds the wait for the first workers to start.
	workersReadyTimeout = 30 * time.Second
	// stopGrace is how long a worker may take to stop after SIGTERM.
	stopGrace = worker.DefaultShutdownTimeout + 5*time.Second
	// verifyTimeout bounds reading the fates and statistics.
	verifyTimeout = 5 * time.Minute
)

// circuitOpen starts the worker's log line when the breaker opens.
const circuitOpen = "circuit open"

// run is one fault's run.
type run struct {
	s       *suite
	name    string
	index   int
	dir     string
	redis   *redisProc
	insp    *asynq.Inspector
	workers []*child        // the worker in each slot now
	all     []*child        // every worker the run started
	killed  map[*child]bool // killed on purpose
	gone    map[*child]bool // exits already reported
	nextID  int
	t0      time.Time // the campaign's start: the first task queued

	mu     sync.Mutex
	events []string
}

// event notes what happened, on the progress output and in the row's notes.
func (r *run) event(format string, a ...any) {
	at := 0.0
	if !r.t0.IsZero() {
		at = time.Since(r.t0).Seconds()
	}
	line := fmt.Sprintf("t=%.1fs ", at) + fmt.Sprintf(format, a...)
	r.mu.Lock()
	r.events = append(r.events, line)
	r.mu.Unlock()
	r.s.progress("[%s] %s", r.name, line)
}

// runOne runs the campaign under the named fault from a fresh Redis and a
// reset simulator, and judges it.
func (s *suite) runOne(ctx context.Context, index int, name string) (Row, error) {
	o := s.o
	row := Row{Fault: name}
	inj, err := newInjector(name)
	if err != nil {
		return row, err
	}
	r := &run{s: s, name: name, index: index, dir: filepath.Join(s.dir, fmt.Sprintf("%d-%s", index, name)),
		workers: make([]*child, o.Workers), killed: map[*child]bool{}, gone: map[*child]bool{}}
	if err := os.MkdirAll(filepath.Join(r.dir, "redis"), 0o700); err != nil {
		return row, err
	}
	defer r.cleanup()

	if r.redis, err = startRedis(ctx, &s.procs, filepath.Join(r.dir, "redis"), o.AppendFsync); err != nil {
		return row, err
	}
	redisOpt := asynq.RedisClientOpt{Addr: r.redis.addr}
	r.insp = asynq.NewInspector(redisOpt)
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	if err := s.sim.Reset(ctx); err != nil {
		return row, err
	}
	msgs := campaignMessages(o.Tasks, s.nonce, index, o.Missing)
	missing, err := forgetMissing(ctx, s.sim, msgs)
	if err != nil {
		return row, err
	}
	seqs := groupCampaign(o.Groups, o.GroupSeqs, s.nonce, index, o.Missing)
	unrecallable, err := createGroups(ctx, s.sim, seqs)
	if err != nil {
		return row, err
	}
	s.progress("[%s] redis-server at %s (appendfsync %s); simulator reset, %d messages forgotten, %d groups of %d seqs created (%d unrecallable)",
		name, r.redis.addr, o.AppendFsync, missing, o.Groups, o.GroupSeqs, unrecallable)

	for slot := range r.workers {
		if _, err := r.startWorker(slot); err != nil {
			return row, err
		}
	}
	if err := r.waitWorkers(ctx); err != nil {
		return row, err
	}

	loadBefore := childproc.LoadAverage()
	campaign := fmt.Sprintf("faults-%s-%d", name, s.nonce)
	r.t0 = time.Now()
	queued, groupQueued, err := enqueueCampaign(ctx, client, msgs, seqs, campaign)
	if err != nil {
		return row, err
	}
	r.event("queued %d recalls (%d of them of missing messages) and %d group recalls (%d of them of unrecallable seqs) of campaign %s on %s in %.1f s",
		queued, missing, groupQueued, unrecallable, campaign, tasks.AppQueue(tasks.QueueBulk, sdkAppID), time.Since(r.t0).Seconds())

	d, err := r.drain(ctx, inj, queued+groupQueued)
	if err != nil {
		return row, err
	}
	problems := r.stopWorkers()

	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	states, err := finalStates(r.insp)
	if err != nil {
		return row, err
	}
	fates, err := readFates(vctx, msgs, s.sim.fate)
	if err != nil {
		return row, err
	}
	st, err := s.sim.Stats(vctx)
	if err != nil {
		return row, err
	}
	groupFates, err := readFates(vctx, seqs, s.sim.groupFate)
	if err != nil {
		return row, err
	}
	gst, err := s.sim.groupStats(vctx)
	if err != nil {
		return row, err
	}
	v := judge(msgs, states, fates)
	gv := judgeGroups(seqs, states, groupFates)

	row = Row{
		Fault: name, Queued: queued, Missing: v.missing,
		Recalled: v.recalled, AlreadyRecalled: v.already,
		DeadLettered: v.dead, DeadByCode: v.deadByCode,
		Lost: v.lost, WronglyDeadLettered: v.wrong,
		MaxInAnyWindow: st.MaxInAnyWindow, Rejected60007: st.Rejected60007,
		Retried: v.retried, CircuitOpen: r.countLogLines(circuitOpen),
		Drained: d.drained, Drain: d.at,
		Group: GroupRow{
			Queued: groupQueued, Planned: gv.planned,
			Recalled: gv.recalled, AlreadyRecalled: gv.already,
			DeadLettered: gv.dead, DeadByCode: gv.deadByCode,
			Lost: gv.lost, WronglyDeadLettered: gv.wrong, OffPlan: gv.offPlan,
			Retried: gv.retried, Calls: gst.Calls,
			MaxInAnyWindow: gst.MaxInAnyWindow, Rejected10006: gst.Rejected60007,
		},
	}
	row.Notes = append(row.Notes, r.events...)
	row.Notes = append(row.Notes, fmt.Sprintf("machine load average (1 min): %s before the campaign, %s after the drain (nproc %d; the machine may be shared)",
		loadBefore, childproc.LoadAverage(), runtime.NumCPU()))
	row.Notes = append(row.Notes, fmt.Sprintf("simulator: %d calls, answers %s, %d HTTP errors; %d counted against the cap",
		st.Calls, byCode(st.ByCode), st.HTTPErrors, st.Counted))
	if g := row.Group; g.Queued > 0 {
		perCall := 0.0
		if gst.Seqs > 0 && gst.Calls > 0 {
			perCall = float64(gst.Seqs) / float64(gst.Calls)
		}
		row.Notes = append(row.Notes, fmt.Sprintf("group campaign: %d seqs queued (%d to be dead-lettered with %d); %d recalled, %d already recalled, dead-lettered %s, %d lost, %d wrongly dead-lettered, %d off plan, %d retried",
			g.Queued, g.Planned, codeGroupUnrecallable, g.Recalled, g.AlreadyRecalled, deadCell(g.DeadLettered, g.DeadByCode), g.Lost, g.WronglyDeadLettered, g.OffPlan, g.Retried))
		row.Notes = append(row.Notes, fmt.Sprintf("simulator, group_msg_recall: %d calls (%.2f seqs a call answered with a RetCode), answers %s, RetCodes %s; busiest sliding second %d calls, %d answered 10006",
			gst.Calls, perCall, byCode(gst.ByCode), byCode(gst.ByRetCode), g.MaxInAnyWindow, g.Rejected10006))
	}
	if n := r.countLogLines("circuit closed"); row.CircuitOpen > 0 || n > 0 {
		row.Notes = append(row.Notes, fmt.Sprintf("workers' logs: %d \"circuit open\" lines, %d \"circuit closed\" lines", row.CircuitOpen, n))
	}
	if v.missingNotDead > 0 || v.presentDead > 0 {
		row.Notes = append(row.Notes, fmt.Sprintf("CHECK: %d missing messages did not end dead-lettered with 20022; %d existing messages were dead-lettered",
			v.missingNotDead, v.presentDead))
	}
	if !d.drained && d.last != nil {
		q := d.last
		row.Notes = append(row.Notes, fmt.Sprintf("CHECK: did not drain within %s: %d pending, %d active, %d retry, %d scheduled, %d completed, %d archived",
			o.DrainTimeout, q.Pending, q.Active, q.Retry, q.Scheduled, q.Completed, q.Archived))
	}
	if row.MaxInAnyWindow > Cap {
		row.Notes = append(row.Notes, fmt.Sprintf("CHECK: %d calls in one sliding second, over the cap of %d, the second ending t=%.3fs; busiest whole seconds of the simulator's clock %s; %s",
			row.MaxInAnyWindow, Cap, st.MaxWindowEnd.Sub(r.t0).Seconds(), busiest(st, 5), sendPattern(st, r.t0)))
	} else if !st.MaxWindowEnd.IsZero() {
		row.Notes = append(row.Notes, fmt.Sprintf("busiest sliding second: %d calls, ending t=%.3fs; %s",
			row.MaxInAnyWindow, st.MaxWindowEnd.Sub(r.t0).Seconds(), sendPattern(st, r.t0)))
	}
	for _, e := range append(v.examples, gv.examples...) {
		row.Notes = append(row.Notes, "CHECK: "+e)
	}
	row.Notes = append(row.Notes, problems...)
	return row, nil
}

// startWorker starts a worker process in slot.
func (r *run) startWorker(slot int) (*child, error) {
	o := r.s.o
	name := fmt.Sprintf("worker-%d", r.nextID)
	r.nextID++
	args := []string{WorkerCommand,
		"--concurrency", strconv.Itoa(o.Concurrency),
		"--redis-url", "redis://" + r.redis.addr + "/0",
		"--endpoint", r.s.sim.URL,
		"--rate", strconv.FormatFloat(o.Rate, 'g', -1, 64),
		"--metrics-addr=",
		"--log-format", "text", "--log-level", "info",
	}
	c, err := r.s.procs.Start(r.dir, name, o.Exe, args, r.s.appEnv())
	if err != nil {
		return nil, err
	}
	r.workers[slot] = c
	r.all = append(r.all, c)
	return c, nil
}

// waitWorkers waits until every first worker has registered with asynq
// (its heartbeat lists it among the servers).
func (r *run) waitWorkers(ctx context.Context) error {
	deadline := time.Now().Add(workersReadyTimeout)
	for {
		pids := map[int]bool{}
		for _, w := range r.workers {
			if w.Exited() {
				return fmt.Errorf("%s exited at start (%v); its log ends:\n%s", w.Name(), w.Err(), w.Tail(10))
			}
			pids[w.PID()] = true
		}
		if servers, err := r.insp.Servers(); err == nil {
			up := map[int]bool{} // a worker runs two asynq servers (worker.LegacyQueues)
			for _, srv := range servers {
				if pids[srv.PID] {
					up[srv.PID] = true
				}
			}
			if len(up) == len(r.workers) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the workers did not all start within %s", workersReadyTimeout)
		}
		if err := sleep.For(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// drainResult is what the wait for the campaign saw.
type drainResult struct {
	drained bool
	at      time.Duration // from t0 until drained, or until it gave up
	last    *asynq.QueueInfo
}

// drain looks at the queue every PollEvery, lets the fault act, and waits
// until every task is completed or archived and the fault is over, or
// DrainTimeout has passed since t0.
func (r *run) drain(ctx context.Context, inj injector, queued int) (drainResult, error) {
	o := r.s.o
	var d drainResult
	deadline := r.t0.Add(o.DrainTimeout)
	nextProgress := time.Now()
	done := 0
	for {
		l := look{now: time.Now(), queued: queued}
		if info, err := r.insp.GetQueueInfo(tasks.AppQueue(tasks.QueueBulk, sdkAppID)); err == nil {
			d.last, l.info = info, info
			done = info.Completed + info.Archived
		}
		l.done = done
		if err := inj.step(ctx, r, l); err != nil {
			return d, fmt.Errorf("%s: %w", r.name, err)
		}
		r.noteExits()
		if l.info != nil && done >= queued && inj.over() {
			d.drained, d.at = true, l.now.Sub(r.t0)
			r.event("drained: all %d tasks completed or archived", queued)
			return d, nil
		}
		if !l.now.Before(nextProgress) {
			r.progressLine(l)
			nextProgress = l.now.Add(o.ProgressEvery)
		}
		if l.now.After(deadline) {
			d.at = l.now.Sub(r.t0)
			r.event("gave up waiting after %s: %d/%d finished", o.DrainTimeout, done, queued)
			return d, nil
		}
		if err := sleep.For(ctx, o.PollEvery); err != nil {
			return d, err
		}
	}
}

// progressLine prints where the campaign stands.
func (r *run) progressLine(l look) {
	at := l.now.Sub(r.t0).Seconds()
	if l.info == nil {
		r.s.progress("[%s] t=%.1fs %d/%d finished; Redis not answering", r.name, at, l.done, l.queued)
		return
	}
	q := l.info
	r.s.progress("[%s] t=%.1fs %d/%d finished (%d completed, %d archived); pending %d, active %d, retry %d, scheduled %d",
		r.name, at, l.done, l.queued, q.Completed, q.Archived, q.Pending, q.Active, q.Retry, q.Scheduled)
}

// noteExits reports, once each, workers that exited without being killed.
func (r *run) noteExits() {
	for _, w := range r.all {
		if w.Exited() && !r.killed[w] && !r.gone[w] {
			r.gone[w] = true
			r.event("CHECK: %s (pid %d) exited on its own (%v); its log ends: %s", w.Name(), w.PID(), w.Err(), w.TailLine(3))
		}
	}
}

// stopWorkers SIGTERMs every running worker and waits for each (stopGrace),
// returning the problems.
func (r *run) stopWorkers() []string {
	var running []*child
	for _, w := range r.workers {
		if w != nil && !w.Exited() {
			running = append(running, w)
		}
	}
	var problems []string
	for i, err := range childproc.StopAll(running, stopGrace) {
		if err != nil {
			problems = append(problems, fmt.Sprintf("CHECK: %v; its log ends: %s", err, running[i].TailLine(3)))
		}
	}
	sort.Strings(problems)
	return problems
}

// countLogLines counts the lines with s in every worker's log.
func (r *run) countLogLines(s string) int {
	n := 0
	for _, w := range r.all {
		n += w.CountLines(s)
	}
	return n
}

// cleanup kills what the run still has running.
func (r *run) cleanup() {
	for _, w := range r.all {
		w.Signal(syscall.SIGKILL)
	}
	for _, w := range r.all {
		w.Wait(5 * time.Second)
	}
	if r.insp != nil {
		r.insp.Close()
	}
	if r.redis != nil {
		r.redis.stop()
	}
}

// byCode writes the simulator's answers by code: "0:19600 20022:400".
func byCode(m map[int]int64) string {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d:%d", c, m[c]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// busiest lists the n busiest whole seconds of the simulator's clock.
func busiest(st imsim.Stats, n int) string {
	idx := make([]int, len(st.PerSecond))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return st.PerSecond[idx[a]] > st.PerSecond[idx[b]] })
	var parts []string
	for _, i := range idx[:min(n, len(idx))] {
		parts = append(parts, fmt.Sprintf("t=%d:%d", i, st.PerSecond[i]))
	}
	return strings.Join(parts, " ")
}

// sendPattern tells where a busy second came from: the same count with
// each call placed when the simulator read it plus its latency ("on
// time", where a remote server never starved of CPU would count it), and
// by read alone ("sent": a burst of sends shows there). A count over the
// cap that is not on time is the simulator's own delay on a loaded
// machine, not the workers'.
func sendPattern(st imsim.Stats, t0 time.Time) string {
	if st.MaxReadsInAnyWindow == 0 {
		return "on time and sent: not recorded"
	}
	return fmt.Sprintf("on time %d; sent: most in any 1 s %d (ending t=%.3fs), in any 100 ms %d",
		st.MaxInAnyWindowOnTime, st.MaxReadsInAnyWindow, st.MaxReadsWindowEnd.Sub(t0).Seconds(), st.MaxReadsIn100ms)
}
