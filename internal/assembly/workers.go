package assembly

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/worker"
)

// Workers are the workers of several apps in one process (an apps file):
// each its own asynq server on its app's queues, its own limiter buckets
// and its own campaign feeder, with one metrics server for them all. Each
// has its Config.Name, which must differ. Call ServeMetrics (optional),
// then Run, then Close.
type Workers []*Worker

// ServeMetrics serves every worker's series on addr (one /metrics, each
// recallq series labelled with its app; the Go runtime, process and asynq
// queue series once), /healthz and /readyz, until the returned stop is
// called (after Run has returned). /readyz answers 200 once every worker
// has started, 503 naming the app and the API while one's
// configuration-error circuit of an API is open on a fault of this
// process's own (with the fix), and 503 from the moment ctx ends (shutdown
// began); a circuit open on the app's console setting (worker.Outcome's
// Console: group recall disabled, the plan expired), which every process
// meets and none cures, leaves it 200, naming the circuit and the fix. It
// pings the first worker's Redis (the worker command gives every app the
// same). Call it before Run. It returns metrics.Listen's error when addr
// cannot be listened on.
func (ws Workers) ServeMetrics(ctx context.Context, addr string) (srv *metrics.Server, stop func(), err error) {
	if len(ws) == 0 {
		return nil, nil, errors.New("assembly: no worker to serve the metrics of")
	}
	ms := make([]*metrics.Metrics, len(ws))
	for i, w := range ws {
		ms[i] = w.Metrics
	}
	first := ws[0]
	srv, err = metrics.Listen(metrics.ServerConfig{Addr: addr, Metrics: ms, Ping: first.ping, Logger: first.log})
	if err != nil {
		return nil, nil, err
	}
	for _, w := range ws {
		w.cfg.Handler.OnBreaker = chainBreaker(w.cfg.Handler.OnBreaker, func(api string, open bool, o worker.Outcome) {
			switch {
			case !open:
				srv.Unready(w.name, api, "")
			case o.Console:
				srv.Degraded(w.name, api, fmt.Sprintf("circuit open after configuration error %d (%s): this worker stopped calling this API; "+
					"the app's own setting, which every worker meets and no worker's settings cure: ready all the same; fix: %s", o.Code, o.Meaning, o.Fix))
			default:
				srv.Unready(w.name, api, fmt.Sprintf("circuit open after configuration error %d (%s): this worker stopped calling this API; fix: %s", o.Code, o.Meaning, o.Fix))
			}
		})
		started := w.cfg.Started
		w.cfg.Started = func() {
			if started != nil {
				started()
			}
			srv.Started(w.name)
		}
	}
	unwatch := context.AfterFunc(ctx, srv.Stopping)
	return srv, func() {
		unwatch()
		sctx, cancel := context.WithTimeout(context.Background(), MetricsShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			first.log.Warn("metrics server did not stop cleanly", "err", err)
		}
	}, nil
}

// Run runs every worker (Worker.Run) until ctx ends, or until one of them
// stops by itself (it could not start): then the others stop too, each
// gracefully. It returns once all have stopped, with the errors of those
// that failed, each naming its app.
func (ws Workers) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel() // one stopped: stop the rest
			if err := w.Run(ctx); err != nil {
				errs[i] = fmt.Errorf("app %s: %w", w.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes every worker (Worker.Close).
func (ws Workers) Close() error {
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.Close())
	}
	return errors.Join(errs...)
}
