package lab

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/bench"
	"github.com/recallq/recallq/internal/capture/capturebench"
)

func newBenchCaptureCmd(stdout, stderr io.Writer) *cobra.Command {
	var o capturebench.Options
	var inProcess bool
	cmd := &cobra.Command{
		Use:   "bench-capture [--rate N] [--duration D]",
		Short: "Measure the capture: callbacks/s into one process, p99 answer time, Redis bytes per message",
		Long: `Start a redis-server (it must be on PATH) and a capture on loopback, post signed
C2C.CallbackAfterSendMsg callbacks at --rate for --duration (open loop: answer
time from each callback's scheduled start), then as fast as --concurrency
clients can (closed loop), and print callbacks/s and the answer time's p50/p99;
then the Redis memory each indexed message costs, for senders of 1, 10 and 100
messages per bucket. The generator shares the machine with what it measures;
the capture runs as this binary's capture command, a process of its own, and
its CPU and redis-server's per callback are printed (Linux), with what two
cores would take at that cost were the generator elsewhere.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out, o.Progress = stdout, stderr
			if !inProcess {
				var err error
				if o.Exe, err = bench.Executable(); err != nil {
					return err
				}
			}
			return capturebench.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Rate, "rate", capturebench.DefaultRate, "open loop: callbacks per second")
	f.DurationVar(&o.Duration, "duration", capturebench.DefaultDuration, "length of each load phase")
	f.IntVar(&o.Concurrency, "concurrency", capturebench.DefaultConcurrency, "closed loop: clients")
	f.IntVar(&o.Senders, "senders", capturebench.DefaultSenders, "senders the load is spread over")
	f.BoolVar(&inProcess, "in-process", false, "run the capture in the generator's process, not as `recallq capture` of its own (no CPU figures)")
	f.BoolVar(&o.NetHTTP, "net-http", false, "serve the capture with net/http instead of its own server (fasthttp), to compare")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write the closed loop's CPU profile to this file (runs the capture in this process, as --in-process)")
	f.IntVar(&o.MemMessages, "mem-messages", capturebench.DefaultMemMessages, "messages per memory case")
	return cmd
}
