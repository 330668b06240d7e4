package bench

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/simproc"
)

// SimCommand is the recallq subcommand that runs the simulator.
const SimCommand = simproc.Command

// simProc is the simulator, running as a child process (package simproc).
type simProc struct {
	*simproc.Sim
	proc *child // Sim.Proc
	url  string // Sim.URL
}

// startSim starts "recallq imsim" on a free loopback port with the spread
// and fail rate, raises its priority, and waits until it answers.
func (b *bench) startSim(ctx context.Context, sp Spread) (*simProc, error) {
	args := slices.Concat(sp.simArgs(), []string{"--fail-rate", strconv.FormatFloat(b.o.FailRate, 'g', -1, 64), "--log-level", "warn"})
	if b.o.OutsideRate > 0 {
		// Reset, before every configuration, restarts it.
		args = append(args, "--outside-rate", strconv.FormatFloat(b.o.OutsideRate, 'g', -1, 64))
	}
	sim, err := simproc.Start(ctx, &b.procs, simproc.Config{
		Exe:    b.o.Exe,
		Args:   args,
		Env:    b.appEnv(),
		Dir:    b.dir,
		Name:   "imsim-" + strings.ReplaceAll(sp.String(), ":", "-"),
		Favour: true,
	})
	if err != nil {
		return nil, err
	}
	return &simProc{Sim: sim, proc: sim.Proc, url: sim.URL}, nil
}

// reset clears the simulator's store, faults and statistics.
func (s *simProc) reset(ctx context.Context) error { return s.Reset(ctx) }

// stats reads GET /sim/stats.
func (s *simProc) stats(ctx context.Context) (imsim.Stats, error) { return s.Stats(ctx) }

// stop stops the simulator gracefully.
func (s *simProc) stop() error { return s.Stop() }
