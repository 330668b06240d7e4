package cli

import (
	"context"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// RunIfCommand is for a test binary that stands in for recallq (a suite
// that re-executes os.Executable() as "worker", "capture", ...): when
// this process was started as one of names (os.Args[1]), it runs that
// command line as recallq would, until SIGINT or SIGTERM, and exits with
// its code. Otherwise it returns.
func RunIfCommand(names ...string) {
	if len(os.Args) < 2 || !slices.Contains(names, os.Args[1]) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
