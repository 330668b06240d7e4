package bench

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunOneTinyConfiguration runs the shared limiter with one worker
// process and 50 tasks end to end: a real redis-server, the simulator and
// the worker as processes of their own, and checks the row it prints.
func TestRunOneTinyConfiguration(t *testing.T) {
	exe, err := Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	err = Run(ctx, Options{
		Exe:          exe,
		Latencies:    []Spread{{Min: time.Millisecond, Max: 2 * time.Millisecond}},
		Procs:        []int{1},
		Limiters:     []string{LimiterShared},
		Tasks:        50,
		FailRate:     0.05,
		DrainTimeout: 45 * time.Second,
		CommandLine:  "go test",
		Out:          &out,
		Progress:     t.Output(),
	})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	var header, rowFields []string
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "limiter":
			header = f
		case len(f) > 0 && f[0] == LimiterShared:
			rowFields = f
		}
	}
	want := []string{"limiter", "procs", "concurrency", "tasks", "wall_s", "rate_busy/s", "utilisation",
		"max_in_any_1s", "60007s", "redis_ops/call", "wait_p99", "busy_s", "left"}
	if strings.Join(header, " ") != strings.Join(want, " ") {
		t.Fatalf("header %q, want %q", header, want)
	}
	if len(rowFields) != len(header) {
		t.Fatalf("row %q has %d cells, header %d", rowFields, len(rowFields), len(header))
	}
	cell := func(name string) string {
		for i, h := range header {
			if h == name {
				return rowFields[i]
			}
		}
		t.Fatalf("no column %q", name)
		return ""
	}
	num := func(name string) float64 {
		v, err := strconv.ParseFloat(cell(name), 64)
		if err != nil {
			t.Fatalf("column %s = %q: %v", name, cell(name), err)
		}
		return v
	}
	if got := cell("tasks"); got != "50" {
		t.Errorf("tasks = %s, want 50 queued", got)
	}
	if got := cell("left"); got != "0" {
		t.Errorf("left = %s: not every task was completed or archived", got)
	}
	if got := num("max_in_any_1s"); got > Cap || got < 1 {
		t.Errorf("max_in_any_1s = %v, want between 1 and %d", got, Cap)
	}
	if got := cell("60007s"); got != "0" {
		t.Errorf("60007s = %s: the shared limiter let the simulator reject calls", got)
	}
	// One EVALSHA per grant, no polling; the first call of the process may
	// need an EVAL. A slot dropped as late (the tiny run starts 64
	// goroutines at once, and on a loaded machine, CI's, many wake late)
	// costs its grant's round trip too: the detail line counts both.
	permits := detailCount(t, out.String(), `workers' permits (\d+)`)
	drops := detailCount(t, out.String(), `late drops (\d+)`)
	if permits == 0 {
		t.Fatal("the detail line counts no permits")
	}
	wantOps := float64(permits+drops) / float64(permits)
	if got := num("redis_ops/call"); got < 1 || got > wantOps+2.0/float64(permits)+0.01 {
		t.Errorf("redis_ops/call = %v, want one round trip per grant: %d permits and %d late drops make %.2f", got, permits, drops, wantOps)
	}
	if cell("wait_p99") == "-" {
		t.Error("wait_p99 is missing: the worker wrote no waits")
	}
}

// detailCount is the number pattern's group captures in the bench's
// output (its first match).
func detailCount(t *testing.T, out, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in the output", pattern)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}
