package worker_test

import (
	"strings"
	"testing"

	"github.com/hibiken/asynq"
)

// A dead letter is logged once, by the handler, with its reason; asynq's
// own "Retry exhausted" line, which says neither why nor that it was meant,
// is not a warning.
func TestDeadLetterIsLoggedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	r := msg(7)
	e.sim.ForgetMessage(r.FromAccount, r.ToAccount, r.MsgKey)
	id := e.recall(r)
	e.waitTask(id, "archived", inState(asynq.TaskStateArchived))
	e.stop()
	var warns []string
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, id) || strings.Contains(line, `"level":"WARN","msg":"Retry exhausted`) {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "dead-lettered") {
		t.Fatalf("warnings about the dead letter: %d, want 1 (the handler's):\n%s", len(warns), strings.Join(warns, "\n"))
	}
}
