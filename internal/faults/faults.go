// Package faults is recallq's fault suite ("recallq faults"): it runs a
// campaign of recalls through real processes under one fault at a time and
// checks, message by message, that every recall ended as it must.
//
// Everything is real but the remote API: a redis-server with its
// append-only file on (a fresh one per run), the simulator of Tencent's
// endpoint as a child process ("recallq imsim"), and worker processes
// re-executing the same binary ("recallq worker", the product's command with
// its defaults). Each run queues Options.Tasks recalls on the bulk lane, a
// small share of them of messages the simulator was told do not exist,
// starts its fault once Options.FaultAt of them are finished, waits until
// every task is completed or archived (bounded), and then compares the
// state asynq's Inspector reports for every task with every answer the
// simulator gave for its message (GET /sim/fate):
//
//   - lost: a queued task neither completed nor archived, or completed
//     although the simulator never answered 0 or 20023 for its message;
//   - wrongly dead-lettered: an archived task whose message's last answer
//     is not a dead-letter code (20022, 90054, 90003, 90008, 90001);
//   - the most calls the simulator counted in any sliding second, against
//     Tencent's cap of 200, and the 60007s it answered.
//
// Beside the one-to-one recalls, each run carries a group campaign
// (Options.Groups groups of Options.GroupSeqs seqs, one tasks.NewGroupTask
// per seq on the same lane, spread among the recalls), a share of whose
// seqs the simulator was told cannot be recalled. Each seq is judged
// against its fate at the simulator (GET /sim/group/fate) and the plan: an
// unrecallable seq must end dead-lettered with 10032, every other one
// completed with a 0 in its fate; none lost (see judgeGroups).
//
// The faults (FaultKill, FaultRedis, FaultAPIDown, FaultAPISlow,
// FaultCredentials) each get a run of their own after a fault-free
// baseline, with fresh Redis data and a reset simulator. Every wait is
// bounded, every child is stopped on the way out (and, on Linux, killed by
// the kernel should the suite itself be killed), and every address is
// loopback.
package faults

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/simproc"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// WorkerCommand is the recallq subcommand the worker processes run.
const WorkerCommand = "worker"

// sdkAppID is the simulated app.
const sdkAppID = simproc.SDKAppID

// Cap is the simulator's limit, Tencent's for admin_msgwithdraw: calls in
// any sliding second.
const Cap = imsim.DefaultCap

// Defaults of Options.
const (
	DefaultTasks       = 20000
	DefaultWorkers     = 4
	DefaultConcurrency = worker.DefaultConcurrency
	DefaultRate        = 200.0
	DefaultLatencyMin  = 20 * time.Millisecond
	DefaultLatencyMax  = 50 * time.Millisecond
	// DefaultMissing is the share of recalls of messages that do not exist,
	// and of group seqs that cannot be recalled.
	DefaultMissing = 0.02
	// DefaultGroups is how many groups the group campaign recalls from.
	DefaultGroups = 4
	// DefaultGroupShare: when Options.GroupSeqs is 0, the group campaign
	// has this share of Options.Tasks in seqs, spread over the groups.
	DefaultGroupShare = 0.05
	// MinGroupSeqs is the fewest seqs per group Options.GroupSeqs defaults
	// to: a full batch of one group_msg_recall call.
	MinGroupSeqs       = imsim.MaxGroupRecallSeqs
	DefaultAppendFsync = "everysec"
	DefaultRedisSignal = "KILL"
	DefaultRedisDown   = 3 * time.Second
	DefaultRedisHang   = 10 * time.Second
	// DefaultFaultAt: each fault starts once this share of the tasks is
	// finished, so it lands mid-campaign.
	DefaultFaultAt         = 0.25
	DefaultKillEvery       = 10 * time.Second
	DefaultRestartAfter    = time.Second
	DefaultRefuseFor       = 30 * time.Second
	DefaultCode91000For    = 30 * time.Second
	DefaultSlowFor         = 20 * time.Second
	DefaultSlowLatency     = 6 * time.Second
	DefaultSlowMode        = SlowAnswer
	DefaultCredentialsFor  = 30 * time.Second
	DefaultCredentialsCode = 70009
	DefaultPollEvery       = 200 * time.Millisecond
	DefaultProgressEvery   = 5 * time.Second
)

// Options configures Run.
type Options struct {
	// Exe is the recallq binary the children run: it must answer
	// WorkerCommand and SimCommand. Required (the command passes
	// os.Executable()).
	Exe string
	// Faults to run after the baseline, in order. Default AllFaults.
	Faults []string
	// SkipBaseline skips the fault-free run (vs_baseline is then "-").
	SkipBaseline bool
	// Tasks is the number of recalls each run queues. Default DefaultTasks.
	Tasks int
	// Missing is the share of them whose message the simulator is told
	// does not exist (expected 20022 dead letters). Default DefaultMissing;
	// negative means none.
	Missing float64
	// Groups is how many groups the group campaign recalls from, beside
	// the one-to-one recalls: one group task per (group, seq) on the same
	// bulk lane. Default DefaultGroups; negative means no group campaign.
	Groups int
	// GroupSeqs is how many seqs of each group are recalled. Default
	// Tasks*DefaultGroupShare/Groups, at least MinGroupSeqs. A share
	// Missing of them (rounded up) are made unrecallable at the simulator
	// (10032): they must end dead-lettered with that code.
	GroupSeqs int
	// Workers is the number of worker processes. Default DefaultWorkers.
	Workers int
	// Concurrency per worker process (--concurrency). Default
	// DefaultConcurrency.
	Concurrency int
	// Rate is the workers' --rate (RECALL_RATE). Default DefaultRate.
	Rate float64
	// LatencyMin and LatencyMax are the simulator's latency outside the
	// faults. Defaults DefaultLatencyMin and DefaultLatencyMax.
	LatencyMin, LatencyMax time.Duration
	// FailRate is the simulator's share of 91000 answers outside the
	// faults. Default 0.
	FailRate float64
	// AppendFsync is redis-server's --appendfsync: "everysec" (default) or
	// "always".
	AppendFsync string
	// RedisSignal stops redis-server in FaultRedis: "KILL" (default) or
	// "TERM".
	RedisSignal string
	// RedisDown is how long Redis stays down in FaultRedis, from the
	// signal. Default DefaultRedisDown.
	RedisDown time.Duration
	// RedisHang is how long redis-server stays stopped (SIGSTOP) in
	// FaultRedisHang. Default DefaultRedisHang.
	RedisHang time.Duration
	// FaultAt is the share of tasks finished when a fault starts. Default
	// DefaultFaultAt.
	FaultAt float64
	// KillEvery and RestartAfter shape FaultKill. Defaults DefaultKillEvery
	// and DefaultRestartAfter.
	KillEvery, RestartAfter time.Duration
	// RefuseFor and Code91000For shape FaultAPIDown. Defaults
	// DefaultRefuseFor and DefaultCode91000For.
	RefuseFor, Code91000For time.Duration
	// SlowFor and SlowLatency shape FaultAPISlow. Defaults DefaultSlowFor
	// and DefaultSlowLatency.
	SlowFor, SlowLatency time.Duration
	// SlowMode is where FaultAPISlow's time goes: SlowAnswer (default) or
	// SlowNetwork.
	SlowMode string
	// CredentialsFor and CredentialsCode shape FaultCredentials. Defaults
	// DefaultCredentialsFor and DefaultCredentialsCode.
	CredentialsFor  time.Duration
	CredentialsCode int
	// DrainTimeout bounds a run's wait for its tasks to finish, from the
	// start of queuing. 0 means 10 min + Tasks/50 s.
	DrainTimeout time.Duration
	// PollEvery is how often the queue is looked at. Default
	// DefaultPollEvery.
	PollEvery time.Duration
	// ProgressEvery is how often a progress line is printed. Default
	// DefaultProgressEvery.
	ProgressEvery time.Duration
	// Keep keeps the children's logs and Redis's files (the directory is
	// printed); by default they are removed unless a run failed a check.
	Keep bool
	// SimLogLevel is the simulator's --log-level; default "warn" ("debug"
	// logs every answer with its time, to find a busy window's calls).
	SimLogLevel string
	// CommandLine is printed at the top.
	CommandLine string
	// Out receives the header and the table. Default io.Discard.
	Out io.Writer
	// Progress receives progress lines and events. Default io.Discard.
	Progress io.Writer
}

func (o *Options) setDefaults() error {
	if o.Exe == "" {
		return fmt.Errorf("faults: Options.Exe is not set: give the recallq binary the children run")
	}
	if o.Faults == nil {
		o.Faults = AllFaults
	}
	setInt(&o.Tasks, DefaultTasks)
	setInt(&o.Workers, DefaultWorkers)
	setInt(&o.Concurrency, DefaultConcurrency)
	setInt(&o.CredentialsCode, DefaultCredentialsCode)
	if o.Missing == 0 {
		o.Missing = DefaultMissing
	}
	if o.Missing < 0 {
		o.Missing = 0
	}
	setInt(&o.Groups, DefaultGroups)
	if o.Groups < 0 {
		o.Groups, o.GroupSeqs = 0, 0
	} else if o.GroupSeqs == 0 {
		o.GroupSeqs = max(MinGroupSeqs, int(float64(o.Tasks)*DefaultGroupShare)/o.Groups)
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.LatencyMin == 0 && o.LatencyMax == 0 {
		o.LatencyMin, o.LatencyMax = DefaultLatencyMin, DefaultLatencyMax
	}
	if o.AppendFsync == "" {
		o.AppendFsync = DefaultAppendFsync
	}
	if o.SlowMode == "" {
		o.SlowMode = DefaultSlowMode
	}
	if o.SimLogLevel == "" {
		o.SimLogLevel = "warn"
	}
	if o.RedisSignal == "" {
		o.RedisSignal = DefaultRedisSignal
	}
	o.RedisSignal = strings.TrimPrefix(strings.ToUpper(o.RedisSignal), "SIG")
	if o.FaultAt == 0 {
		o.FaultAt = DefaultFaultAt
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&o.RedisDown, DefaultRedisDown}, {&o.RedisHang, DefaultRedisHang}, {&o.KillEvery, DefaultKillEvery}, {&o.RestartAfter, DefaultRestartAfter},
		{&o.RefuseFor, DefaultRefuseFor}, {&o.Code91000For, DefaultCode91000For},
		{&o.SlowFor, DefaultSlowFor}, {&o.SlowLatency, DefaultSlowLatency},
		{&o.CredentialsFor, DefaultCredentialsFor},
		{&o.PollEvery, DefaultPollEvery}, {&o.ProgressEvery, DefaultProgressEvery},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 10*time.Minute + time.Duration(o.Tasks)*time.Second/50
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o.validate()
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func (o *Options) validate() error {
	bad := func(format string, a ...any) error { return fmt.Errorf("faults: "+format, a...) }
	for _, f := range o.Faults {
		if _, err := newInjector(f); err != nil || f == FaultNone {
			return bad("Options.Faults has %q: use %s", f, strings.Join(AllFaults, ", "))
		}
	}
	switch {
	case o.Tasks < 1:
		return bad("Options.Tasks is %d: at least 1", o.Tasks)
	case o.GroupSeqs < 0:
		return bad("Options.GroupSeqs is %d: at least 1, or 0 for the default", o.GroupSeqs)
	case o.Missing >= 1:
		return bad("Options.Missing is %v: a share below 1", o.Missing)
	case o.Workers < 2:
		return bad("Options.Workers is %d: at least 2, so that one can be killed while another works", o.Workers)
	case o.Concurrency < 1:
		return bad("Options.Concurrency is %d: at least 1", o.Concurrency)
	case !(o.Rate > 0) || o.Rate > Cap:
		return bad("Options.Rate is %v: above 0 and at most %d", o.Rate, Cap)
	case o.LatencyMin < 0 || o.LatencyMax < o.LatencyMin:
		return bad("Options.LatencyMin/LatencyMax %s-%s: a range low-high of non-negative durations", o.LatencyMin, o.LatencyMax)
	case o.FailRate < 0 || o.FailRate > 1:
		return bad("Options.FailRate is %v: between 0 and 1", o.FailRate)
	case o.AppendFsync != "everysec" && o.AppendFsync != "always":
		return bad("Options.AppendFsync is %q: everysec or always", o.AppendFsync)
	case o.RedisSignal != "KILL" && o.RedisSignal != "TERM":
		return bad("Options.RedisSignal is %q: KILL or TERM", o.RedisSignal)
	case o.FaultAt <= 0 || o.FaultAt >= 1:
		return bad("Options.FaultAt is %v: a share between 0 and 1", o.FaultAt)
	case o.SlowMode != SlowAnswer && o.SlowMode != SlowNetwork:
		return bad("Options.SlowMode is %q: %s or %s", o.SlowMode, SlowAnswer, SlowNetwork)
	case o.SlowLatency <= tim5s:
		return bad("Options.SlowLatency is %s: it must exceed the client's timeout, %s", o.SlowLatency, tim5s)
	}
	for name, d := range map[string]time.Duration{"RedisDown": o.RedisDown, "RedisHang": o.RedisHang, "KillEvery": o.KillEvery, "RestartAfter": o.RestartAfter,
		"RefuseFor": o.RefuseFor, "Code91000For": o.Code91000For, "SlowFor": o.SlowFor, "CredentialsFor": o.CredentialsFor,
		"DrainTimeout": o.DrainTimeout, "PollEvery": o.PollEvery, "ProgressEvery": o.ProgressEvery} {
		if d < 0 {
			return bad("Options.%s is %s: it must be positive", name, d)
		}
	}
	return nil
}

// Row is one run's figures: one line of the table.
type Row struct {
	Fault string
	// Queued is the number of tasks queued; Missing how many of them are of
	// messages the simulator was told do not exist.
	Queued, Missing int
	// Recalled and AlreadyRecalled are the completed tasks whose message's
	// last answer was 0 and 20023.
	Recalled, AlreadyRecalled int
	// DeadLettered are the archived tasks; DeadByCode counts them by their
	// message's last answer (worker.NoAnswer: none).
	DeadLettered int
	DeadByCode   map[int]int
	// Lost and WronglyDeadLettered: see the package comment. Both must be 0.
	Lost, WronglyDeadLettered int
	// MaxInAnyWindow is the most calls the simulator counted in any sliding
	// second; it must be at most Cap. Rejected60007 counts its 60007s.
	MaxInAnyWindow int
	Rejected60007  int64
	// Retried counts the finished tasks that used at least one retry.
	Retried int
	// Group is the group campaign's figures.
	Group GroupRow
	// CircuitOpen counts the "circuit open" lines in the workers' logs.
	CircuitOpen int
	// Drained reports whether every task finished within DrainTimeout;
	// Drain is the time from the start of queuing until then.
	Drained bool
	Drain   time.Duration
	// Baseline is the baseline run's Drain (0 for the baseline itself).
	Baseline time.Duration
	// Err is the error that stopped the run, if any.
	Err string
	// Notes are the run's events and findings.
	Notes []string
}

// GroupRow is the figures of a run's group campaign.
type GroupRow struct {
	// Queued is the number of group tasks queued (one per seq); Planned
	// how many of them are of seqs made unrecallable, to be dead-lettered
	// with 10032.
	Queued, Planned int
	// Recalled and AlreadyRecalled are the completed tasks whose seq the
	// simulator recalled, by their last answer: 0, or 10030 after the 0.
	Recalled, AlreadyRecalled int
	// DeadLettered are the archived tasks; DeadByCode counts them by their
	// seq's last answer.
	DeadLettered int
	DeadByCode   map[int]int
	// Lost, WronglyDeadLettered and OffPlan (seqs that did not end as the
	// plan says: recalled or completed although unrecallable, dead-lettered
	// although recallable) must all be 0.
	Lost, WronglyDeadLettered, OffPlan int
	// Retried counts the finished group tasks that used a retry.
	Retried int
	// Calls is how many group_msg_recall calls the simulator answered;
	// MaxInAnyWindow the most it counted in any sliding second (its cap is
	// Cap too, answering 10006; Rejected10006 counts those).
	Calls          int64
	MaxInAnyWindow int
	Rejected10006  int64
}

// ok reports whether the group campaign ended as planned.
func (g GroupRow) ok() bool {
	return g.Lost == 0 && g.WronglyDeadLettered == 0 && g.OffPlan == 0 && g.MaxInAnyWindow <= Cap
}

// OK reports whether the row passes every check: it ran, drained, lost
// nothing, dead-lettered nothing wrongly, ended every group seq as planned
// and kept under the cap.
func (r Row) OK() bool {
	return r.Err == "" && r.Drained && r.Lost == 0 && r.WronglyDeadLettered == 0 && r.MaxInAnyWindow <= Cap && r.Group.ok()
}

// Result is what Run found.
type Result struct {
	Rows []Row
	// Dir holds the children's logs when they were kept ("" otherwise).
	Dir string
}

// suite is one Run.
type suite struct {
	o        Options
	dir      string
	secret   string // the simulated app's secret key
	nonce    int64  // makes every suite's MsgKeys its own
	procs    children
	sim      *simProc
	baseline time.Duration
}

// Run runs the baseline and every fault of o, prints the table to o.Out
// and returns the rows. It returns ctx.Err() when ctx ends first, or an
// error that stopped the whole suite (the simulator would not start); a run
// that fails is reported in its row and the suite goes on.
func Run(ctx context.Context, o Options) (res Result, err error) {
	if err := o.setDefaults(); err != nil {
		return Result{}, err
	}
	dir, err := os.MkdirTemp("", "recallq-faults-")
	if err != nil {
		return Result{}, fmt.Errorf("faults: %w", err)
	}
	s := &suite{o: o, dir: dir, secret: simproc.NewSecret(), nonce: time.Now().Unix()}
	defer func() {
		s.procs.KillAll()
		keep := o.Keep || err != nil
		for _, r := range res.Rows {
			keep = keep || !r.OK()
		}
		if keep {
			res.Dir = dir
			fmt.Fprintf(o.Progress, "faults: children's logs and Redis's files kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	s.header()
	s.progress("starting the simulator (latency %s-%s)", o.LatencyMin, o.LatencyMax)
	if s.sim, err = startSim(ctx, &s.procs, dir, o, s.appEnv()); err != nil {
		return res, fmt.Errorf("faults: %w", err)
	}
	defer func() {
		if err := s.sim.Stop(); err != nil {
			s.progress("simulator: %v", err)
		}
	}()
	s.progress("simulator at %s (%s); logs in %s", s.sim.URL, s.sim.Priority, dir)

	names := append([]string{FaultNone}, o.Faults...)
	if o.SkipBaseline {
		names = names[1:]
	}
	for i, name := range names {
		s.progress("run %d/%d: %s", i+1, len(names), name)
		row, err := s.runOne(ctx, i, name)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err != nil {
			row.Fault, row.Err = name, err.Error()
			s.progress("run %s failed: %v", name, err)
		}
		if name == FaultNone && row.Drained {
			s.baseline = row.Drain
		}
		if name != FaultNone {
			row.Baseline = s.baseline
		}
		res.Rows = append(res.Rows, row)
		s.progress("run %s done: %s", name, row.summary())
	}
	writeTable(o.Out, res.Rows)
	return res, nil
}

// baseFaults are the simulator's faults outside a fault: its latency and
// fail rate (POST /sim/faults replaces every fault).
func (s *suite) baseFaults() simFaults {
	return simFaults{FailRate: s.o.FailRate, LatencyMin: s.o.LatencyMin.String(), LatencyMax: s.o.LatencyMax.String()}
}

// appEnv is a child's environment: the simulated app and its secret.
func (s *suite) appEnv() []string {
	return simproc.AppEnv(s.secret)
}

func (s *suite) progress(format string, a ...any) {
	fmt.Fprintf(s.o.Progress, "faults: "+format+"\n", a...)
}

// tim5s is the Tencent client's timeout (tim.DefaultHTTPTimeout), which
// the slow fault must exceed.
const tim5s = 5 * time.Second

// header prints what the suite does and what every column means.
func (s *suite) header() {
	o, w := s.o, s.o.Out
	fmt.Fprintf(w, "# recallq faults: trust under faults, end to end\n")
	fmt.Fprintf(w, "# command: %s\n", o.CommandLine)
	fmt.Fprintf(w, "# machine: nproc %d, %s/%s, %s, %s; %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), redistest.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "# redis: a fresh redis-server per run on loopback, append-only file on: --appendonly yes --appendfsync %s (no RDB snapshots);\n", o.AppendFsync)
	fmt.Fprintf(w, "#   the figures hold for appendfsync %s. Killing the process loses nothing the kernel has, so %s and always differ only\n", o.AppendFsync, o.AppendFsync)
	fmt.Fprintf(w, "#   on a machine crash or power loss, which this suite does not simulate\n")
	fmt.Fprintf(w, "# simulator: recallq imsim, its own process, latency %s-%s, fail rate %v, cap %d calls in any sliding second (60007 beyond); reset before every run;\n",
		o.LatencyMin, o.LatencyMax, o.FailRate, Cap)
	fmt.Fprintf(w, "#   it runs at nice %d when allowed: it stands in for a remote server, whose counting this machine's load must not stall\n", simproc.Nice)
	fmt.Fprintf(w, "# workers: %d processes of `recallq worker --concurrency %d --rate %v` (the product's command and defaults: client timeout 5 s,\n", o.Workers, o.Concurrency, o.Rate)
	fmt.Fprintf(w, "#   %d retries with backoff %s..%s, configuration errors retried after %s without using a retry, circuit breaker after %d in a row)\n",
		tasks.DefaultMaxRetry, worker.DefaultRetryBase, worker.DefaultRetryMax, worker.DefaultConfigRetryDelay, worker.DefaultBreakerThreshold)
	fmt.Fprintf(w, "# campaign: %d recalls per run, queued directly (tasks.NewTask on %s with Campaign set, %d concurrent asynq clients;\n", o.Tasks, "recall_bulk", enqueueWorkers)
	fmt.Fprintf(w, "#   not through `recallq campaign start`, which landed while this suite was written); %.1f%% are of messages the simulator\n", 100*o.Missing)
	fmt.Fprintf(w, "#   was told do not exist\n")
	fmt.Fprintf(w, "#   (POST /sim/forget before queuing): they must end dead-lettered with 20022, every other recall recalled or already recalled\n")
	if o.Groups > 0 {
		fmt.Fprintf(w, "# group campaign beside it: seqs 1..%d of %d groups, one tasks.NewGroupTask per seq on the same lane, spread among the recalls\n", o.GroupSeqs, o.Groups)
		fmt.Fprintf(w, "#   (the worker batches up to %d seqs of a group per group_msg_recall call); %.1f%% of the seqs, rounded up, were made unrecallable\n", imsim.MaxGroupRecallSeqs, 100*o.Missing)
		fmt.Fprintf(w, "#   (POST /sim/group/message State unrecallable): they must end dead-lettered with %d, every other seq recalled (10030, the\n", codeGroupUnrecallable)
		fmt.Fprintf(w, "#   simulator's answer for a seq recalled before, is done in the worker's table, so it cannot stand for a message to dead-letter)\n")
	}
	fmt.Fprintf(w, "# each run: fresh redis-server, POST /sim/reset, start the workers, queue the campaign; the fault starts once %.0f%% of the tasks are finished:\n", 100*o.FaultAt)
	describe := map[string][]string{
		FaultKill: {fmt.Sprintf("SIGKILL one of the %d workers every %s while tasks are pending; a replacement starts %s later", o.Workers, o.KillEvery, o.RestartAfter)},
		FaultRedis: {fmt.Sprintf("SIG%s redis-server, down %s, started again on the same port and directory (it loads its append-only file);", o.RedisSignal, o.RedisDown),
			"the workers are not told: they must reconnect by themselves"},
		FaultRedisHang: {fmt.Sprintf("SIGSTOP redis-server for %s, then SIGCONT: connections stay open and nothing answers (a hung primary,", o.RedisHang),
			"a dead network path); the workers are not told"},
		FaultAPIDown: {fmt.Sprintf("the simulator closes its listener and connections (connection refused) for %s, then fails every recall with its internal error", o.RefuseFor),
			fmt.Sprintf("(91000; group_msg_recall 10002) for %s: the fail rate at 1, so missing messages still answer 20022", o.Code91000For)},
		FaultAPISlow: {slowDescription(o)},
		FaultCredentials: {fmt.Sprintf("the simulator answers %d (%s) to every call for %s, then accepts calls again", o.CredentialsCode, credentialsMeaning(o.CredentialsCode), o.CredentialsFor),
			"(POST /sim/faults CodeUntil; the workers keep running, so the circuit breaker must stop and resume them by itself)"},
	}
	for _, f := range o.Faults {
		for i, line := range describe[f] {
			name := f
			if i > 0 {
				name = ""
			}
			fmt.Fprintf(w, "#   %-16s %s\n", name, line)
		}
	}
	fmt.Fprintf(w, "# then: wait until every task is completed or archived (asynq Inspector, every %s; at most %s), SIGTERM the workers, list the\n", o.PollEvery, o.DrainTimeout)
	fmt.Fprintf(w, "#   completed and archived tasks (Inspector, pages of %d) and every message's fate (GET /sim/fate)\n", listPageSize)
	fmt.Fprintf(w, "# columns:\n")
	fmt.Fprintf(w, "#   recalled / already  completed tasks whose message's last answer at the simulator was 0 / 20023 (an earlier call recalled it\n")
	fmt.Fprintf(w, "#                       but its answer never reached the task: a killed worker, a timeout, a cut connection)\n")
	fmt.Fprintf(w, "#   dead-lettered       archived tasks, by their message's last answer at the simulator (code:count)\n")
	fmt.Fprintf(w, "#   lost                queued tasks neither completed nor archived at the end, or completed although the simulator never\n")
	fmt.Fprintf(w, "#                       answered 0 or 20023 for the message (must be 0)\n")
	fmt.Fprintf(w, "#   wrong_dl            archived tasks whose message's last answer is not 20022/90054/90003/90008/90001 (must be 0)\n")
	fmt.Fprintf(w, "#   max_1s              most calls the simulator counted in any sliding second (must be <= %d); 60007s: its rate-limit answers\n", Cap)
	fmt.Fprintf(w, "#   retried             finished tasks that used at least one of their retries\n")
	fmt.Fprintf(w, "#   circuit_open        \"circuit open\" lines in the workers' logs\n")
	fmt.Fprintf(w, "#   drain_s             from the start of queuing until every task (group tasks too) was completed or archived; vs_baseline: against the baseline run\n")
	if o.Groups > 0 {
		fmt.Fprintf(w, "#   group seqs          the group campaign: queued / recalled (completed, and the simulator answered 0 for the seq, maybe 10030 after it)\n")
		fmt.Fprintf(w, "#                       / dead-lettered (archived, by the seq's last answer) / lost (neither completed nor archived, or completed\n")
		fmt.Fprintf(w, "#                       without a 0 for the seq); then wrong_dl (archived after a code the worker does not dead-letter) and\n")
		fmt.Fprintf(w, "#                       off_plan (an unrecallable seq not dead-lettered with %d, or a recallable one dead-lettered) when not 0;\n", codeGroupUnrecallable)
		fmt.Fprintf(w, "#                       lost, wrong_dl and off_plan must be 0\n")
	}
}

// slowDescription says what FaultAPISlow does in o's mode.
func slowDescription(o Options) string {
	if o.SlowMode == SlowNetwork {
		return fmt.Sprintf("every call reaches the simulator %s late (its latency; the client gives up after 5 s, so it never arrives) for %s", o.SlowLatency, o.SlowFor)
	}
	return fmt.Sprintf("the simulator decides every call on arrival but answers %s later (the client gives up after 5 s) for %s", o.SlowLatency, o.SlowFor)
}

// credentialsMeaning says what the code of FaultCredentials stands for.
func credentialsMeaning(code int) string {
	switch code {
	case 70009:
		return "UserSig verification failed: what a wrong TIM_SECRET_KEY gets"
	case 90009:
		return "not an app admin: what a wrong TIM_ADMIN gets"
	}
	return worker.Classify(code).Meaning
}
