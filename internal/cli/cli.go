// Package cli is recallq's command line: one command per job (worker,
// enqueue, imsim, demo), configured by environment variables that flags
// override. Secrets come only from the environment or a file, never from a
// flag.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the job failed
	exitUsage = 2 // bad flags, configuration or input: the message says what to fix
)

// usageError marks an error the user can fix by changing what they typed
// or configured.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Main runs the command line and returns the process's exit code. Each
// extension adds commands to the tree first (cmd/recallq-lab adds the
// benchmarks and the fault suite; the shipped recallq adds none).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, extensions ...Extension) int {
	root := NewRoot(stdout, stderr)
	for _, ext := range extensions {
		ext(root, stdout, stderr)
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "recallq:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown ") || strings.Contains(err.Error(), "flag") {
		return exitUsage
	}
	return exitError
}

// globals are the flags every command has.
type globals struct {
	logFormat string
	logLevel  string
	stdout    io.Writer
	stderr    io.Writer
}

func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, usagef("--log-format %q: use text or json", g.logFormat)
}

// NewRoot returns recallq's command tree, writing to stdout and stderr.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "recallq",
		Short: "Recall Tencent Cloud Chat one-to-one messages at scale",
		Long: `recallq queues recalls of Tencent Cloud Chat one-to-one messages in Redis and
runs workers that call v4/openim/admin_msgwithdraw, all sharing one
200 calls/s bucket. Try it with no Redis and no Tencent account:

    recallq demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", envOr("LOG_FORMAT", "text"), "log format, text or json (env LOG_FORMAT)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", envOr("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	root.AddCommand(
		newWorkerCmd(g),
		newEnqueueCmd(g),
		newIMSimCmd(g),
		newDemoCmd(g),
		newCampaignCmd(g),
		newServeCmd(g),
		newDashboardCmd(g),
	)
	root.AddCommand(newCaptureCmd(g))
	return root
}
