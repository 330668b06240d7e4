//go:build !linux

package campaignbench

// peakRSS is unknown off Linux.
func peakRSS(int) func() int64 { return func() int64 { return 0 } }
