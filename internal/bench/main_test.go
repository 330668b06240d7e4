package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"

	"github.com/recallq/recallq/internal/imsim"
)

// TestMain lets the test binary stand in for the recallq binary: the
// benchmark re-executes os.Executable() as "imsim" and "bench-worker", so
// the end-to-end test runs real processes without building anything.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case WorkerCommand:
			os.Exit(childMain(func(ctx context.Context) error {
				return RunWorkerArgs(ctx, os.Args[2:], os.Getenv, os.Stderr)
			}))
		case SimCommand:
			os.Exit(childMain(func(ctx context.Context) error { return runSim(ctx, os.Args[2:]) }))
		}
	}
	os.Exit(m.Run())
}

// childMain runs a child until SIGINT or SIGTERM, as cmd/recallq does.
func childMain(run func(context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// runSim is "recallq imsim" for the flags the benchmark passes.
func runSim(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(SimCommand, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "")
	latency := fs.String("latency", "0ms", "")
	failRate := fs.Float64("fail-rate", 0, "")
	fs.String("log-level", "warn", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sp, err := ParseLatencies(*latency)
	if err != nil || len(sp) != 1 {
		return errors.New("--latency: one latency")
	}
	id, err := strconv.ParseUint(os.Getenv("TIM_SDKAPPID"), 10, 64)
	if err != nil {
		return fmt.Errorf("TIM_SDKAPPID: %w", err)
	}
	sim, err := imsim.New(imsim.Config{SDKAppID: id, SecretKey: os.Getenv("TIM_SECRET_KEY"),
		LatencyMin: sp[0].Min, LatencyMax: sp[0].Max, FailRate: *failRate})
	if err != nil {
		return err
	}
	return imsim.ListenAndServe(ctx, *addr, sim, nil)
}
