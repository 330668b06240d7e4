// Package lab is recallq's workshop: the benchmarks, the fault suite and
// the command-line introspection the deployment tests use. It is linked
// only into cmd/recallq-lab, never into the recallq binary that ships, so
// the product carries no test support (package testing, redistest, the
// benchmark harnesses).
package lab

import (
	"io"

	"github.com/spf13/cobra"
)

// Extend adds the lab's commands to recallq's command tree (see
// cli.Extension): bench and its worker process, faults, bench-capture,
// bench-group and its worker process, bench-apps,
// and campaign bench-import and bench-urgent.
func Extend(root *cobra.Command, stdout, stderr io.Writer) {
	root.AddCommand(newBenchCmd(stdout, stderr), newBenchWorkerCmd(stdout, stderr), newFaultsCmd(stdout, stderr),
		newBenchCaptureCmd(stdout, stderr), newBenchGroupCmd(stdout, stderr), newBenchGroupWorkerCmd(stdout, stderr),
		newBenchAppsCmd(stdout, stderr))
	for _, c := range root.Commands() {
		if c.Name() == "campaign" {
			c.AddCommand(newCampaignBenchImportCmd(stdout, stderr), newCampaignBenchUrgentCmd(stdout, stderr))
		}
	}
}
