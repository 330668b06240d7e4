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
	var parseRun func() error
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
			if err := parseRun(); err != nil {
				return err
			}
			o.Out, o.Progress = stdout, stderr
			return campaignbench.BenchUrgent(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Backlog, "backlog", campaignbench.DefaultBenchBacklog, "rows of the saturating campaign")
	f.IntVar(&o.Urgent, "urgent", campaignbench.DefaultBenchUrgent, "urgent recalls per scenario")
	parseRun = addRunFlags(cmd, &o.RunOptions, "worker servers, each with its own limiter, as separate processes")
	f.DurationVar(&o.Spread, "spread", 20*time.Second, "how long the urgent recalls of a saturated run are spread over")
	f.DurationVar(&o.Idle, "idle", 10*time.Second, "how long each idle Redis cost is measured")
	f.BoolVar(&o.Contrast, "contrast", true, "also run AheadBulk 32 and TaskCheckInterval 1s, to show what the defaults buy")
	return cmd
}

func newBenchAppsCmd(stdout, stderr io.Writer) *cobra.Command {
	var o campaignbench.BenchAppsOptions
	var parseRun func() error
	cmd := &cobra.Command{
		Use:   "bench-apps [--backlog N] [--campaign N] [--urgent N]",
		Short: "Measure two apps on one Redis: a saturated app beside another app's campaign and urgent recalls",
		Long: `Start a redis-server (it must be on PATH), a simulator per app (each with its own
SDKAppID and secret, so it counts only its app's calls) and worker servers in
this process, each serving both apps as the worker does with an apps file.
App A (1400000000) gets a campaign of --backlog rows that saturates its cap;
app B (1400000001) a campaign of --campaign rows and --urgent urgent recalls
queued at random times over --spread. Once app B's campaign and urgent
recalls are done, print per app the calls/s and the most calls in any
sliding second at its simulator, the 60007 count, the campaign's drain rate,
and app B's urgent queue-to-API p50/p99. About two minutes with the defaults.
App A is not drained, only measured over that window: --backlog 1000000
(issue 13's million-row backlog) works and adds the import of the larger
campaign, but draining it would take about 85 minutes at 200/s, so the
default is smaller; the output names the backlog it ran with.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := parseRun(); err != nil {
				return err
			}
			o.Out, o.Progress = stdout, stderr
			return campaignbench.BenchApps(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Backlog, "backlog", campaignbench.DefaultBenchAppsBacklog, "rows of app A's saturating campaign (a million works; it is not drained)")
	f.IntVar(&o.Campaign, "campaign", campaignbench.DefaultBenchAppsCampaign, "rows of app B's campaign")
	f.IntVar(&o.Urgent, "urgent", campaignbench.DefaultBenchAppsUrgent, "app B's urgent recalls")
	f.DurationVar(&o.Spread, "spread", campaignbench.DefaultBenchAppsSpread, "how long app B's urgent recalls are spread over")
	parseRun = addRunFlags(cmd, &o.RunOptions, "worker servers, each serving both apps with its own limiters, as separate processes")
	return cmd
}

// addRunFlags adds to cmd the flags of o: --workers (described by workersUsage),
// --concurrency and --latency. The returned parse reads --latency into o.
func addRunFlags(cmd *cobra.Command, o *campaignbench.RunOptions, workersUsage string) (parse func() error) {
	var latency string
	f := cmd.Flags()
	f.IntVar(&o.Workers, "workers", 2, workersUsage)
	f.IntVar(&o.Concurrency, "concurrency", worker.DefaultConcurrency, "concurrency of each worker, per app")
	f.StringVar(&latency, "latency", "20ms-50ms", "the simulators' latency: a duration or a range")
	return func() error {
		var err error
		o.LatencyMin, o.LatencyMax, err = cli.ParseLatency(latency)
		return err
	}
}
