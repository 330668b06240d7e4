package worker

import (
	"testing"
	"time"
)

// TestOutageIsNoAnswerOrGoodAnswersStopping pins what counts as an outage
// when a task's retries are spent: no Tencent answer at all, or answered
// failures after this worker's good answers stopped for DefaultOutageQuiet.
func TestOutageIsNoAnswerOrGoodAnswersStopping(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	h := &Handler{cfg: HandlerConfig{Now: func() time.Time { return now }}}
	answered := Classify(91000)
	if !h.outage(Outcome{Code: -1, Class: Transient}) {
		t.Error("no answer from Tencent: outage = false, want true")
	}
	if h.outage(answered) {
		t.Error("91000 on a worker that never had a good answer: outage = true, want false (the task's failure)")
	}
	h.lastGood.Store(now.Add(-DefaultOutageQuiet + time.Second).UnixNano())
	if h.outage(answered) {
		t.Error("91000 while good answers still come: outage = true, want false")
	}
	h.lastGood.Store(now.Add(-DefaultOutageQuiet - time.Second).UnixNano())
	if !h.outage(answered) {
		t.Errorf("91000 after %s without a good answer: outage = false, want true", DefaultOutageQuiet)
	}
}
