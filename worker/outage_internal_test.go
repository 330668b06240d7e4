package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
)

// TestOutageIsNoAnswerOrGoodAnswersStopping pins what counts as an outage
// when a task's retries are spent: no Tencent answer at all, or answered
// failures after this worker's good answers from the API stopped for
// DefaultOutageQuiet.
func TestOutageIsNoAnswerOrGoodAnswersStopping(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	h := &Handler{cfg: HandlerConfig{Now: func() time.Time { return now }}}
	answered := Classify(91000)
	if !h.outage(&h.withdraw, Outcome{Code: -1, Class: Transient}) {
		t.Error("no answer from Tencent: outage = false, want true")
	}
	if h.outage(&h.withdraw, answered) {
		t.Error("91000 on a worker that never had a good answer: outage = true, want false (the task's failure)")
	}
	h.withdraw.lastGood.Store(now.Add(-DefaultOutageQuiet + time.Second).UnixNano())
	if h.outage(&h.withdraw, answered) {
		t.Error("91000 while good answers still come: outage = true, want false")
	}
	h.withdraw.lastGood.Store(now.Add(-DefaultOutageQuiet - time.Second).UnixNano())
	if !h.outage(&h.withdraw, answered) {
		t.Errorf("91000 after %s without a good answer: outage = false, want true", DefaultOutageQuiet)
	}
}

// codeAPI answers each API with the code it is set to (0: success).
type codeAPI struct{ withdraw, group atomic.Int64 }

func codeAnswer(code int) Response {
	if code == 0 {
		return Response{ActionStatus: "OK"}
	}
	return Response{ActionStatus: "FAIL", ErrorCode: code}
}

func (a *codeAPI) Withdraw(context.Context, string, string, string) (Response, error) {
	return codeAnswer(int(a.withdraw.Load())), nil
}

func (a *codeAPI) GroupRecall(_ context.Context, _ string, seqs []uint64, _ string) (tim.GroupRecallResponse, error) {
	code := int(a.group.Load())
	r := tim.GroupRecallResponse{Response: codeAnswer(code)}
	for _, s := range seqs {
		r.Seqs = append(r.Seqs, tim.SeqResult{MsgSeq: s, Answered: code == 0})
	}
	return r, nil
}

// freeLimiter grants every slot at once.
type freeLimiter struct{ now func() time.Time }

func (l freeLimiter) Wait(context.Context, Lane) (Permit, error)  { return Permit{Slot: l.now()}, nil }
func (freeLimiter) Observe(Permit, time.Time)                     {}
func (freeLimiter) SlowDown(context.Context, time.Duration) error { return nil }

// TestOutageIsPerAPI: an API that has answered only transient errors for
// two minutes is down, even while the other API answers fine: a task of
// the failing API on its last attempt is kept, not archived. The other
// API's good answers say nothing of this one's.
func TestOutageIsPerAPI(t *testing.T) {
	t.Parallel()
	const app = 1400000000
	for _, tc := range []struct {
		down string
		code int
	}{
		{tim.APIWithdraw, 91000},
		{tim.APIGroupRecall, 10002},
	} {
		t.Run(tc.down+" answering "+strconv.Itoa(tc.code), func(t *testing.T) {
			t.Parallel()
			var clock atomic.Int64
			t0 := time.Unix(1_000_000, 0)
			clock.Store(t0.UnixNano())
			now := func() time.Time { return time.Unix(0, clock.Load()) }
			api := &codeAPI{}
			h, err := NewHandler(HandlerConfig{SDKAppID: app, API: api, Limiter: freeLimiter{now}, GroupLimiter: freeLimiter{now},
				GroupLinger: -1, GroupUrgentLinger: -1, Now: now, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			// run processes a task of api on its last attempt (asynq's
			// context absent: no retry left).
			run := func(api string, n int) error {
				var task *asynq.Task
				if api == tim.APIGroupRecall {
					task, err = tasks.NewGroupTask(tasks.GroupRecall{SDKAppID: app, GroupID: "g", MsgSeq: uint64(n)}, tasks.Options{})
				} else {
					task, err = tasks.NewTask(tasks.Recall{SDKAppID: app, FromAccount: "a", ToAccount: "b", MsgKey: fmt.Sprintf("%d_1_1", n)}, tasks.Options{})
				}
				if err != nil {
					t.Fatal(err)
				}
				return h.ProcessTask(context.Background(), task)
			}
			up := tim.APIGroupRecall
			if tc.down == tim.APIGroupRecall {
				up = tim.APIWithdraw
			}
			for _, a := range []string{tim.APIWithdraw, tim.APIGroupRecall} {
				if err := run(a, 1); err != nil {
					t.Fatalf("%s at first: %v", a, err)
				}
			}
			if tc.down == tim.APIWithdraw {
				api.withdraw.Store(int64(tc.code))
			} else {
				api.group.Store(int64(tc.code))
			}
			clock.Store(t0.Add(2 * time.Minute).UnixNano())
			if err := run(up, 2); err != nil {
				t.Fatalf("%s meanwhile: %v", up, err)
			}
			if err := run(tc.down, 3); errors.Is(err, asynq.SkipRetry) || IsFailure(err) {
				t.Errorf("last attempt two minutes into %s answering only %d, while %s answers fine: %v; want kept (an outage of %s)",
					tc.down, tc.code, up, err, tc.down)
			}
		})
	}
}
