package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/tasks"
)

// putBack decides from the note and asynq's state alone; several workers
// may run it at once.

// fixedLastAttempts is a lastAttempts on rdb whose clock stands at now.
func fixedLastAttempts(rdb *redis.Client, insp *asynq.Inspector, now time.Time) *lastAttempts {
	return &lastAttempts{rdb: rdb, insp: insp, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
}

// lastAttemptQ is the urgent queue of the app these tasks are for.
var lastAttemptQ = tasks.AppQueue(tasks.QueueUrgent, 1400000000)

func TestPutBackFollowsTheNotes(t *testing.T) {
	t.Parallel()
	c, insp, rdb := putBackEnv(t)
	now := time.Now()
	archived := func(n int) string { return archivedRecall(t, c, insp, n) }
	due, notDue, ownFault := archived(1), archived(2), archived(3)
	before, err := insp.GetTaskInfo(lastAttemptQ, notDue)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rdb.HSet(ctx, LastAttemptsKey,
		lastAttemptField(lastAttemptQ, due), noteKept+fmt.Sprint(now.Add(-time.Second).UnixMilli()),
		lastAttemptField(lastAttemptQ, notDue), noteKept+fmt.Sprint(now.Add(time.Minute).UnixMilli()),
		lastAttemptField(lastAttemptQ, ownFault), noteRunning, // archived with no lease or deadline error
		lastAttemptField(lastAttemptQ, "recall_gone"), noteRunning)

	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 3 { // three workers at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := fixedLastAttempts(rdb, insp, now).putBack(ctx)
			if err != nil {
				t.Errorf("putBack: %v", err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total < 1 {
		t.Fatalf("put back %d tasks, want the due one", total)
	}
	for id, want := range map[string]asynq.TaskState{due: asynq.TaskStatePending, notDue: asynq.TaskStateScheduled, ownFault: asynq.TaskStateArchived} {
		info, err := insp.GetTaskInfo(lastAttemptQ, id)
		if err != nil || info.State != want {
			t.Errorf("task %s: %v %v, want %v", id, info, err, want)
		}
	}
	notes, _ := rdb.HKeys(ctx, LastAttemptsKey).Result()
	if len(notes) != 1 || notes[0] != lastAttemptField(lastAttemptQ, notDue) {
		t.Errorf("notes left %v, want only the one not yet due", notes)
	}
	// The one not yet due left asynq's archive (capped: later archives
	// would delete it) for its scheduled set, as asynq v0.26 lays them
	// out: due at its whole second, Retried and error unchanged, and
	// asynq's own scripts find it there.
	info, err := insp.GetTaskInfo(lastAttemptQ, notDue)
	if err != nil {
		t.Fatal(err)
	}
	wantAt := time.Unix((now.Add(time.Minute).UnixMilli()+999)/1000, 0)
	if !info.NextProcessAt.Equal(wantAt) || info.Retried != before.Retried || info.LastErr != before.LastErr {
		t.Errorf("task not yet due: next process at %v, retried %d, error %q; want %v, %d, %q",
			info.NextProcessAt, info.Retried, info.LastErr, wantAt, before.Retried, before.LastErr)
	}
	if err := insp.RunTask(lastAttemptQ, notDue); err != nil {
		t.Errorf("asynq cannot run the task from its scheduled set: %v", err)
	}
	if !notOwnFault(asynq.ErrLeaseExpired.Error()) || !notOwnFault(context.DeadlineExceeded.Error()) || notOwnFault("tencent 20022: x: skip retry for the task") {
		t.Error("notOwnFault does not tell asynq's own errors from the task's")
	}
}

// A kept task that putBack moved out of the archive and that an operator
// then archives by hand (asynqmon, `asynq task archive`) is a dead letter:
// no pass puts it back, and its note is gone, so that a campaign's check
// of its tasks counts it dead-lettered.
func TestPutBackLeavesATaskArchivedByHand(t *testing.T) {
	t.Parallel()
	c, insp, rdb := putBackEnv(t)
	ctx := context.Background()
	now := time.Now()
	la := fixedLastAttempts(rdb, insp, now)
	id := archivedRecall(t, c, insp, 1)
	field := lastAttemptField(lastAttemptQ, id)
	rdb.HSet(ctx, LastAttemptsKey, field, noteKept+fmt.Sprint(now.Add(time.Minute).UnixMilli()))
	if _, err := la.putBack(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err := insp.GetTaskInfo(lastAttemptQ, id); err != nil || info.State != asynq.TaskStateScheduled {
		t.Fatalf("task: %v %v; want it moved to the scheduled set", stateOf(info), err)
	}
	if err := insp.ArchiveTask(lastAttemptQ, id); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{now, now.Add(2 * time.Minute)} { // before it is due, and after
		la.now = func() time.Time { return at }
		if n, err := la.putBack(ctx); err != nil || n != 0 {
			t.Fatalf("putBack: %d %v; want nothing put back", n, err)
		}
		if info, err := insp.GetTaskInfo(lastAttemptQ, id); err != nil || info.State != asynq.TaskStateArchived {
			t.Fatalf("task: %v %v; want it left archived", stateOf(info), err)
		}
	}
	if in, _ := rdb.HExists(ctx, LastAttemptsKey, field).Result(); in {
		t.Fatal("the task archived by hand is still noted as kept")
	}
}

// putBack decides from the notes it read when its pass began; a worker
// may note the task again before putBack forgets its note (the task's next
// attempt, once it is run again by hand or by putBack itself), and that
// note must stand: without it a kept task stays archived, a dead letter
// for a reason not its own (a campaign test saw a kept re-run stay
// archived), as does one whose worker dies in that attempt.
func TestPutBackKeepsANoteWrittenDuringItsPass(t *testing.T) {
	t.Parallel()
	kept := func(at time.Time) string { return noteKept + fmt.Sprint(at.UnixMilli()) }
	cases := []struct {
		name        string
		note, newer func(now time.Time) string // the note putBack reads, the one written meanwhile
	}{
		// Dead-lettered, run again by hand, and kept (asynq archives it):
		// putBack must not take it for the dead letter whose note it read.
		{"archived on its own account", func(now time.Time) string { return runningNote(now.Add(-time.Minute)) },
			func(now time.Time) string { return kept(now.Add(time.Minute)) }},
		// Put back, and its next attempt begun at once.
		{"put back when due", func(now time.Time) string { return kept(now.Add(-time.Second)) },
			func(now time.Time) string { return runningNote(now) }},
		// Archived on its own account after an attempt noted running, run
		// again by hand, and that attempt begun: the two running notes
		// must differ, or putBack forgets the new attempt's, and should
		// its worker die, asynq archives the task on its last attempt for
		// a reason not its own.
		{"run again and begun", func(now time.Time) string { return runningNote(now.Add(-time.Minute)) },
			func(now time.Time) string { return runningNote(now) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cl, insp, rdb := putBackEnv(t)
			ctx := context.Background()
			now := time.Now()
			id := archivedRecall(t, cl, insp, 1)
			field := lastAttemptField(lastAttemptQ, id)
			rdb.HSet(ctx, LastAttemptsKey, field, c.note(now))
			hooked := redis.NewClient(rdb.Options())
			defer hooked.Close()
			newer := c.newer(now)
			hooked.AddHook(&beforeWrite{fn: func() { rdb.HSet(ctx, LastAttemptsKey, field, newer) }})
			la := fixedLastAttempts(hooked, insp, now)
			if _, err := la.putBack(ctx); err != nil {
				t.Fatal(err)
			}
			if note, _ := rdb.HGet(ctx, LastAttemptsKey, field).Result(); note != newer {
				t.Fatalf("note %q; want %q, written during the pass", note, newer)
			}
		})
	}
}

// beforeWrite runs fn once, before the first command after putBack's read
// of the notes.
type beforeWrite struct {
	read atomic.Bool
	once sync.Once
	fn   func()
}

func (b *beforeWrite) DialHook(next redis.DialHook) redis.DialHook { return next }
func (b *beforeWrite) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (b *beforeWrite) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hgetall" {
			defer b.read.Store(true)
		} else if b.read.Load() {
			b.once.Do(b.fn)
		}
		return next(ctx, cmd)
	}
}

// TestOneBrokenNoteDoesNotHoldUpTheOthers: a task asynq left half archived
// (its record says archived, its archive set no longer holds it: asynq's
// archive script trims before it writes the record) cannot be run again;
// its error must not end the pass before the notes after it.
func TestOneBrokenNoteDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	c, insp, rdb := putBackEnv(t)
	ctx := context.Background()
	now := time.Now()
	la := fixedLastAttempts(rdb, insp, now)
	var ids []string
	for n := range 9 {
		id := archivedRecall(t, c, insp, n+1)
		rdb.HSet(ctx, LastAttemptsKey, lastAttemptField(lastAttemptQ, id), noteKept+fmt.Sprint(now.Add(-time.Second).UnixMilli()))
		ids = append(ids, id)
	}
	broken := ids[0]
	rdb.ZRem(ctx, "asynq:{"+lastAttemptQ+"}:archived", broken)

	n, err := la.putBack(ctx)
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("putBack: %v, want the broken task's error", err)
	}
	if n != len(ids)-1 {
		t.Errorf("put back %d tasks in one pass, want the %d others", n, len(ids)-1)
	}
}

// stateOf is the task's state, for a test's message.
func stateOf(info *asynq.TaskInfo) string {
	if info == nil {
		return "not found"
	}
	return info.State.String()
}

// archivedRecall queues recall n of the test app and archives it, as asynq
// archives a task on its last attempt; it returns the task's ID.
func archivedRecall(t *testing.T, c *asynq.Client, insp *asynq.Inspector, n int) string {
	t.Helper()
	r := tasks.Recall{SDKAppID: 1400000000, FromAccount: "a", ToAccount: "b", MsgKey: fmt.Sprintf("%d_1_1", n)}
	task, err := tasks.NewTask(r, tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enqueue(task); err != nil {
		t.Fatal(err)
	}
	if err := insp.ArchiveTask(lastAttemptQ, r.TaskID()); err != nil {
		t.Fatal(err)
	}
	return r.TaskID()
}

// putBackEnv starts a Redis and returns an asynq client and inspector on
// it, closed at the test's end, and a go-redis client.
func putBackEnv(t *testing.T) (*asynq.Client, *asynq.Inspector, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	opt := asynq.RedisClientOpt{Addr: srv.Addr}
	c := asynq.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	return c, insp, srv.Client(t)
}
