package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShippedBinaryCarriesNoLab pins that the recallq binary links none of
// the workshop: no package testing, no benchmark, fault suite or test
// helper. Those live in cmd/recallq-lab.
func TestShippedBinaryCarriesNoLab(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"testing",
		"github.com/recallq/recallq/internal/lab",
		"github.com/recallq/recallq/internal/lab/campaignbench",
		"github.com/recallq/recallq/internal/bench",
		"github.com/recallq/recallq/internal/faults",
		"github.com/recallq/recallq/internal/childproc",
		"github.com/recallq/recallq/internal/redistest",
		"github.com/recallq/recallq/internal/logtest",
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	for _, p := range forbidden {
		if deps[p] {
			t.Errorf("the shipped binary links %s; move what needs it to cmd/recallq-lab", p)
		}
	}
}
