package cli

import (
	"strings"
	"testing"
)

func TestCaptureRefusesToRunOpen(t *testing.T) {
	campaignEnv(t)
	t.Setenv("CAPTURE_TOKEN", "")
	t.Setenv("CAPTURE_PATH_SECRET", "")
	t.Setenv("CAPTURE_ALLOW_IPS", "")
	code, _, errOut := run(t, "capture", "--addr", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(errOut, "no authentication") {
		t.Fatalf("exit %d, %q; want a usage error naming the missing authentication", code, errOut)
	}
	code, _, errOut = run(t, "capture", "--addr", "127.0.0.1:0", "--allow-ips", "10.0.0.0/8,not-an-ip")
	if code != exitUsage || !strings.Contains(errOut, `"not-an-ip" is not an address`) {
		t.Fatalf("exit %d, %q; want the bad address named", code, errOut)
	}
}
