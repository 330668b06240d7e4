package childproc_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/childproc"
)

func TestStopAllStopsEveryChild(t *testing.T) {
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	var g childproc.Group
	t.Cleanup(g.KillAll)
	var cs []*childproc.Child
	for _, name := range []string{"a", "b"} {
		c, err := g.Start(t.TempDir(), name, sleepBin, []string{"60"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	cs = append(cs, nil)
	errs := childproc.StopAll(cs, 10*time.Second)
	if len(errs) != len(cs) {
		t.Fatalf("%d errors for %d children", len(errs), len(cs))
	}
	for i, c := range cs[:2] {
		if !c.Exited() {
			t.Errorf("%s still runs after StopAll", c.Name())
		}
		// SIGTERM ends sleep with that signal: its exit status is the error.
		if errs[i] == nil {
			t.Errorf("%s: no error, want its exit by SIGTERM", c.Name())
		}
	}
	if errs[2] != nil {
		t.Errorf("nil child: error %v, want none", errs[2])
	}
}
