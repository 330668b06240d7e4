//go:build !unix

package bench

import "time"

const stallEvery, stallMin, stallMax = 1500 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond

// stallInjector does nothing where processes cannot be stopped.
type stallInjector struct{}

func startStalls([]*child) *stallInjector { return &stallInjector{} }

func (*stallInjector) stop() string { return "stalls: not available on this system (no SIGSTOP)" }
