package lab

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/cli"
	"github.com/recallq/recallq/internal/lab/campaignbench"
	"github.com/recallq/recallq/worker"
)

func newCampaignBenchImportCmd(stdout, stderr io.Writer) *cobra.Command {
	var o campaignbench.BenchImportOptions
	var goroutines string
	cmd := &cobra.Command{
		Use:   "bench-import [--rows N]",
		Short: "Measure campaign import: rows/s, the importer's peak RSS, Redis bytes per row, against plain asynq enqueues",
		Long: `Generate a CSV of --rows rows, start a redis-server (it must be on PATH), time
plain asynq.Client.Enqueue from concurrent goroutines on it, then run
"recallq campaign start" on the CSV as a child process and print its rows/s,
its peak RSS and the Redis memory per queued row beside the raw figures.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.RawGoroutines, err = cli.ParseInts(goroutines); err != nil {
				return cli.Usagef("--raw-goroutines %q: give counts such as 8,16,32", goroutines)
			}
			if o.Exe, err = os.Executable(); err != nil {
				return fmt.Errorf("find the recallq binary to run the importer: %w", err)
			}
			o.Out, o.Progress = stdout, stderr
			return campaignbench.BenchImport(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Rows, "rows", campaignbench.DefaultBenchRows, "rows in the generated CSV")
	f.IntVar(&o.RawTasks, "raw-tasks", campaignbench.DefaultBenchRawTasks, "tasks queued by plain asynq enqueues per goroutine count")
	f.StringVar(&goroutines, "raw-goroutines", "8,16,32", "goroutine counts of the plain asynq run")
	return cmd
}

func newCampaignBenchUrgentCmd(stdout, stderr io.Writer) *cobra.Command {
	var o campaignbench.BenchUrgentOptions
	var latency string
	cmd := &cobra.Command{
		Use:   "bench-urgent [--backlog N] [--urgent N]",
		Short: "Measure the urgent lane: queue-to-API latency under a saturating campaign and with empty queues",
		Long: `Start a redis-server (it must be on PATH), the simulator and worker servers in
this process, import a campaign of --backlog rows that saturates the cap, queue
--urgent single recalls at random moments and print the time from each Enqueue
to its request reaching the simulator (p50, p90, p99); then the same with empty
queues; then the Redis commands per second that idle workers cost, with asynq's
TaskCheckInterval at recallq's 50 ms and at asynq's 1 s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.LatencyMin, o.LatencyMax, err = cli.ParseLatency(latency); err != nil {
				return err
			}
			o.Out, o.Progress = stdout, stderr
			return campaignbench.BenchUrgent(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Backlog, "backlog", campaignbench.DefaultBenchBacklog, "rows of the saturating campaign")
	f.IntVar(&o.Urgent, "urgent", campaignbench.DefaultBenchUrgent, "urgent recalls per scenario")
	f.IntVar(&o.Workers, "workers", 2, "worker servers, each with its own limiter, as separate processes")
	f.IntVar(&o.Concurrency, "concurrency", worker.DefaultConcurrency, "concurrency of each worker")
	f.StringVar(&latency, "latency", "20ms-50ms", "the simulator's latency: a duration or a range")
	f.DurationVar(&o.Spread, "spread", 20*time.Second, "how long the urgent recalls of a saturated run are spread over")
	f.DurationVar(&o.Idle, "idle", 10*time.Second, "how long each idle Redis cost is measured")
	f.BoolVar(&o.Contrast, "contrast", true, "also run AheadBulk 32 and TaskCheckInterval 1s, to show what the defaults buy")
	return cmd
}
