package lab

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/cli"
	"github.com/recallq/recallq/internal/faults"
)

func newFaultsCmd(stdout, stderr io.Writer) *cobra.Command {
	var list, latency string
	var o faults.Options
	cmd := &cobra.Command{
		Use:   "faults [--tasks N] [--faults " + strings.Join(faults.AllFaults, ",") + "]",
		Short: "Run a campaign under each fault and check every recall's fate against the simulator",
		Long: `Run the fault suite: a fault-free baseline, then one run per fault, each a
campaign of recalls through real processes: its own redis-server (append-only
file on), the simulator ("recallq imsim") and worker processes ("recallq
worker"), all on loopback. The faults: worker processes killed with SIGKILL
again and again, Redis restarted, Redis hung (SIGSTOP: connections open,
nothing answers), the API unreachable then answering only
its internal error (91000, and 10002 for group recalls), the API slower than the client's timeout, wrong credentials for a while.
After each run it compares every task's state in asynq with every answer the
simulator gave for its message and prints one row: lost and wrongly
dead-lettered tasks (both must be 0), the most calls in any sliding second
(at most 200), the drain time against the baseline. It exits non-zero when a
run fails a check. The default campaign (20,000 recalls) takes about 20
minutes for all runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			switch list {
			case "none":
				o.Faults = []string{} // the baseline only
			case "":
			default:
				for _, f := range strings.Split(list, ",") {
					o.Faults = append(o.Faults, strings.TrimSpace(f))
				}
			}
			if o.LatencyMin, o.LatencyMax, err = cli.ParseLatency(latency); err != nil {
				return err
			}
			if o.Exe, err = os.Executable(); err != nil {
				return fmt.Errorf("find the recallq binary to run the workers: %w", err)
			}
			o.CommandLine = strings.Join(os.Args, " ")
			o.Out, o.Progress = stdout, stderr
			res, err := faults.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range res.Rows {
				if !r.OK() {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d runs failed a check; see the notes under the table and the logs in %s", failed, len(res.Rows), res.Dir)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Tasks, "tasks", faults.DefaultTasks, "recalls queued per run")
	f.StringVar(&list, "faults", strings.Join(faults.AllFaults, ","), `faults to run after the baseline, comma-separated; "none" runs the baseline only`)
	f.Float64Var(&o.Missing, "missing", faults.DefaultMissing, "share of recalls of messages the simulator is told do not exist (20022); negative for none")
	f.IntVar(&o.Workers, "workers", faults.DefaultWorkers, "worker processes")
	f.IntVar(&o.Concurrency, "concurrency", faults.DefaultConcurrency, "concurrency of each worker process")
	f.Float64Var(&o.Rate, "rate", faults.DefaultRate, "the workers' --rate (RECALL_RATE); the simulator's cap stays 200")
	f.StringVar(&latency, "latency", faults.DefaultLatencyMin.String()+"-"+faults.DefaultLatencyMax.String(), "the simulator's latency outside the faults, a duration or a range")
	f.Float64Var(&o.FailRate, "fail-rate", 0, "share of calls the simulator answers 91000 outside the faults")
	f.StringVar(&o.AppendFsync, "appendfsync", faults.DefaultAppendFsync, "redis-server's --appendfsync: everysec or always")
	f.StringVar(&o.RedisSignal, "redis-signal", faults.DefaultRedisSignal, "how redis-restart stops Redis: KILL or TERM")
	f.DurationVar(&o.RedisDown, "redis-down", faults.DefaultRedisDown, "how long Redis stays down in redis-restart")
	f.DurationVar(&o.RedisHang, "redis-hang", faults.DefaultRedisHang, "how long Redis stays stopped (SIGSTOP) in redis-hang")
	f.Float64Var(&o.FaultAt, "fault-at", faults.DefaultFaultAt, "share of the tasks finished when a fault starts")
	f.DurationVar(&o.KillEvery, "kill-every", faults.DefaultKillEvery, "sigkill-workers: time between kills")
	f.DurationVar(&o.RestartAfter, "restart-after", faults.DefaultRestartAfter, "sigkill-workers: delay before the replacement starts")
	f.DurationVar(&o.RefuseFor, "refuse-for", faults.DefaultRefuseFor, "api-down: how long connections are refused")
	f.DurationVar(&o.Code91000For, "code-91000-for", faults.DefaultCode91000For, "api-down: how long only the internal error (91000; 10002 for group recalls) is answered afterwards")
	f.IntVar(&o.Groups, "groups", faults.DefaultGroups, "groups of the group campaign beside the one-to-one recalls; negative for none")
	f.IntVar(&o.GroupSeqs, "group-seqs", 0, "seqs recalled per group; 0 is a share of --tasks (at least one full batch of 10)")
	f.DurationVar(&o.SlowFor, "slow-for", faults.DefaultSlowFor, "api-slow: how long the API is slow")
	f.DurationVar(&o.SlowLatency, "slow-latency", faults.DefaultSlowLatency, "api-slow: how late, beyond the client's 5 s timeout")
	f.StringVar(&o.SlowMode, "slow-mode", faults.DefaultSlowMode, "api-slow: answer (the server decides each call at once and answers late) or network (each call arrives late)")
	f.DurationVar(&o.CredentialsFor, "credentials-for", faults.DefaultCredentialsFor, "bad-credentials: how long the configuration error lasts")
	f.IntVar(&o.CredentialsCode, "credentials-code", faults.DefaultCredentialsCode, "bad-credentials: the code answered (70009 or 90009)")
	f.DurationVar(&o.DrainTimeout, "drain-timeout", 0, "bound on one run's wait for its tasks; 0 is 10 min + tasks/50 s")
	f.BoolVar(&o.Keep, "keep", false, "keep the children's logs and Redis's files")
	f.StringVar(&o.SimLogLevel, "sim-log-level", "warn", "the simulator's --log-level (debug logs every answer)")
	_ = f.MarkHidden("sim-log-level")
	return cmd
}
