// Command recallq-lab is recallq with its workshop: every command of
// recallq, plus the benchmarks ("bench", "campaign bench-import",
// "campaign bench-urgent") and the fault suite ("faults"). The benchmarks
// re-execute this binary as the worker and simulator processes they
// measure, so those run exactly the code that ships. Operators run
// recallq; the lab is for measuring it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/recallq/recallq/internal/cli"
	"github.com/recallq/recallq/internal/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, lab.Extend)
	stop()
	os.Exit(code)
}
