package worker

import (
	"slices"
	"testing"
)

// A task asynq took from Redis just before the shutdown began reaches the
// handler after it: asynq moved it to active, so if Redis then stops
// answering it stays there like the tasks that were running. The shutdown's
// report must name it too (CI saw it missing: the test's task was active
// in Redis 7 ms before the stop, its handler not yet called).
func TestATaskStartedAfterTheStopIsReported(t *testing.T) {
	running := &inFlight{ids: map[string]bool{}}
	running.enter("done before")
	running.leave("done before")
	running.enter("before")
	running.stop()
	running.enter("after")
	running.leave("before")
	running.leave("after")
	got := running.unsure()
	slices.Sort(got)
	if want := []string{"after", "before"}; !slices.Equal(got, want) {
		t.Fatalf("tasks a shutdown that Redis did not let finish reports: %q, want %q", got, want)
	}
}
