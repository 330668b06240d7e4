package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/tasks"
)

// groupKind is what the demo arranges for one group recall in the
// simulator.
type groupKind int

const (
	groupOrdinary     groupKind = iota // recalled: 0 (a call may meet a 10002 or the 10006 on the way and be retried)
	groupAlready                       // recalled beforehand: 10030, done
	groupUnrecallable                  // a message that cannot be recalled: 10032
	groupPastWindow                    // sent before the recall window: 10031
	groupTypeForbids                   // a group type that forbids recall: 10033
	groupDismissed                     // the group was dismissed: 10010 for the whole call
)

// groupDead says which group kinds end in the dead-letter set.
var groupDead = map[groupKind]bool{
	groupUnrecallable: true, groupPastWindow: true, groupTypeForbids: true, groupDismissed: true,
}

// The demo's groups.
const (
	newsGroup    = "@TGS#demo-news" // a busy group: most seqs recalled, a few not
	newsTopic    = newsGroup + "@TOPIC#_sales"
	archiveGroup = "@TGS#demo-archive" // every message older than the recall window
	liveGroup    = "@TGS#demo-live"    // a live-stream room whose type forbids recall
	goneGroup    = "@TGS#demo-gone"    // dismissed before the recall
)

// groupBatch is the seqs of one group (or topic) the demo queues at once,
// as `recallq enqueue --group G --seq N,...` does.
type groupBatch struct {
	group, topic string
	seqs         []uint64
	kinds        []groupKind
}

// groupPlan is the group recalls the demo queues: a few groups whose
// seqs meet every group_msg_recall outcome the simulator can produce.
type groupPlan struct {
	batches []groupBatch
}

func makeGroupPlan() *groupPlan {
	news := groupBatch{group: newsGroup}
	for seq := uint64(1); seq <= 12; seq++ {
		k := groupOrdinary
		switch seq {
		case 3, 8:
			k = groupAlready
		case 5:
			k = groupUnrecallable
		}
		news.seqs, news.kinds = append(news.seqs, seq), append(news.kinds, k)
	}
	same := func(group string, n int, k groupKind) groupBatch {
		b := groupBatch{group: group}
		for seq := range uint64(n) {
			b.seqs, b.kinds = append(b.seqs, seq+1), append(b.kinds, k)
		}
		return b
	}
	topic := same(newsGroup, 2, groupOrdinary)
	topic.topic = newsTopic
	return &groupPlan{batches: []groupBatch{
		news, topic,
		same(archiveGroup, 4, groupPastWindow),
		same(liveGroup, 3, groupTypeForbids),
		same(goneGroup, 2, groupDismissed),
	}}
}

// size is how many group recall tasks the plan queues: one per seq.
func (p *groupPlan) size() int {
	n := 0
	for _, b := range p.batches {
		n += len(b.seqs)
	}
	return n
}

// wantDead is how many group recalls the plan expects in the dead-letter
// set.
func (p *groupPlan) wantDead() int {
	n := 0
	for _, b := range p.batches {
		for _, k := range b.kinds {
			if groupDead[k] {
				n++
			}
		}
	}
	return n
}

// prepare sets the simulator's groups up so each seq meets its kind's
// outcome; the first call naming the busy group answers 10006 (too
// frequent), which slows the group bucket down once.
func (p *groupPlan) prepare(sim *imsim.Sim) error {
	now := time.Now()
	for _, spec := range []imsim.GroupSpec{
		{GroupID: newsGroup, Messages: 12, SentAt: now.Add(-time.Hour)},
		{GroupID: archiveGroup, Messages: 4, SentAt: now.Add(-imsim.DefaultGroupRecallWindow - 24*time.Hour)},
		{GroupID: liveGroup, Messages: 3, SentAt: now.Add(-time.Minute), TypeForbidsRecall: true},
		{GroupID: goneGroup, Messages: 2, SentAt: now.Add(-time.Hour)},
	} {
		if err := sim.CreateGroup(spec); err != nil {
			return err
		}
	}
	for range 2 {
		sim.PostGroupMessage(newsGroup, newsTopic, now.Add(-time.Minute))
	}
	if err := sim.DismissGroup(goneGroup); err != nil {
		return err
	}
	for _, b := range p.batches {
		for i, k := range b.kinds {
			var err error
			switch k {
			case groupAlready:
				err = sim.SetGroupMessage(b.group, b.topic, b.seqs[i], imsim.GroupMsgRecalled)
			case groupUnrecallable:
				err = sim.SetGroupMessage(b.group, b.topic, b.seqs[i], imsim.GroupMsgUnrecallable)
			}
			if err != nil {
				return fmt.Errorf("%w: prepare %s seq %d: %w", errPlan, b.group, b.seqs[i], err)
			}
		}
	}
	sim.ForceGroup(newsGroup, 10006, 1)
	return nil
}

// queue queues every seq of the plan through the producer library, one
// task per seq, then the first seq of each group again, and returns how
// many of those were answered "already queued".
func (p *groupPlan) queue(ctx context.Context, c *enqueue.Client) (int, error) {
	dups := 0
	for _, b := range p.batches {
		g := tasks.GroupRecall{GroupID: b.group, TopicID: b.topic, RequestedBy: "recallq demo", Reason: "demo"}
		if _, err := c.GroupRecalls(ctx, g, b.seqs); err != nil {
			return dups, fmt.Errorf("queue the group recalls of %s: %w", b.group, err)
		}
		g.MsgSeq = b.seqs[0]
		res, err := c.GroupRecall(ctx, g)
		if err != nil {
			return dups, err
		}
		if res.AlreadyQueued {
			dups++
		}
	}
	return dups, nil
}
