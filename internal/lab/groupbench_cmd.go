package lab

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/bench"
	"github.com/recallq/recallq/internal/cli"
	"github.com/recallq/recallq/internal/lab/groupbench"
)

func newBenchGroupCmd(stdout, stderr io.Writer) *cobra.Command {
	var procs, latency string
	var o groupbench.Options
	cmd := &cobra.Command{
		Use:   "bench-group [--procs 1,4] [--seqs 20000] [--groups 4] [--linger 20ms]",
		Short: "Measure bulk group recall: messages/s at group_msg_recall's cap of 200 calls/s",
		Long: `Queue a campaign-like load of group recall tasks (one MsgSeq each, round robin
over a few groups) on the bulk lane, drain it with 1 and 4 worker processes
(the product's worker, re-executed from this binary) against the simulator's
group_msg_recall (its own cap of 200 calls in any sliding second, answering
10006), and print messages/s, calls/s, seqs per call, the most calls in any
sliding second and the 10006 count, with the load average. It starts its own
redis-server (which must be on PATH) and stops everything it started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Procs, err = cli.ParseInts(procs); err != nil {
				return cli.Usagef("--procs %q: give process counts such as 1,4", procs)
			}
			if o.LatencyMin, o.LatencyMax, err = parseRange(latency); err != nil {
				return cli.Usagef("--latency %q: give a range such as 20ms-50ms", latency)
			}
			if o.Exe, err = bench.Executable(); err != nil {
				return fmt.Errorf("find the recallq-lab binary to run the workers: %w", err)
			}
			o.Out, o.Progress = stdout, stderr
			return groupbench.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&procs, "procs", "1,4", "worker process counts, one run each")
	f.StringVar(&latency, "latency", "20ms-50ms", "the simulator's latency range")
	f.IntVar(&o.Seqs, "seqs", groupbench.DefaultSeqs, "group recall tasks (one seq each) per run")
	f.IntVar(&o.Groups, "groups", groupbench.DefaultGroups, "groups the seqs are spread over")
	f.IntVar(&o.Concurrency, "concurrency", 0, "concurrency per worker process; 0 is max(64, 256/procs)")
	f.DurationVar(&o.Linger, "linger", 0, "the bulk lane's batch linger; 0 is the worker's default")
	f.StringVar(&o.CPUProfileDir, "cpuprofile-dir", "", "write a CPU profile of each worker process into this directory")
	f.BoolVar(&o.Campaign, "campaign", false, "import the seqs as a campaign (GroupId,MsgSeq rows) that the workers' feeders hand to the queue, instead of queuing tasks up front")
	return cmd
}

// parseRange reads "20ms-50ms" or "30ms".
func parseRange(s string) (lo, hi time.Duration, err error) {
	a, b, isRange := cutDash(s)
	if lo, err = time.ParseDuration(a); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = time.ParseDuration(b); err != nil || hi < lo {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	return lo, hi, nil
}

func cutDash(s string) (string, string, bool) {
	for i := 1; i < len(s); i++ {
		if s[i] == '-' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// newBenchGroupWorkerCmd is the worker process bench-group starts.
func newBenchGroupWorkerCmd(_, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:                groupbench.WorkerCommand,
		Short:              "A worker process of recallq-lab bench-group (not for direct use)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return groupbench.RunWorkerArgs(cmd.Context(), args, os.Getenv, stderr)
		},
	}
}
