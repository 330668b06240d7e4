package campaignbench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBusyRate(t *testing.T) {
	tests := []struct {
		name      string
		perSecond []int
		want      float64
		ok        bool
	}{
		{"the first and last busy seconds are left out", []int{0, 0, 50, 200, 190, 40}, 195, true},
		{"idle seconds before and after do not count", []int{0, 100, 200, 200, 200, 100, 0, 0}, 200, true},
		{"a lull between busy seconds counts", []int{10, 200, 0, 200, 10}, 400.0 / 3, true},
		{"two busy seconds are too few", []int{0, 200, 200, 0}, 0, false},
		{"no call", []int{0, 0, 0}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := busyRate(tt.perSecond)
			if got != tt.want || ok != tt.ok {
				t.Errorf("busyRate(%v) = %v, %v; want %v, %v", tt.perSecond, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestBenchAppsPrintsEachApp runs a tiny configuration and checks the
// table has a row per app, app B's with its urgent recalls. Its figures
// are not asserted: they are the benchmark's to print.
func TestBenchAppsPrintsEachApp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs redis-server, two simulators and the workers for about 10 s")
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := BenchApps(ctx, BenchAppsOptions{Backlog: 3000, Campaign: 400, Urgent: 5, Spread: time.Second, RunOptions: RunOptions{Out: &out}})
	if err != nil {
		t.Fatalf("BenchApps: %v\n%s", err, out.String())
	}
	for _, row := range []string{fmt.Sprintf("A %d ", benchAppA), fmt.Sprintf("B %d ", benchAppB)} {
		if !strings.Contains(out.String(), "  "+row) {
			t.Errorf("no row %q in:\n%s", row, out.String())
		}
	}
	if b := rowOf(out.String(), fmt.Sprintf("B %d ", benchAppB)); !strings.Contains(b, " 5 ") {
		t.Errorf("app B's row does not count its 5 urgent recalls: %q", b)
	}
}

// rowOf is the line of s that starts with prefix after its indent.
func rowOf(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return l
		}
	}
	return ""
}
