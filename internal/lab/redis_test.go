package lab

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/bench"
	"github.com/recallq/recallq/internal/cli"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/lab/groupbench"
	"github.com/recallq/recallq/internal/logtest"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

// TestWorkerCommandsReachATLSRedis: the lab's worker processes read the
// Redis settings of the environment as the product's commands do, so
// `rediss://` with REDIS_CA_FILE (and a client certificate, which
// redis-server asks for by default) serves their queues. Each command is
// run as recallq-lab runs it, against a redis-server that speaks TLS only
// with a private CA, and must drain the tasks queued there.
func TestWorkerCommandsReachATLSRedis(t *testing.T) {
	const app, secret = 1400000000, "lab-tls-secret-key-0123456789abcdef0123456789abcdef"
	s := redistest.StartTLS(t)
	t.Setenv(redisconn.EnvCAFile, s.Certs.CAFile)
	t.Setenv(redisconn.EnvCertFile, s.Certs.ClientCertFile)
	t.Setenv(redisconn.EnvKeyFile, s.Certs.ClientKeyFile)
	t.Setenv("TIM_SDKAPPID", strconv.Itoa(app))
	t.Setenv("TIM_SECRET_KEY", secret)
	sim, err := imsim.New(imsim.Config{SDKAppID: app, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	defer hs.Close()
	// The test's own connection: the server's client configuration, not
	// the code under test.
	opt := asynq.RedisClientOpt{Addr: s.Addr, TLSConfig: s.TLS.Clone()}
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()

	for _, tc := range []struct {
		command string
		args    []string
		queue   func(t *testing.T) []*asynq.Task
	}{
		{
			command: bench.WorkerCommand,
			args:    []string{"--report", filepath.Join(t.TempDir(), "report.json")},
			queue: func(t *testing.T) []*asynq.Task {
				var out []*asynq.Task
				for i := range 3 {
					m, err := sim.Send(context.Background(), "spammer", "victim"+strconv.Itoa(i), time.Now())
					if err != nil {
						t.Fatal(err)
					}
					task, err := tasks.NewTask(tasks.Recall{SDKAppID: app, FromAccount: m.From, ToAccount: m.To, MsgKey: m.MsgKey}, tasks.Options{})
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, task)
				}
				return out
			},
		},
		{
			command: groupbench.WorkerCommand,
			queue: func(t *testing.T) []*asynq.Task {
				if err := sim.CreateGroup(imsim.GroupSpec{GroupID: "@TGS#lab", Messages: 3}); err != nil {
					t.Fatal(err)
				}
				var out []*asynq.Task
				for seq := range uint64(3) {
					task, err := tasks.NewGroupTask(tasks.GroupRecall{SDKAppID: app, GroupID: "@TGS#lab", MsgSeq: seq + 1}, tasks.Options{})
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, task)
				}
				return out
			},
		},
	} {
		t.Run(tc.command, func(t *testing.T) {
			for _, task := range tc.queue(t) {
				if _, err := client.Enqueue(task); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out logtest.Buffer // the worker writes while the test reads
			done := make(chan int, 1)
			args := append([]string{tc.command, "--redis-url", s.URL, "--endpoint", hs.URL}, tc.args...)
			go func() { done <- cli.Main(ctx, args, &out, &out, Extend) }()

			q := tasks.AppQueue(tasks.QueueUrgent, app)
			deadline := time.Now().Add(20 * time.Second)
			for {
				info, err := insp.GetQueueInfo(q)
				if err == nil && info.Pending+info.Active+info.Scheduled+info.Retry == 0 {
					if info.Completed+info.Processed == 0 {
						t.Fatalf("queue %s emptied without processing: %+v", q, info)
					}
					break
				}
				select {
				case code := <-done:
					t.Fatalf("%s exited %d before serving its queue:\n%s", tc.command, code, tail(out.String()))
				case <-time.After(50 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s did not serve the queue on the TLS Redis in 20 s (%+v, %v):\n%s", tc.command, info, err, tail(out.String()))
				}
			}
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("%s exited %d:\n%s", tc.command, code, tail(out.String()))
			}
		})
	}
}

// tail is the end of a worker's log, enough to show why it failed.
func tail(log string) string {
	const keep = 2000
	if len(log) <= keep {
		return log
	}
	return "..." + log[len(log)-keep:]
}
