package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/childproc"
	"github.com/recallq/recallq/internal/fanout"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/sleep"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// Bounds of the steps of one configuration.
const (
	enqueueTimeout = time.Minute
	// enqueueWorkers is how many recalls are queued at once.
	enqueueWorkers = 32
	// stopGrace is how long a worker may take to stop after SIGTERM.
	stopGrace = worker.DefaultShutdownTimeout + 5*time.Second
	// leaseRecovery is the kill run's extra drain time: asynq recovers a
	// dead worker's tasks once their 30 s lease is 30 s past, on a
	// recoverer that runs every minute.
	leaseRecovery = 150 * time.Second
	// killPhase is where in a second of the simulator's clock the kill
	// lands: early, so the calls it loses fall in that second and the
	// seconds after it are whole.
	killPhase = 100 * time.Millisecond
)

// config is one row of a table.
type config struct {
	index       int
	limiter     string
	procs       int
	concurrency int
	kill        bool // SIGKILL one worker when half the tasks are done
	stall       bool // SIGSTOP a worker for 300-700 ms every 1.5 s (stall.go)
	badPod      bool // worker-0 signs as an account that is no admin (90009)
}

func (c config) label() string {
	if c.kill {
		return c.limiter + "+kill"
	}
	if c.stall {
		return c.limiter + "+stall"
	}
	if c.badPod {
		return c.limiter + "+badpod"
	}
	return c.limiter
}

func (c config) String() string {
	return fmt.Sprintf("%s, %d processes x concurrency %d", c.label(), c.procs, c.concurrency)
}

// sample is one look at the queue.
type sample struct {
	at      time.Time
	pending int
	done    int // completed + archived
}

// killInfo is what the kill run did.
type killInfo struct {
	at         time.Time
	pid        int
	done       int       // tasks finished when it killed
	stranded   int       // tasks left active in the killed worker
	strandedAt time.Time // when everything else was done
}

// drainResult is what the wait for the queue saw.
type drainResult struct {
	samples []sample
	drained bool
	at      time.Time // drained, or gave up
	last    *asynq.QueueInfo
	kill    *killInfo
}

// result is one configuration's figures.
type result struct {
	row   row
	quota *quotaRow // with an outside load only
	notes []string
}

// runConfig runs one configuration from a clean Redis and simulator.
func (b *bench) runConfig(ctx context.Context, sim *simProc, c config) (result, error) {
	if err := b.rdb.FlushAll(ctx).Err(); err != nil {
		return result{}, fmt.Errorf("flush Redis: %w", err)
	}
	if err := sim.reset(ctx); err != nil {
		return result{}, err
	}
	if c.limiter == LimiterShared {
		if err := b.primeSchedule(ctx); err != nil {
			return result{}, err
		}
	}
	st0, err := sim.stats(ctx)
	if err != nil {
		return result{}, err
	}
	loadBefore := childproc.LoadAverage()
	t0 := time.Now()
	n, err := b.enqueue(ctx, c.index, b.o.Tasks)
	if err != nil {
		return result{}, err
	}
	fmt.Fprintf(b.o.Progress, "bench:   queued %d recalls in %.2f s\n", n, time.Since(t0).Seconds())

	dir := filepath.Join(b.dir, fmt.Sprintf("%02d-%s-p%d", c.index, c.label(), c.procs))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return result{}, err
	}
	ourPIDs := []int{os.Getpid(), sim.proc.PID(), b.redisPID}
	cpu0 := takeCPU(ourPIDs...)
	started := time.Now()
	f, err := b.startFleet(dir, c, sim.url)
	if err != nil {
		return result{}, err
	}
	allStarted := time.Now()

	timeout := b.o.DrainTimeout
	if c.kill {
		timeout += leaseRecovery
	}
	var stalls *stallInjector
	if c.stall {
		stalls = startStalls(f.workers)
	}
	d, err := b.waitDrained(ctx, c, n, f.workers, st0.Start, timeout)
	if stalls != nil {
		fmt.Fprintf(b.o.Progress, "bench:   %s\n", stalls.stop())
	}
	problems := f.stop()
	if err != nil {
		return result{}, err
	}
	cpu := cpuBetween(cpu0, takeCPU(ourPIDs...), f.cpuTime())

	st, err := sim.stats(ctx)
	if err != nil {
		return result{}, err
	}
	reps, missing, more := f.readReports()
	problems = append(problems, more...)

	r := newRow(c, n, st, d, started, allStarted, reps)
	res := result{row: r}
	if b.o.OutsideRate > 0 {
		q := newQuotaRow(c, st, busyOf(st, d, allStarted), b.o.OutsideRate)
		res.quota = &q
		res.notes = append(res.notes, quotaNote(c, st, reps))
	}
	load := fmt.Sprintf("; load average (1 min) %s before, %s after", loadBefore, childproc.LoadAverage())
	if cpu.ok {
		load += fmt.Sprintf("; CPU in cores: machine %.2f busy of %d, this benchmark's processes %.2f, other processes %.2f",
			cpu.machine, runtime.NumCPU(), cpu.ours, cpu.others)
	}
	res.notes = append(res.notes, r.note(st, reps, missing)+load)
	if !d.drained && d.last != nil {
		q := d.last
		res.notes = append(res.notes, fmt.Sprintf("%s P=%d did not drain within %s: %d pending, %d active, %d retry, %d scheduled, %d completed, %d archived",
			c.label(), c.procs, timeout, q.Pending, q.Active, q.Retry, q.Scheduled, q.Completed, q.Archived))
	}
	if d.kill != nil {
		res.notes = append(res.notes, killNotes(st, d)...)
	}
	if c.badPod {
		res.notes = append(res.notes, badPodNote(reps, d, allStarted))
	}
	for _, p := range problems {
		res.notes = append(res.notes, fmt.Sprintf("%s P=%d: %s", c.label(), c.procs, p))
	}
	return res, nil
}

// fleet is one configuration's worker processes.
type fleet struct {
	workers []*child
	reports []string // each worker's report file
}

// startFleet starts c.procs bench workers against the simulator at
// endpoint, their logs and reports in dir. On an error it stops those it
// started.
func (b *bench) startFleet(dir string, c config, endpoint string) (*fleet, error) {
	f := &fleet{}
	for i := range c.procs {
		report := filepath.Join(dir, fmt.Sprintf("worker-%d.json", i))
		wc := WorkerConfig{Limiter: c.limiter, Procs: c.procs, Concurrency: c.concurrency, RedisURL: b.redisURL,
			Endpoint: endpoint, Rate: b.o.Rate, RetryBase: DefaultRetryBase, Report: report}
		if c.badPod && i == 0 {
			wc.Admin = badPodAdmin
		}
		w, err := b.procs.Start(dir, fmt.Sprintf("worker-%d", i), b.o.Exe, wc.args(), b.appEnv())
		if err != nil {
			f.stop()
			return nil, err
		}
		f.workers = append(f.workers, w)
		f.reports = append(f.reports, report)
	}
	return f, nil
}

// stop stops every worker at once (SIGTERM, then SIGKILL after stopGrace)
// and describes those that did not stop cleanly, but for the kill run's
// victim.
func (f *fleet) stop() []string {
	var problems []string
	for i, err := range childproc.StopAll(f.workers, stopGrace) {
		if w := f.workers[i]; err != nil && !w.KilledOnPurpose() {
			problems = append(problems, fmt.Sprintf("%s: %v; its log ends: %s", w.Name(), err, w.TailLine(3)))
		}
	}
	sort.Strings(problems)
	return problems
}

// cpuTime is the CPU time the stopped workers used.
func (f *fleet) cpuTime() time.Duration {
	var t time.Duration
	for _, w := range f.workers {
		if ps := w.ProcessState(); ps != nil {
			t += ps.UserTime() + ps.SystemTime()
		}
	}
	return t
}

// readReports reads the stopped workers' reports. missing counts those
// that wrote none; problems describes them, but for the kill run's victim.
func (f *fleet) readReports() (reps []Report, missing int, problems []string) {
	for i, path := range f.reports {
		rep, err := readReport(path)
		if err != nil {
			if !f.workers[i].KilledOnPurpose() {
				problems = append(problems, fmt.Sprintf("%s wrote no report: %v", f.workers[i].Name(), err))
			}
			missing++
			continue
		}
		reps = append(reps, rep)
	}
	return reps, missing, problems
}

// primeSchedule takes one slot of the shared bucket, as the workers'
// limiters would, so that the one-Horizon pause a new schedule starts with
// (after the FLUSHALL) is over before the workers start: a bucket in use
// has a schedule, and that pause is not what the benchmark measures.
func (b *bench) primeSchedule(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l, err := limiter.New(limiter.Config{Redis: b.rdb, App: sdkAppID, API: tim.APIWithdraw, Rate: b.o.Rate})
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := l.Wait(ctx, limiter.Urgent); err != nil {
		return fmt.Errorf("prime the shared limiter's schedule: %w", err)
	}
	return nil
}

// enqueue queues n recalls of messages no earlier configuration used,
// enqueueWorkers at a time, through the producer library. It returns how
// many were queued.
func (b *bench) enqueue(ctx context.Context, cfgIndex, n int) (int, error) {
	cl, err := enqueue.New(enqueue.Config{RedisURL: b.redisURL, SDKAppID: sdkAppID})
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, enqueueTimeout)
	defer cancel()
	var queued atomic.Int64
	err = fanout.Each(ctx, n, enqueueWorkers, func(ctx context.Context, i int) error {
		res, err := cl.Recall(ctx, tasks.Recall{
			FromAccount: "bench_sender",
			ToAccount:   fmt.Sprintf("user%d", i),
			MsgKey:      fmt.Sprintf("%d_%d_%d", b.nonce, cfgIndex, i),
		})
		if err == nil && !res.AlreadyQueued {
			queued.Add(1)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("queue the recalls: %w", err)
	}
	return int(queued.Load()), nil
}

// waitDrained samples the queue every pollEvery until n tasks are completed
// or archived, every worker has exited, or timeout passes. In the kill run
// it kills the first worker once half the tasks are done, killPhase into a
// second of the simulator's clock (simStart is its reset).
func (b *bench) waitDrained(ctx context.Context, c config, n int, workers []*child, simStart time.Time, timeout time.Duration) (drainResult, error) {
	var d drainResult
	deadline := time.Now().Add(timeout)
	quiet := 0 // samples in a row with only the killed worker's tasks left
	for {
		info, err := b.insp.GetQueueInfo(tasks.AppQueue(tasks.QueueUrgent, sdkAppID))
		now := time.Now()
		if err == nil {
			done := info.Completed + info.Archived
			d.samples = append(d.samples, sample{at: now, pending: info.Pending, done: done})
			d.last = info
			if done >= n {
				d.drained, d.at = true, now
				return d, nil
			}
			if c.kill && d.kill == nil && done >= n/2 {
				k, err := killAligned(ctx, workers[0], simStart)
				if err != nil {
					return d, err
				}
				k.done = done
				d.kill = k
				fmt.Fprintf(b.o.Progress, "bench:   killed %s (pid %d) with %d of %d tasks done\n", workers[0].Name(), k.pid, done, n)
			}
			if d.kill != nil && d.kill.stranded == 0 {
				if info.Pending+info.Retry+info.Scheduled == 0 && info.Active > 0 {
					if quiet++; quiet == 1 {
						d.kill.strandedAt = now
					}
					if quiet >= 10 { // a second: the live workers are idle
						d.kill.stranded = info.Active
					}
				} else {
					quiet = 0
				}
			}
		}
		if allExited(workers) {
			d.at = now
			return d, fmt.Errorf("every worker exited before the queue drained; %s's log ends: %s", workers[0].Name(), workers[0].TailLine(3))
		}
		if now.After(deadline) {
			d.at = now
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// killAligned waits until the simulator's clock is killPhase into a second,
// then SIGKILLs w.
func killAligned(ctx context.Context, w *child, simStart time.Time) (*killInfo, error) {
	phase := time.Since(simStart) % time.Second
	wait := (killPhase - phase + time.Second) % time.Second
	if err := sleep.For(ctx, wait); err != nil {
		return nil, err
	}
	k := &killInfo{at: time.Now(), pid: w.PID()}
	w.KillOnPurpose()
	return k, nil
}

func allExited(ws []*child) bool {
	for _, w := range ws {
		if w != nil && !w.Exited() {
			return false
		}
	}
	return true
}

// killNotes describes the kill run: the calls per second around the kill
// and how soon the rate was back.
func killNotes(st imsim.Stats, d drainResult) []string {
	k := d.kill
	at := k.at.Sub(st.Start)
	notes := []string{fmt.Sprintf("kill: SIGKILL worker-0 (pid %d) at t=%.3f s of the simulator's clock (%.2f s after the first call), %d tasks done",
		k.pid, at.Seconds(), k.at.Sub(st.First).Seconds(), k.done)}
	sec := int(at / time.Second)
	var counts []string
	for i := max(sec-5, 0); i <= sec+5 && i < len(st.PerSecond); i++ {
		mark := ""
		if i == sec {
			mark = "*"
		}
		counts = append(counts, fmt.Sprintf("t=%d%s:%d", i, mark, st.PerSecond[i]))
	}
	notes = append(notes, "kill: calls per second of the simulator's clock around it (* the kill's second): "+strings.Join(counts, " "))
	if rec, ok := recoveryAfter(st.PerSecond, st.Start, k.at); ok {
		if rec.back == sec {
			notes = append(notes, fmt.Sprintf("kill: pre-kill level %d/s (the median of the %d whole seconds before the kill's second); the kill's own second kept it within %d call (%d): no dip at 1 s resolution",
				rec.level, levelSeconds, levelSlack, st.PerSecond[sec]))
		} else {
			notes = append(notes, fmt.Sprintf("kill: pre-kill level %d/s (the median of the %d whole seconds before the kill's second); back at it (within %d call) from t=%d, %.2f s after the kill (target <= 2 s)",
				rec.level, levelSeconds, levelSlack, rec.back, rec.after.Seconds()))
		}
	} else {
		notes = append(notes, "kill: no recovery seen: the rate never came back to the pre-kill level before the queue ran dry (or too few seconds before the kill)")
	}
	if k.stranded > 0 {
		line := fmt.Sprintf("kill: %d tasks were left active in the killed worker when everything else was done (t=%.1f s)",
			k.stranded, k.strandedAt.Sub(st.Start).Seconds())
		if d.drained {
			line += fmt.Sprintf("; asynq recovered them after their lease expired, %.0f s after the kill", d.at.Sub(k.at).Seconds())
		}
		notes = append(notes, line)
	}
	return notes
}

// badPodAdmin is the bad pod's TIM_ADMIN: an account the simulator does not
// know as an admin, so it answers 90009 (a configuration error) to it.
const badPodAdmin = "not_an_admin"

// badPodNote says what the bad pod (worker-0) and the healthy workers did:
// the bad one's calls by code, the healthy ones' recalls (code 0) per second
// of the run, and how many tasks ended archived.
func badPodNote(reps []Report, d drainResult, started time.Time) string {
	if len(reps) == 0 {
		return "badpod: no worker reports"
	}
	var bad, good int64
	for _, n := range reps[0].Codes {
		bad += n
	}
	for _, r := range reps[1:] {
		good += r.Codes[0]
	}
	archived := -1
	if d.last != nil {
		archived = d.last.Archived
	}
	secs := d.at.Sub(started).Seconds()
	return fmt.Sprintf("badpod: worker-0 signs as %q: %d calls in %.1f s (codes %v); the %d healthy workers: %d calls answered 0, %.1f/s over the run; archived at the end: %d",
		badPodAdmin, bad, secs, reps[0].Codes, len(reps)-1, good, float64(good)/secs, archived)
}
