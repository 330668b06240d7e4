package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// Ctrl-C stops "campaign start -" while stdin is open but idle (a pipe
// whose writer is still thinking), instead of waiting for input.
func TestCampaignStartStdinStopsOnCancelWhileIdle(t *testing.T) {
	campaignEnv(t)
	pr, pw := io.Pipe() // nothing is ever written; the writer stays open
	defer pw.Close()
	var out, errb bytes.Buffer
	root := NewRoot(&out, &errb)
	root.SetIn(pr)
	root.SetArgs([]string{"campaign", "start", "--name", "idle", "-"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	time.Sleep(300 * time.Millisecond) // reading stdin by now
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Fatalf("err = %v, want it to say the import was interrupted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("campaign start - ignored the interrupt while stdin was idle")
	}
}
