//go:build unix

package bench

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"
)

// Stalls of the stall run: every stallEvery one worker process, in turn,
// is stopped for a time drawn uniformly from [stallMin, stallMax], as a GC
// pause, CPU throttling by its cgroup or a VM steal stops a pod.
const (
	stallEvery = 1500 * time.Millisecond
	stallMin   = 300 * time.Millisecond
	stallMax   = 700 * time.Millisecond
)

// stallInjector stops and continues the workers until stop.
type stallInjector struct {
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	stalls int
	total  time.Duration
	errs   int
}

func startStalls(workers []*child) *stallInjector {
	s := &stallInjector{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(stallEvery)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.done:
				return
			case <-t.C:
			}
			w := workers[i%len(workers)]
			d := stallMin + rand.N(stallMax-stallMin+1)
			if err := syscall.Kill(w.PID(), syscall.SIGSTOP); err != nil {
				s.mu.Lock()
				s.errs++
				s.mu.Unlock()
				continue
			}
			select {
			case <-time.After(d):
			case <-s.done:
			}
			_ = syscall.Kill(w.PID(), syscall.SIGCONT) // always: a stopped worker must not be left behind
			s.mu.Lock()
			s.stalls++
			s.total += d
			s.mu.Unlock()
		}
	}()
	return s
}

// stop ends the stalls (continuing a stopped worker) and describes them.
func (s *stallInjector) stop() string {
	close(s.done)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("stalls: %d workers stopped for %s in all (%d signals failed)", s.stalls, s.total.Round(time.Millisecond), s.errs)
}
