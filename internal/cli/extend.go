package cli

import (
	"io"
	"time"

	"github.com/spf13/cobra"
)

// Extension adds commands to recallq's command tree, for a binary built
// around it (cmd/recallq-lab). It gets the root and the writers that
// Main was given.
type Extension func(root *cobra.Command, stdout, stderr io.Writer)

// Usagef returns an error that Main reports with exit status 2: the user
// can fix it by changing what they typed or configured.
func Usagef(format string, args ...any) error { return usagef(format, args...) }

// ParseInts parses a comma-separated list of positive integers ("1,4,16").
func ParseInts(s string) ([]int, error) { return parseInts(s) }

// ParseLatency parses a latency flag: a duration ("20ms") or a range
// ("20ms-50ms"); the error names the flag's expected form.
func ParseLatency(s string) (min, max time.Duration, err error) { return parseLatency(s) }
