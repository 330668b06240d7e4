package capturebench

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/cli"
)

// TestMain lets the test binary be the capture child: Run starts
// `EXE capture ...` with the test binary as EXE.
func TestMain(m *testing.M) {
	cli.RunIfCommand("capture")
	os.Exit(m.Run())
}

// TestRunMeasuresTheCaptureProcess runs a short benchmark against the
// capture as a process of its own and checks what it prints: every
// callback answered and indexed, the CPU per callback of the capture and
// of redis-server.
func TestRunMeasuresTheCaptureProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and the capture for about 5 s")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = Run(ctx, Options{Exe: exe, Rate: 300, Duration: 500 * time.Millisecond, Concurrency: 4, Senders: 20,
		MemMessages: 200, Out: &out, Progress: t.Output()})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	wants := []string{"`recallq capture`, a process of its own", "failed 0;", " 0 refused, 0 index errors"}
	if runtime.GOOS == "linux" { // the CPU comes from /proc
		wants = append(wants, "open loop: CPU per callback: the capture", "closed loop: CPU per callback: the capture")
	}
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output has no %q", want)
		}
	}
}
