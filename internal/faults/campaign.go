package faults

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/fanout"
	"github.com/recallq/recallq/tasks"
)

// Bounds and widths of queuing a campaign.
const (
	// enqueueTimeout bounds queuing one campaign.
	enqueueTimeout = 5 * time.Minute
	// enqueueWorkers is how many recalls are queued at once.
	enqueueWorkers = 32
	// fateWorkers is how many fates are read from the simulator at once.
	fateWorkers = 32
)

// message is one recall of a campaign.
type message struct {
	from, to, key string
	// missing: the simulator was told the message does not exist, so its
	// recall must end dead-lettered with 20022.
	missing bool
	taskID  string
}

// campaignMessages returns n messages of run index of the suite nonce, no
// two alike across runs; floor(n*missing) of them, spread evenly, are
// marked missing.
func campaignMessages(n int, nonce int64, index int, missing float64) []message {
	msgs := make([]message, n)
	for i := range msgs {
		m := message{
			from:    "faults_sender",
			to:      fmt.Sprintf("user%d", i),
			key:     fmt.Sprintf("%d_%d_%d", nonce, index, i),
			missing: math.Floor(float64(i+1)*missing) > math.Floor(float64(i)*missing),
		}
		m.taskID = m.recall("").TaskID()
		msgs[i] = m
	}
	return msgs
}

// recall is the task payload of m for the campaign.
func (m message) recall(campaign string) tasks.Recall {
	return tasks.Recall{SDKAppID: sdkAppID, FromAccount: m.from, ToAccount: m.to, MsgKey: m.key,
		RequestedBy: "recallq faults", Reason: "fault suite", Campaign: campaign}
}

// forEach runs fn on every message, width at a time, and returns the first
// error (which stops the rest): fanout.Each over msgs.
func forEach(ctx context.Context, msgs []message, width int, fn func(ctx context.Context, i int, m message) error) error {
	return fanout.Each(ctx, len(msgs), width, func(ctx context.Context, i int) error { return fn(ctx, i, msgs[i]) })
}

// forgetMissing tells the simulator that the missing messages do not exist.
func forgetMissing(ctx context.Context, sim *simProc, msgs []message) (int, error) {
	var missing []message
	for _, m := range msgs {
		if m.missing {
			missing = append(missing, m)
		}
	}
	err := forEach(ctx, missing, enqueueWorkers, func(ctx context.Context, _ int, m message) error {
		return sim.forget(ctx, m)
	})
	if err != nil {
		return 0, fmt.Errorf("tell the simulator which messages are missing: %w", err)
	}
	return len(missing), nil
}

// enqueueCampaign queues a recall of every message and every group seq on
// the bulk lane with the campaign's name, through tasks.NewTask and
// tasks.NewGroupTask (their deterministic task IDs, retry budget and 24 h
// retention), enqueueWorkers at a time, the group seqs spread evenly among
// the messages so that both kinds meet the fault. It returns how many of
// each were queued; a task already queued is an error, as every run uses
// new messages and groups in a new Redis.
func enqueueCampaign(ctx context.Context, client *asynq.Client, msgs []message, seqs []groupSeq, campaign string) (queued, groupQueued int, err error) {
	ctx, cancel := context.WithTimeout(ctx, enqueueTimeout)
	defer cancel()
	var nMsgs, nSeqs atomic.Int64
	order := interleave(len(msgs), len(seqs))
	err = fanout.Each(ctx, len(order), enqueueWorkers, func(ctx context.Context, p int) error {
		var t *asynq.Task
		var what string
		var err error
		if i := order[p]; i < 0 {
			g := seqs[-i-1]
			what = fmt.Sprintf("group recall of %s seq %d", g.group, g.seq)
			t, err = tasks.NewGroupTask(g.recall(campaign), tasks.Options{Queue: tasks.QueueBulk})
		} else {
			what = "recall of " + msgs[i].key
			t, err = tasks.NewTask(msgs[i].recall(campaign), tasks.Options{Queue: tasks.QueueBulk})
		}
		if err != nil {
			return err
		}
		if _, err := client.EnqueueContext(ctx, t); err != nil {
			if errors.Is(err, asynq.ErrTaskIDConflict) {
				return fmt.Errorf("%s was already queued: every run must start from an empty Redis", what)
			}
			return err
		}
		if order[p] < 0 {
			nSeqs.Add(1)
		} else {
			nMsgs.Add(1)
		}
		return nil
	})
	queued, groupQueued = int(nMsgs.Load()), int(nSeqs.Load())
	if err != nil {
		return queued, groupQueued, fmt.Errorf("queue the campaign: %w", err)
	}
	return queued, groupQueued, nil
}

// interleave is the order in which n messages and g group seqs are queued:
// i >= 0 is message i, i < 0 is group seq -i-1, the seqs spread evenly.
func interleave(n, g int) []int {
	order := make([]int, 0, n+g)
	m, s := 0, 0
	for p := range n + g {
		if (p+1)*g/(n+g) > p*g/(n+g) {
			s++
			order = append(order, -s)
		} else {
			order = append(order, m)
			m++
		}
	}
	return order
}
