package simproc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/recallq/recallq/internal/childproc"
	"github.com/recallq/recallq/internal/imsim"
)

// TestAnotherSimulatorOnThePortIsNotTakenForOurs: a simulator that lost
// its port to one started first (by another suite) exits, and the winner
// answers /sim/stats in its place; the lab would then count calls that are
// not its own and keep a secret the winner never checked. waitReady must
// refuse the answer, so that Start tries another port.
func TestAnotherSimulatorOnThePortIsNotTakenForOurs(t *testing.T) {
	other, err := imsim.New(imsim.Config{SDKAppID: SDKAppID, SecretKey: NewSecret()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(other)
	defer srv.Close()

	var procs childproc.Group
	defer procs.KillAll()
	ours, err := procs.Start(t.TempDir(), "ours", "sleep", []string{"30"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sim{Proc: ours, Addr: strings.TrimPrefix(srv.URL, "http://"), URL: srv.URL, http: http.DefaultClient, attempts: 1}
	err = s.waitReady(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the port was taken") {
		t.Fatalf("waitReady with another process answering = %v, want it refused (the port was taken)", err)
	}
}
