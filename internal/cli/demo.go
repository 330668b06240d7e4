package cli

import (
	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/demo"
)

func newDemoCmd(g *globals) *cobra.Command {
	var count int
	var verbose bool
	var metricsAddr string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run everything in one process: no Redis, no Tencent account needed",
		Long: `Run recallq end to end in one process: an in-memory Redis, the Tencent
simulator, a worker and the producer library. It queues a few hundred recalls
that exercise every outcome, shows progress, and prints what happened to each.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 1 {
				return usagef("--count %d: give how many recalls to queue, at least 1 (default %d)", count, demo.DefaultCount)
			}
			o := demo.Options{Count: count, Out: g.stdout, MetricsAddr: metricsAddr}
			if verbose {
				log, err := g.logger()
				if err != nil {
					return err
				}
				o.Logger = log
			}
			return demo.Run(cmd.Context(), o)
		},
	}
	cmd.Flags().IntVar(&count, "count", demo.DefaultCount, "how many recalls to queue")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show the worker's logs")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "", `serve /metrics, /healthz and /readyz on this host:port during the demo ("": off)`)
	return cmd
}
