package demo

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// The demo is the first thing a new user runs: it must finish with every
// recall in the state the plan expects (Run returns an error otherwise).
func TestDemoReachesEveryOutcome(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Count: 100, Out: &out}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"completed", "dead-lettered", "tencent 20022", "tencent 90054", "tencent 90008",
		"tencent 90003", "tencent 99999", "60007", "70001", "90009", "91000", "still pending or retrying  ",
		"60 of the 60 wave messages recalled, and 1 of its 1 group message; 20 of the 20 other users' messages untouched"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	checkGroupRows(t, out.String())
}

// checkGroupRows checks the summary's group recalls against the plan of
// groups.go: 23 seqs of 4 groups (one topic); 11 recalled, 2 already
// recalled (10030), 10 dead-lettered (10032 once, 10031 four times, 10033
// three times, 10010 twice); the busy group's first call met 10006.
func checkGroupRows(t *testing.T, out string) {
	t.Helper()
	_, groups, ok := strings.Cut(out, "what happened to 23 group recalls")
	if !ok {
		t.Fatalf("the summary has no group recalls section for 23 seqs:\n%s", out)
	}
	table, rest, _ := strings.Cut(groups, "\non the way")
	_, onTheWay, ok := strings.Cut(rest, "every seq of every group_msg_recall call")
	if !ok {
		t.Fatalf("the summary has no group_msg_recall codes:\n%s", out)
	}
	onTheWay, _, _ = strings.Cut(onTheWay, "\n\n")
	for _, row := range []string{
		`completed\s+13\s+\(recalled 11, already recalled or never sent 10030: 2\)`,
		`dead-lettered\s+10\s`,
		`tencent 10010: the group does not exist any more \(dismissed\)\s+2\s`,
		`tencent 10031: the message is past the recall time limit \(roaming retention\)\s+4\s`,
		`tencent 10032: the message cannot be recalled\s+1\s`,
		`tencent 10033: the group's type does not allow message recall\s+3\s`,
		`still pending or retrying\s+0\s`,
	} {
		if !regexp.MustCompile(`(?m)^\s+` + row).MatchString(table) {
			t.Errorf("the group recalls' table lacks %q:\n%s", row, table)
		}
	}
	for _, row := range []string{
		`0\s+\d+\s+recalled -> done`, // at least the 11 recalled, more when a call met 10006 or 10002
		`10006\s+\d+\s+operation frequency limit exceeded -> rate_limited`,
		`10010\s+2\s+the group does not exist any more \(dismissed\) -> dead_letter`,
		`10030\s+2\s+.* -> done`,
		`10031\s+4\s`, `10032\s+1\s`, `10033\s+3\s`,
	} {
		if !regexp.MustCompile(`(?m)^\s+` + row).MatchString(onTheWay) {
			t.Errorf("the group_msg_recall codes lack %q:\n%s", row, onTheWay)
		}
	}
	if !strings.Contains(out, "queued 23 group recalls of 5 groups and topics, one task per MsgSeq (and 5 duplicates") {
		t.Errorf("the demo does not say how many group recalls it queued:\n%s", out)
	}
}
