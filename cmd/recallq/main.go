// Command recallq recalls Tencent Cloud Chat one-to-one messages at scale:
// producers queue recalls in Redis, workers call admin_msgwithdraw under one
// shared 200 calls/s bucket. Run "recallq --help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/recallq/recallq/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
