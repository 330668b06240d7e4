package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/tasks"
)

// processGroup recalls one message of a group: its seq joins a batch of
// the same group's waiting seqs (batch.go), the batch makes one call, and
// the task is settled by its own seq's result in the one outcome table.
func (h *Handler) processGroup(ctx context.Context, t *asynq.Task) error {
	g, err := tasks.DecodeGroupRecall(t.Payload())
	if err != nil {
		return fmt.Errorf("bad payload: %w: %w", err, asynq.SkipRetry)
	}
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	log := h.log.With("task_id", id, "queue", queue, "group_id", g.GroupID, "msg_seq", g.MsgSeq)
	if g.TopicID != "" {
		log = log.With("topic_id", g.TopicID)
	}
	if g.SDKAppID != h.cfg.SDKAppID {
		return h.otherApp(ctx, log, t, g.SDKAppID)
	}
	if h.cfg.GroupLimiter == nil || h.cfg.GroupAPI == nil {
		return h.configErrorAsIs(ctx, log, Outcome{Class: Configuration,
			Meaning: "this worker has no group_msg_recall limiter or client",
			Fix:     "run workers built by recallq's worker command (internal/assembly), which serve group recalls"}.inAppsFile(h.cfg.AppsFileApp),
			uncountedConfigRetryDelay)
	}
	ok, probe := h.group.breaker.admit(ctx, h.cfg.Stopping)
	if !ok {
		return &retryLater{reason: "not called: this worker's configuration-error circuit of group_msg_recall is open; the task goes to another worker"}
	}
	defer h.group.breaker.release(probe)

	k := batchKey{group: g.GroupID, topic: g.TopicID, urgent: laneOf(queue) == LaneUrgent}
	sigRefreshed := false
	var connCuts limiter.ConnCuts
	for rateLimited := 0; ; {
		m := &member{seq: g.MsgSeq, probe: probe, sigRefreshed: sigRefreshed, connCuts: connCuts, joined: h.cfg.Now(), out: make(chan batchAnswer, 1)}
		b := h.batches.join(k, m)
		var a batchAnswer
		select {
		case a = <-m.out:
		case <-ctx.Done():
			if h.batches.leave(b, m) {
				return goBack("not called", context.Cause(ctx))
			}
			// The call is out: whatever it did, a later run of the task
			// reads it (a recalled seq answers done).
			return goBack("the group call's answer did not come before the task ended", context.Cause(ctx))
		}
		connCuts.Ended(a.err)
		if !a.called {
			if errors.Is(a.err, limiter.ErrLate) {
				continue // the batch's slot was missed before anything was sent
			}
			return goBack("not called", a.err)
		}
		ev := Event{TaskID: id, Queue: queue, Recall: GroupRecallAsRecall(g), Group: &g, CallSeqs: a.seqs,
			Code: NoAnswer, Class: Transient, Waited: a.started.Sub(m.joined), Latency: a.done.Sub(a.permit.Slot)}
		var err error
		again := false
		if a.err != nil {
			ev.Err = a.err
			if o, bad := ClassifyTransport(a.err); bad {
				ev.Class = Configuration
				err = h.configError(ctx, log, o) // the batch told the breaker once
			} else {
				err = h.transient(ctx, log, &h.group, Classify(NoAnswer), a.err)
			}
		} else {
			ev.Code, ev.Class = a.o.Code, a.o.Class
			// What concerns the app the batch did once for its call.
			err, again = h.settle(ctx, log, &h.group, a.o, &rateLimited, &sigRefreshed)
		}
		ev.Fate = fateOf(ev.Code, err, again)
		h.record(ev)
		if !again {
			if err == nil {
				h.writeGroupResult(ctx, log, t, a)
			}
			return err
		}
	}
}

// GroupRecallAsRecall is how a group recall fills Event.Recall: the app,
// the notes and the campaign as they are; From_Account the GroupId,
// To_Account the TopicId (empty without one) and MsgKey the MsgSeq in
// decimal, which is what a campaign's audit of the task shows.
func GroupRecallAsRecall(g tasks.GroupRecall) tasks.Recall {
	return tasks.Recall{SDKAppID: g.SDKAppID, FromAccount: g.GroupID, ToAccount: g.TopicID,
		MsgKey: strconv.FormatUint(g.MsgSeq, 10), RequestedBy: g.RequestedBy, Reason: g.Reason, Campaign: g.Campaign}
}

// writeGroupResult stores a completed group task's Result, as
// writeResult does for a one-to-one task.
func (h *Handler) writeGroupResult(ctx context.Context, log *slog.Logger, t *asynq.Task, a batchAnswer) {
	w := t.ResultWriter()
	if w == nil {
		return
	}
	retried, _ := asynq.GetRetryCount(ctx)
	b, err := json.Marshal(Result{Code: a.o.Code, Meaning: a.o.Meaning, RequestID: a.resp.RequestID,
		Attempts: retried + 1, Time: h.cfg.Now().UTC(), CallSeqs: a.seqs})
	if err == nil {
		_, err = w.Write(b)
	}
	if err != nil {
		log.WarnContext(ctx, "could not store the task's result", "err", err)
	}
}
