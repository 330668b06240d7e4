package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/sleep"
)

// Bounds of the Redis steps.
const (
	// redisReadyTimeout bounds a start, including loading the append-only
	// file after a restart.
	redisReadyTimeout = time.Minute
	// redisExitTimeout bounds the wait for redis-server to exit after the
	// restart's signal (SIGTERM writes and syncs the AOF first); then it is
	// killed.
	redisExitTimeout = 30 * time.Second
)

// redisProc is the run's redis-server: one fixed port and directory, so a
// restart comes back where the workers expect it, with the data of its
// append-only file.
type redisProc struct {
	procs *children
	dir   string
	bin   string
	args  []string
	addr  string
	proc  *child
	gen   int // starts so far, names the log files
}

// redisArgs are the arguments of the suite's redis-server: loopback only,
// no RDB snapshots, the append-only file on with fsync policy fsync.
func redisArgs(port int, dir, fsync string) []string {
	return []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--dir", dir, "--save", "",
		"--appendonly", "yes", "--appendfsync", fsync,
	}
}

// startRedis starts a redis-server with its files in dir on a free loopback
// port, and waits until it answers. A port taken between the choice and
// the start is tried again with another.
func startRedis(ctx context.Context, procs *children, dir, fsync string) (*redisProc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found on PATH: install it (Debian: apt-get install redis-server)")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := redistest.FreePort()
		if err != nil {
			return nil, err
		}
		r := &redisProc{procs: procs, dir: dir, bin: bin, args: redisArgs(port, dir, fsync),
			addr: "127.0.0.1:" + strconv.Itoa(port)}
		if lastErr = r.launch(ctx); lastErr == nil {
			return r, nil
		}
		r.proc.Signal(syscall.SIGKILL)
		r.proc.Wait(5 * time.Second)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("start redis-server: %w", lastErr)
}

// launch starts redis-server with r's arguments and waits until it answers.
func (r *redisProc) launch(ctx context.Context) error {
	r.gen++
	c, err := r.procs.Start(r.dir, fmt.Sprintf("redis-server-%d", r.gen), r.bin, r.args, nil)
	if err != nil {
		return err
	}
	r.proc = c
	return r.waitReady(ctx)
}

// waitReady polls INFO until it answers (not LOADING), the process exits,
// or redisReadyTimeout passes, and checks that the answer comes from r's
// own process, not from another server on the port.
func (r *redisProc) waitReady(ctx context.Context) error {
	cl := redis.NewClient(&redis.Options{Addr: r.addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1})
	defer cl.Close()
	deadline := time.Now().Add(redisReadyTimeout)
	var err error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = redistest.ServedBy(pctx, cl, r.proc.PID())
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, redistest.ErrPortTaken) {
			// Ours lost the port to a server that started first (another
			// suite's, say): the caller tries another port.
			return fmt.Errorf("%s: %w", r.addr, err)
		}
		if r.proc.Exited() {
			return fmt.Errorf("redis-server exited (%v); its log ends:\n%s", r.proc.Err(), r.proc.Tail(5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server at %s did not answer within %s: %w", r.addr, redisReadyTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// restartInfo is what a restart did.
type restartInfo struct {
	signal  string
	exited  time.Duration // from the signal to the process's exit
	down    time.Duration // from the signal until Redis answered again
	keys    int64         // keys after the restart (loaded from the AOF)
	before  int64         // keys just before the signal
	aofSize int64         // bytes of the append-only files when it came back
}

// restart stops redis-server with sig, keeps it down for down, then starts
// it again on the same port with the same directory, so it loads its
// append-only file, and waits until it answers.
func (r *redisProc) restart(ctx context.Context, sig syscall.Signal, down time.Duration) (restartInfo, error) {
	info := restartInfo{signal: signalName(sig)}
	cl := redis.NewClient(&redis.Options{Addr: r.addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	info.before, _ = cl.DBSize(kctx).Result()
	cancel()
	cl.Close()

	t0 := time.Now()
	r.proc.Signal(sig)
	if !r.proc.Wait(redisExitTimeout) {
		r.proc.Signal(syscall.SIGKILL)
		if !r.proc.Wait(5 * time.Second) {
			return info, fmt.Errorf("redis-server (pid %d) did not exit after %s", r.proc.PID(), info.signal)
		}
	}
	info.exited = time.Since(t0)
	if err := sleep.For(ctx, down-info.exited); err != nil {
		return info, err
	}
	if err := r.launch(ctx); err != nil {
		return info, fmt.Errorf("restart redis-server on %s: %w", r.addr, err)
	}
	info.down = time.Since(t0)
	cl = redis.NewClient(&redis.Options{Addr: r.addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	defer cl.Close()
	kctx, cancel = context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info.keys, _ = cl.DBSize(kctx).Result()
	info.aofSize = dirSize(r.dir, "appendonly")
	return info, nil
}

// stop kills redis-server; the run's data is not needed any more.
func (r *redisProc) stop() {
	if r.proc != nil {
		r.proc.Signal(syscall.SIGKILL)
		r.proc.Wait(5 * time.Second)
	}
}

// dirSize sums the sizes of the files under dir whose path contains part.
func dirSize(dir, part string) int64 {
	var n int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	for _, e := range entries {
		p := dir + "/" + e.Name()
		if e.IsDir() {
			n += dirSize(p, "")
			continue
		}
		if strings.Contains(p, part) {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// signalName is "SIGTERM" or "SIGKILL".
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	}
	return sig.String()
}
