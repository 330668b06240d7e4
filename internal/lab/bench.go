package lab

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/bench"
	"github.com/recallq/recallq/internal/cli"
)

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	var latency, procs, limiters string
	var o bench.Options
	cmd := &cobra.Command{
		Use:   "bench [--latency 20ms-50ms,20ms-22ms] [--procs 1,4,16] [--tasks N]",
		Short: "Measure the shared rate limiter against the peers' limiters, end to end",
		Long: `Measure how close worker processes stay to Tencent's cap of 200 calls in any
sliding second: the shared limiter at each process count, then the peers'
designs (a golang.org/x/time/rate limiter per process, as asynq's wiki
suggests; a fixed-window counter in Redis, as BullMQ limits a queue), then a
run in which one worker is killed midway. It starts its own redis-server
(which must be on PATH), the simulator and the worker processes, all on
loopback, prints one table per latency, and stops everything it started.
A full run at one latency takes about five minutes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Latencies, err = bench.ParseLatencies(latency); err != nil {
				return cli.Usagef("--latency: %v", err)
			}
			if o.Procs, err = cli.ParseInts(procs); err != nil {
				return cli.Usagef("--procs %q: give process counts such as 1,4,16", procs)
			}
			o.Limiters = strings.Split(limiters, ",")
			if o.Exe, err = bench.Executable(); err != nil {
				return fmt.Errorf("find the recallq binary to run the workers: %w", err)
			}
			o.CommandLine = strings.Join(os.Args, " ")
			o.Out, o.Progress = stdout, stderr
			return bench.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&latency, "latency", "20ms-50ms", "the simulator's latency, a range, a duration or lognormal:MEDIAN:P99; a comma-separated list runs one table each")
	f.StringVar(&procs, "procs", "1,4,16", "worker process counts to run each limiter at")
	f.StringVar(&limiters, "limiters", strings.Join(bench.DefaultLimiters, ","), "limiters to run: shared, local, fixedwindow")
	f.IntVar(&o.Tasks, "tasks", bench.DefaultTasks, "recalls queued per configuration")
	f.IntVar(&o.Concurrency, "concurrency", 0, "concurrency per worker process; 0 picks max(8, 64/procs)")
	f.Float64Var(&o.FailRate, "fail-rate", bench.DefaultFailRate, "fraction of calls the simulator answers 91000")
	f.Float64Var(&o.Rate, "rate", bench.Cap, "the rate the limiters are configured with, as RECALL_RATE configures a worker (the simulator's cap stays 200)")
	f.BoolVar(&o.Keep, "keep", false, "keep the children's logs and reports")
	f.Float64Var(&o.QuietBelow, "quiet-below", 0, "before each configuration, wait until at most this many CPU cores are busy (0: do not wait)")
	f.DurationVar(&o.QuietWait, "quiet-wait", bench.DefaultQuietWait, "bound on the wait for a quiet machine")
	f.BoolVar(&o.Kill, "kill", true, "add the run that kills one worker midway")
	f.IntVar(&o.KillProcs, "kill-procs", bench.DefaultKillProcs, "worker processes of the kill run (and of the stall run)")
	f.BoolVar(&o.Stall, "stalls", false, "add the run that stops one worker (SIGSTOP) for 300-700 ms every 1.5 s")
	f.Float64Var(&o.OutsideRate, "outside-rate", 0, "the shared-quota profile: the simulator counts this many outside calls/s toward its cap in every configuration")
	f.BoolVar(&o.BadPod, "bad-pod", false, "add the run in which one worker's admin is no admin (every call it makes answered 90009)")
	f.DurationVar(&o.DrainTimeout, "drain-timeout", 0, "bound on one configuration's drain; 0 is 30s + tasks/50 s")
	return cmd
}

// newBenchWorkerCmd is the worker process the benchmark starts. Its flags
// are the benchmark's own protocol (bench.ParseWorkerArgs), so it parses
// them itself.
func newBenchWorkerCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:                bench.WorkerCommand,
		Short:              "A worker process of recallq bench (not for direct use)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return bench.RunWorkerArgs(cmd.Context(), args, os.Getenv, stderr)
		},
	}
}
