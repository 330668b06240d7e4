//go:build linux

package campaignbench

import (
	"bytes"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// peakRSS follows a running child's peak resident set (VmHWM in
// /proc/PID/status, in bytes) until stop is called, which returns the last
// value read. The child's own rusage is no good here: Linux carries the
// parent's high-water mark into a child that os/exec starts with vfork.
func peakRSS(pid int) (stop func() int64) {
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		path := "/proc/" + strconv.Itoa(pid) + "/status"
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if b, err := os.ReadFile(path); err == nil {
				if v := vmHWM(b); v > peak.Load() {
					peak.Store(v)
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

func vmHWM(status []byte) int64 {
	i := bytes.Index(status, []byte("VmHWM:"))
	if i < 0 {
		return 0
	}
	line := status[i+len("VmHWM:"):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line)
	if len(f) == 0 {
		return 0
	}
	kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return kb * 1024
}
