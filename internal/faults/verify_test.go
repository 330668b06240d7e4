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
		{"recalled", false, &done, []int{0}, verdict{tally: tally{recalled: 1}}},
		{"recalled after a rate limit", false, &done, []int{60007, 0}, verdict{tally: tally{recalled: 1}}},
		{"answer lost, then already recalled", false, &done, []int{0, 20023}, verdict{tally: tally{already: 1}}},
		{"completed but never recalled", false, &done, []int{91000}, verdict{tally: tally{lost: 1}}},
		{"completed, simulator saw nothing", false, &done, nil, verdict{tally: tally{lost: 1}}},
		{"still pending", false, nil, nil, verdict{tally: tally{lost: 1}}},
		{"still retrying", false, nil, []int{91000}, verdict{tally: tally{lost: 1}}},
		{"missing message dead-lettered", true, &dead, []int{20022}, verdict{tally: tally{dead: 1}, missing: 1}},
		{"dead-lettered after 91000s", false, &dead, []int{91000, 91000}, verdict{tally: tally{dead: 1, wrong: 1}, presentDead: 1}},
		{"dead-lettered after a configuration error", false, &dead, []int{70009}, verdict{tally: tally{dead: 1, wrong: 1}, presentDead: 1}},
		{"dead-lettered without an answer", false, &dead, nil, verdict{tally: tally{dead: 1, wrong: 1}, presentDead: 1}},
		{"missing message completed", true, &done, []int{0}, verdict{tally: tally{recalled: 1}, missing: 1, missingNotDead: 1}},
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

// TestJudgeGroups pins how a group seq's final state, its fate at the
// simulator and the plan (recall it, or see it dead-lettered with 10032)
// are judged, one case each.
func TestJudgeGroups(t *testing.T) {
	done := finalState{state: asynq.TaskStateCompleted}
	dead := finalState{state: asynq.TaskStateArchived, lastErr: "tencent ..."}
	tests := []struct {
		name  string
		dead  bool // the plan: unrecallable, to be dead-lettered
		state *finalState
		fate  []int
		want  groupVerdict
	}{
		{"recalled", false, &done, []int{0}, groupVerdict{tally: tally{recalled: 1}}},
		{"recalled after a rate limit and a batch error", false, &done, []int{10006, 10002, 0}, groupVerdict{tally: tally{recalled: 1}}},
		{"answer lost, then recalled before", false, &done, []int{0, 10030}, groupVerdict{tally: tally{already: 1}}},
		{"completed on 10030 alone", false, &done, []int{10030}, groupVerdict{tally: tally{lost: 1}}},
		{"completed, simulator saw nothing", false, &done, nil, groupVerdict{tally: tally{lost: 1}}},
		{"still pending", false, nil, nil, groupVerdict{tally: tally{lost: 1}}},
		{"lost although it was recalled", false, nil, []int{0}, groupVerdict{tally: tally{lost: 1}}},
		{"unrecallable seq dead-lettered", true, &dead, []int{10032}, groupVerdict{tally: tally{dead: 1}, planned: 1}},
		{"unrecallable seq dead-lettered after a transient error", true, &dead, []int{10002, 10032}, groupVerdict{tally: tally{dead: 1}, planned: 1}},
		{"unrecallable seq recalled", true, &done, []int{0}, groupVerdict{tally: tally{recalled: 1}, planned: 1, offPlan: 1}},
		{"unrecallable seq completed without a recall", true, &done, []int{10032}, groupVerdict{tally: tally{lost: 1}, planned: 1, offPlan: 1}},
		{"unrecallable seq dead-lettered with another code", true, &dead, []int{10015}, groupVerdict{tally: tally{dead: 1}, planned: 1, offPlan: 1}},
		{"unrecallable seq lost", true, nil, []int{10032}, groupVerdict{tally: tally{lost: 1}, planned: 1}},
		{"recallable seq dead-lettered with 10032", false, &dead, []int{10032}, groupVerdict{tally: tally{dead: 1}, offPlan: 1}},
		{"dead-lettered after 91000s", false, &dead, []int{91000, 91000, 91000}, groupVerdict{tally: tally{dead: 1, wrong: 1}, offPlan: 1}},
		{"dead-lettered after a configuration error", false, &dead, []int{10041}, groupVerdict{tally: tally{dead: 1, wrong: 1}, offPlan: 1}},
		{"dead-lettered without an answer", false, &dead, nil, groupVerdict{tally: tally{dead: 1, wrong: 1}, offPlan: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seqs := groupCampaign(1, 1, 1, 0, 0)
			seqs[0].dead = tt.dead
			states := map[string]finalState{}
			if tt.state != nil {
				states[seqs[0].taskID] = *tt.state
			}
			got := judgeGroups(seqs, states, [][]int{tt.fate})
			if got.recalled != tt.want.recalled || got.already != tt.want.already || got.dead != tt.want.dead ||
				got.lost != tt.want.lost || got.wrong != tt.want.wrong || got.offPlan != tt.want.offPlan ||
				got.planned != tt.want.planned || got.queued != 1 {
				t.Errorf("judgeGroups = %+v, want %+v", got, tt.want)
			}
			if got.ok() != (tt.want.lost == 0 && tt.want.wrong == 0 && tt.want.offPlan == 0) {
				t.Errorf("ok() = %v with %d lost, %d wrong, %d off plan", got.ok(), got.lost, got.wrong, got.offPlan)
			}
			if got.ok() == (len(got.examples) > 0) {
				t.Errorf("examples %q do not match ok() = %v", got.examples, got.ok())
			}
		})
	}
}

func TestGroupCampaignPlansTheDeadShare(t *testing.T) {
	for _, tc := range []struct {
		groups, per int
		share       float64
		dead        int
	}{{4, 250, 0.02, 20}, {4, 10, 0.02, 1}, {2, 10, 0, 0}, {1, 7, 0.5, 4}} {
		seqs := groupCampaign(tc.groups, tc.per, 42, 1, tc.share)
		got, ids, groups := 0, map[string]bool{}, map[string]bool{}
		for _, g := range seqs {
			if g.dead {
				got++
			}
			ids[g.taskID] = true
			groups[g.group] = true
		}
		if n := tc.groups * tc.per; got != tc.dead || len(ids) != n || len(seqs) != n || len(groups) != tc.groups {
			t.Errorf("%d groups of %d, share %v: %d dead, %d distinct task IDs in %d groups; want %d, %d, %d",
				tc.groups, tc.per, tc.share, got, len(ids), len(groups), tc.dead, n, tc.groups)
		}
	}
}

func TestInterleaveSpreadsTheGroupSeqs(t *testing.T) {
	order := interleave(20, 5)
	msgs, seqs := 0, 0
	for p, i := range order {
		if i < 0 {
			if want := -seqs - 1; i != want {
				t.Fatalf("position %d: group seq %d, want %d", p, -i-1, -want-1)
			}
			seqs++
		} else {
			if i != msgs {
				t.Fatalf("position %d: message %d, want %d", p, i, msgs)
			}
			msgs++
		}
		if p == 12 && (seqs < 2 || seqs > 3) {
			t.Errorf("half-way %d group seqs queued of 5: not spread", seqs)
		}
	}
	if msgs != 20 || seqs != 5 {
		t.Errorf("%d messages and %d group seqs, want 20 and 5", msgs, seqs)
	}
}
