package faults

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/tasks"
)

// codeGroupUnrecallable is group_msg_recall's RetCode for a message that
// cannot be recalled: the simulator answers it for every call naming a seq
// in the "unrecallable" state, and the worker's outcome table dead-letters
// it. (10030, "no such message", would not do: the table treats it as
// done, since Tencent also answers it for a seq recalled before.)
const codeGroupUnrecallable = 10032

// groupSeq is one group recall of a run: one task per (group, seq).
type groupSeq struct {
	group string
	seq   uint64
	// dead: the simulator was told the message cannot be recalled, so its
	// task must end dead-lettered with codeGroupUnrecallable.
	dead   bool
	taskID string
}

// groupCampaign returns the group recalls of run index of the suite
// nonce: seqs 1..perGroup of each of groups groups (no two group IDs alike
// across runs), in group order. ceil(groups*perGroup*dead) of them, spread
// evenly, are marked dead, so that any positive share marks at least one.
func groupCampaign(groups, perGroup int, nonce int64, index int, dead float64) []groupSeq {
	n := groups * perGroup
	nDead := int(math.Ceil(float64(n) * dead))
	out := make([]groupSeq, 0, n)
	for g := range groups {
		id := fmt.Sprintf("faults_%d_%d_g%d", nonce, index, g)
		for s := 1; s <= perGroup; s++ {
			i := len(out)
			gs := groupSeq{group: id, seq: uint64(s), dead: nDead > 0 && (i+1)*nDead/n > i*nDead/n}
			gs.taskID = gs.recall("").TaskID()
			out = append(out, gs)
		}
	}
	return out
}

// recall is the task payload of g for the campaign.
func (g groupSeq) recall(campaign string) tasks.GroupRecall {
	return tasks.GroupRecall{SDKAppID: sdkAppID, GroupID: g.group, MsgSeq: g.seq,
		RequestedBy: "recallq faults", Reason: "fault suite", Campaign: campaign}
}

// createGroups creates every group of seqs at the simulator, with as many
// messages as its highest seq, and makes the dead seqs unrecallable. It
// returns how many were made unrecallable.
func createGroups(ctx context.Context, sim *simProc, seqs []groupSeq) (int, error) {
	sizes := map[string]uint64{}
	var order []string
	for _, g := range seqs {
		if _, ok := sizes[g.group]; !ok {
			order = append(order, g.group)
		}
		sizes[g.group] = max(sizes[g.group], g.seq)
	}
	for _, id := range order {
		if err := sim.createGroup(ctx, id, sizes[id]); err != nil {
			return 0, fmt.Errorf("create the campaign's groups at the simulator: %w", err)
		}
	}
	dead := 0
	for _, g := range seqs {
		if !g.dead {
			continue
		}
		if err := sim.setGroupMessage(ctx, g, imsim.GroupMsgUnrecallable); err != nil {
			return dead, fmt.Errorf("make the campaign's dead seqs unrecallable: %w", err)
		}
		dead++
	}
	return dead, nil
}

// createGroup creates a group whose messages 1..messages exist, sent now.
func (s *simProc) createGroup(ctx context.Context, id string, messages uint64) error {
	return s.Call(ctx, http.MethodPost, "/sim/group/create", imsim.GroupSpec{GroupID: id, Messages: messages}, nil)
}

// setGroupMessage sets the state of g's message.
func (s *simProc) setGroupMessage(ctx context.Context, g groupSeq, st imsim.GroupMsgState) error {
	return s.Call(ctx, http.MethodPost, "/sim/group/message",
		map[string]any{"GroupId": g.group, "MsgSeq": g.seq, "State": st}, nil)
}

// groupFate lists every code the simulator answered for g's seq: its
// RetCode, or the call's ErrorCode when the call failed.
func (s *simProc) groupFate(ctx context.Context, g groupSeq) ([]int, error) {
	return s.codes(ctx, "/sim/group/fate", url.Values{"group": {g.group}, "seq": {strconv.FormatUint(g.seq, 10)}})
}

// groupStats reads GET /sim/group/stats.
func (s *simProc) groupStats(ctx context.Context) (imsim.GroupStats, error) {
	var st imsim.GroupStats
	err := s.Call(ctx, http.MethodGet, "/sim/group/stats", nil, &st)
	return st, err
}
