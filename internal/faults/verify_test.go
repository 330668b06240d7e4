package faults

import (
	"testing"

	"github.com/hibiken/asynq"
)

// TestJudge pins how a task's final state and its message's fate at the
// simulator are judged, one case each.
func TestJudge(t *testing.T) {
	done := finalState{state: asynq.TaskStateCompleted}
	dead := finalState{state: asynq.TaskStateArchived, lastErr: "tencent ..."}
	tests := []struct {
		name    string
		missing bool
		state   *finalState // nil: neither completed nor archived
		fate    []int
		want    verdict
	}{
		{"recalled", false, &done, []int{0}, verdict{recalled: 1}},
		{"recalled after a rate limit", false, &done, []int{60007, 0}, verdict{recalled: 1}},
		{"answer lost, then already recalled", false, &done, []int{0, 20023}, verdict{already: 1}},
		{"completed but never recalled", false, &done, []int{91000}, verdict{lost: 1}},
		{"completed, simulator saw nothing", false, &done, nil, verdict{lost: 1}},
		{"still pending", false, nil, nil, verdict{lost: 1}},
		{"still retrying", false, nil, []int{91000}, verdict{lost: 1}},
		{"missing message dead-lettered", true, &dead, []int{20022}, verdict{missing: 1, dead: 1}},
		{"dead-lettered after 91000s", false, &dead, []int{91000, 91000}, verdict{dead: 1, wrong: 1, presentDead: 1}},
		{"dead-lettered after a configuration error", false, &dead, []int{70009}, verdict{dead: 1, wrong: 1, presentDead: 1}},
		{"dead-lettered without an answer", false, &dead, nil, verdict{dead: 1, wrong: 1, presentDead: 1}},
		{"missing message completed", true, &done, []int{0}, verdict{missing: 1, recalled: 1, missingNotDead: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := campaignMessages(1, 1, 0, 0)
			msgs[0].missing = tt.missing
			states := map[string]finalState{}
			if tt.state != nil {
				states[msgs[0].taskID] = *tt.state
			}
			got := judge(msgs, states, [][]int{tt.fate})
			tt.want.queued = 1
			if got.recalled != tt.want.recalled || got.already != tt.want.already || got.dead != tt.want.dead ||
				got.lost != tt.want.lost || got.wrong != tt.want.wrong || got.missing != tt.want.missing ||
				got.missingNotDead != tt.want.missingNotDead || got.presentDead != tt.want.presentDead || got.queued != 1 {
				t.Errorf("judge = %+v, want %+v", got, tt.want)
			}
			if (got.lost > 0 || got.wrong > 0) != (len(got.examples) > 0) {
				t.Errorf("examples %q do not match %d lost, %d wrong", got.examples, got.lost, got.wrong)
			}
		})
	}
}

func TestCampaignMessagesMarksTheMissingShare(t *testing.T) {
	for _, tc := range []struct {
		n       int
		share   float64
		missing int
	}{{300, 0.02, 6}, {20000, 0.02, 400}, {10, 0, 0}, {7, 0.5, 3}} {
		msgs := campaignMessages(tc.n, 42, 1, tc.share)
		got, ids := 0, map[string]bool{}
		for _, m := range msgs {
			if m.missing {
				got++
			}
			ids[m.taskID] = true
		}
		if got != tc.missing || len(ids) != tc.n {
			t.Errorf("n=%d share %v: %d missing, %d distinct task IDs; want %d and %d", tc.n, tc.share, got, len(ids), tc.missing, tc.n)
		}
	}
}
