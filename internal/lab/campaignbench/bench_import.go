package campaignbench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/childproc"
	"github.com/recallq/recallq/tasks"
)

// Defaults of BenchImportOptions.
const (
	DefaultBenchRows     = 1_000_000
	DefaultBenchRawTasks = 50_000
)

// benchApp is the made-up app of the benchmarks.
const benchApp = 1400000000

// BenchImportOptions configures BenchImport.
type BenchImportOptions struct {
	// Rows in the generated CSV. Default DefaultBenchRows.
	Rows int
	// RawTasks queued by plain asynq.Client.Enqueue per goroutine count.
	// Default DefaultBenchRawTasks.
	RawTasks int
	// RawGoroutines: the goroutine counts of the raw run. Default 8, 16, 32.
	RawGoroutines []int
	// Exe is the recallq binary: the import runs as `Exe campaign start`,
	// a child process, so its peak RSS is its own. Required.
	Exe string
	// Out receives the figures; Progress the running commentary.
	Out, Progress io.Writer
}

// BenchImport measures `campaign start` on a generated CSV against plain
// asynq enqueues on the same redis-server (started here): rows per second,
// the importer's peak RSS, and Redis bytes per queued row or task.
func BenchImport(ctx context.Context, o BenchImportOptions) error {
	if o.Rows <= 0 {
		o.Rows = DefaultBenchRows
	}
	if o.RawTasks <= 0 {
		o.RawTasks = DefaultBenchRawTasks
	}
	if len(o.RawGoroutines) == 0 {
		o.RawGoroutines = []int{8, 16, 32}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Exe == "" {
		return errors.New("campaign: BenchImportOptions.Exe is not set")
	}
	srv, rdb, stop, err := launchRedis("recallq-bench-import-")
	if err != nil {
		return err
	}
	defer stop()
	version, _ := rdb.Info(ctx, "server").Result()

	file := filepath.Join(srv.Dir(), "bench.csv")
	fmt.Fprintf(o.Progress, "generating %s rows in %s\n", thousands(int64(o.Rows)), file)
	size, err := writeBenchCSV(file, o.Rows)
	if err != nil {
		return err
	}

	fmt.Fprintf(o.Out, "recallq campaign bench-import: %s rows (%.1f MB of CSV); redis-server %s on loopback; %d CPUs, GOMAXPROCS %d\n\n",
		thousands(int64(o.Rows)), float64(size)/1e6, infoField(version, "redis_version"), runtime.NumCPU(), runtime.GOMAXPROCS(0))

	fmt.Fprintf(o.Out, "plain asynq.Client.Enqueue of %s tasks (tasks.NewTask, bulk queue, distinct task IDs):\n", thousands(int64(o.RawTasks)))
	fmt.Fprintf(o.Out, "  %-11s %12s %18s\n", "goroutines", "tasks/s", "Redis bytes/task")
	bestRaw := 0.0
	for _, g := range o.RawGoroutines {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			return err
		}
		fmt.Fprintf(o.Progress, "raw asynq enqueue from %d goroutines\n", g)
		rate, per, err := rawEnqueue(ctx, srv.Addr, rdb, o.RawTasks, g)
		if err != nil {
			return err
		}
		bestRaw = max(bestRaw, rate)
		fmt.Fprintf(o.Out, "  %-11d %12.0f %18.0f\n", g, rate, per)
	}

	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Progress, "importing with: %s campaign start --name bench %s\n", o.Exe, file)
	cmd := exec.CommandContext(ctx, o.Exe, "campaign", "start", "--name", "bench", file)
	// childproc.Env: the import reads this run's own redis-server, not the
	// Redis of the shell's REDIS_* settings (a REDIS_CA_FILE there would
	// make it refuse the server's redis:// URL).
	cmd.Env = childproc.Env("REDIS_URL="+srv.URL, fmt.Sprintf("TIM_SDKAPPID=%d", benchApp))
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, o.Progress
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the import: %w", err)
	}
	stopRSS := peakRSS(cmd.Process.Pid)
	err = cmd.Wait()
	elapsed := time.Since(start)
	rss := stopRSS()
	if err != nil {
		return fmt.Errorf("the import failed: %w\n%s", err, stdout.String())
	}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	n, err := backlogLen(ctx, rdb, srv.Addr, "bench")
	if err != nil {
		return err
	}
	if n != int64(o.Rows) {
		return fmt.Errorf("the backlog holds %d rows, want %d", n, o.Rows)
	}
	rate := float64(o.Rows) / elapsed.Seconds()
	fmt.Fprintf(o.Out, "\ncampaign start (a child process, wall time including its start), %s rows:\n", thousands(int64(o.Rows)))
	fmt.Fprintf(o.Out, "  %-26s %12.0f   (%.1f x the best raw asynq rate; target >= 0.8)\n", "rows/s", rate, rate/bestRaw)
	fmt.Fprintf(o.Out, "  %-26s %12s\n", "time", elapsed.Round(time.Millisecond))
	fmt.Fprintf(o.Out, "  %-26s %9.1f MB   (target < 64 MB; the child's VmHWM, read from /proc while it runs)\n", "importer peak RSS", float64(rss)/(1<<20))
	fmt.Fprintf(o.Out, "  %-26s %12.1f   (Redis used_memory delta / rows)\n", "Redis bytes per row", float64(after-before)/float64(o.Rows))
	fmt.Fprintf(o.Out, "  its own report: %s", lastLines(stdout.String(), 2))
	return nil
}

func infoField(info, field string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n  ") + "\n"
}

// benchRow is the i-th generated message, shaped like Tencent's.
func benchRow(i int) benchMsg {
	return benchMsg{
		from:   fmt.Sprintf("user%07d", i%500_000),
		to:     fmt.Sprintf("peer%07d", (i*7919)%1_000_000),
		msgKey: fmt.Sprintf("%d_%d_%d", 10000+i, 100000+(i*104729)%900000, 1700000000+i/100),
	}
}

func writeBenchCSV(path string, rows int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "From_Account,To_Account,MsgKey")
	for i := range rows {
		r := benchRow(i)
		fmt.Fprintf(w, "%s,%s,%s\n", r.from, r.to, r.msgKey)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// rawEnqueue queues n distinct tasks with plain asynq.Client.Enqueue from
// g goroutines and returns tasks/s and Redis bytes per task.
func rawEnqueue(ctx context.Context, addr string, rdb redis.UniversalClient, n, g int) (float64, float64, error) {
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return 0, 0, err
	}
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: addr, PoolSize: g})
	defer c.Close()
	ts := make([]*asynq.Task, n)
	for i := range ts {
		r := benchRow(i)
		t, err := tasks.NewTask(tasks.Recall{SDKAppID: benchApp, FromAccount: r.from, ToAccount: r.to, MsgKey: r.msgKey, Campaign: "raw"},
			tasks.Options{Queue: tasks.QueueBulk})
		if err != nil {
			return 0, 0, err
		}
		ts[i] = t
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, g)
	start := time.Now()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if _, err := c.EnqueueContext(ctx, ts[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return 0, 0, err
	}
	return float64(n) / elapsed.Seconds(), float64(after-before) / float64(n), nil
}

// benchMsg is one generated recall.
type benchMsg struct{ from, to, msgKey string }

// backlogLen is how many rows of campaign name wait in its backlog, read
// through the campaign package's own Status.
func backlogLen(ctx context.Context, rdb redis.UniversalClient, addr, name string) (int64, error) {
	m, err := campaign.NewManager(campaign.ManagerConfig{Redis: rdb, Queue: asynq.RedisClientOpt{Addr: addr}})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	st, err := m.Status(ctx, name)
	if err != nil {
		return 0, err
	}
	return st.Backlog, nil
}
