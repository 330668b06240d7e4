package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The demo is the first thing a new user runs: it must finish with every
// recall in the state the plan expects (Run returns an error otherwise).
func TestDemoReachesEveryOutcome(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Count: 100, Out: &out}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"completed", "dead-lettered", "tencent 20022", "tencent 90054", "tencent 90008",
		"tencent 90003", "tencent 99999", "60007", "70001", "90009", "91000", "still pending or retrying  ",
		"60 of the 60 wave messages recalled; 20 of the 20 other users' messages untouched"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
