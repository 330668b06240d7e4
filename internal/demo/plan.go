package demo

import (
	"context"
	"fmt"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
)

// kind is what the demo arranges for one recall in the simulator.
type kind int

const (
	ordinary       kind = iota // recalled (some meet a 91000 on the way and are retried)
	already                    // recalled beforehand by "another tool": 20023
	missing                    // the message does not exist: 20022
	badKey                     // a MsgKey Tencent would not accept: 90054
	ghostSender                // the sender's account does not exist: 90008
	ghostRecipient             // the recipient's account does not exist: 90003
	rateLimited                // answered 60007 once: shared slow-down, then recalled
	sigExpired                 // answered 70001 once: UserSig regenerated, then recalled
	notAdmin                   // answered 90009 once: configuration error, retried late without using a retry
	unknownCode                // always answered 99999: a few retries, then dead-lettered
)

// mix is how many of every 100 recalls are of each kind; the rest are ordinary.
var mix = []struct {
	k    kind
	per  int
	dead bool
}{
	{already, 5, false}, {missing, 5, true}, {badKey, 4, true}, {ghostSender, 3, true},
	{ghostRecipient, 3, true}, {rateLimited, 2, false}, {sigExpired, 2, false},
	{notAdmin, 2, false}, {unknownCode, 1, true},
}

type plan struct {
	recalls []tasks.Recall
	kinds   []kind
}

func makePlan(n int) *plan {
	p := &plan{}
	for i := 0; i < n; i++ {
		k := ordinary
		slot := i % 100
		for _, m := range mix {
			if slot < m.per {
				k = m.k
				break
			}
			slot -= m.per
		}
		r := tasks.Recall{
			SDKAppID:    sdkAppID,
			FromAccount: fmt.Sprintf("user_%d", i%37),
			ToAccount:   fmt.Sprintf("user_%d", 100+i%41),
			MsgKey:      fmt.Sprintf("%d_%d_%d", 31906+i, 833502+i*7, 1572869830+i),
			RequestedBy: "recallq demo",
		}
		switch k {
		case badKey:
			r.MsgKey = fmt.Sprintf("not-a-msgkey-%d", i)
		case ghostSender:
			r.FromAccount = fmt.Sprintf("ghost_%d", i)
		case ghostRecipient:
			r.ToAccount = fmt.Sprintf("ghost_%d", i)
		}
		p.recalls = append(p.recalls, r)
		p.kinds = append(p.kinds, k)
	}
	return p
}

func (p *plan) size() int { return len(p.recalls) }

// wantDead is how many recalls the plan expects in the dead-letter set.
func (p *plan) wantDead() int {
	n := 0
	for _, k := range p.kinds {
		for _, m := range mix {
			if m.k == k && m.dead {
				n++
			}
		}
	}
	return n
}

// prepare sets the simulator up so each recall meets its kind's outcome.
func (p *plan) prepare(ctx context.Context, sim *imsim.Sim, api *tim.Client) error {
	for i, r := range p.recalls {
		switch p.kinds[i] {
		case already:
			resp, err := api.Withdraw(ctx, r.FromAccount, r.ToAccount, r.MsgKey)
			for err == nil && resp.ErrorCode == 91000 { // the simulator's injected faults
				resp, err = api.Withdraw(ctx, r.FromAccount, r.ToAccount, r.MsgKey)
			}
			if err != nil || resp.ErrorCode != 0 {
				return fmt.Errorf("recall %s beforehand: %v (code %d)", r.MsgKey, err, resp.ErrorCode)
			}
		case missing:
			sim.ForgetMessage(r.FromAccount, r.ToAccount, r.MsgKey)
		case ghostSender:
			sim.DropAccount(r.FromAccount)
		case ghostRecipient:
			sim.DropAccount(r.ToAccount)
		case rateLimited:
			sim.Force(r.MsgKey, 60007, 1)
		case sigExpired:
			sim.Force(r.MsgKey, 70001, 1)
		case notAdmin:
			sim.Force(r.MsgKey, 90009, 1)
		case unknownCode:
			sim.Force(r.MsgKey, 99999, 0)
		}
	}
	sim.ResetStats()
	return nil
}
