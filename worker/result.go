package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/tim"
)

// Result is what a completed task keeps as its result in asynq (asynqmon
// shows it on the task's page, `asynq task inspect` prints it): small JSON
// saying how the recall ended.
type Result struct {
	// Code is Tencent's ErrorCode: 0 (recalled) or 20023 (already
	// recalled); for a group recall the seq's RetCode, 0 or 10030.
	Code int `json:"code"`
	// Meaning is the code's meaning from the outcome table.
	Meaning string `json:"meaning"`
	// RequestID is Tencent's RequestId, when the answer carried one.
	RequestID string `json:"request_id,omitempty"`
	// Attempts is which attempt of the task this was (1 + asynq's Retried).
	Attempts int `json:"attempts"`
	// Time is when the answer came.
	Time time.Time `json:"time"`
	// CallSeqs, for a group recall, is how many seqs the call carried.
	CallSeqs int `json:"call_seqs,omitempty"`
}

// writeResult stores the task's Result through asynq's ResultWriter. A
// failed write is logged and otherwise ignored: the recall is done, and
// the result is only for people to read.
func (h *Handler) writeResult(ctx context.Context, log *slog.Logger, t *asynq.Task, resp tim.Response) {
	w := t.ResultWriter()
	if w == nil { // a task built by hand, not handed over by asynq
		return
	}
	retried, _ := asynq.GetRetryCount(ctx)
	b, err := json.Marshal(Result{Code: resp.ErrorCode, Meaning: Classify(resp.ErrorCode).Meaning,
		RequestID: resp.RequestID, Attempts: retried + 1, Time: h.cfg.Now().UTC()})
	if err == nil {
		_, err = w.Write(b)
	}
	if err != nil {
		log.WarnContext(ctx, "could not store the task's result", "err", err)
	}
}
