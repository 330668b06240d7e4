package assembly

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/metrics"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// Two apps served side by side in one process on one Redis, each against
// its own simulator (its own SDKAppID and secret): each app's tasks are
// recalled by its own worker only, each app draws from its own buckets, and
// a task of a third app that nobody serves stays pending and is reported.
func TestTwoAppsInOneProcess(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	opt := asynq.RedisClientOpt{Addr: rs.Addr}
	type app struct {
		id   uint64
		name string
		sim  *imsim.Sim
	}
	apps := []*app{{id: 1400000000, name: "chat-prod"}, {id: 1400000001, name: "chat-staging"}}
	const unconfigured = 1400000009

	var mu sync.Mutex
	unserved := map[string]int{}
	var ws Workers
	for _, a := range apps {
		secret := "secret-of-" + a.name
		sim, err := imsim.New(imsim.Config{SDKAppID: a.id, SecretKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		a.sim = sim
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		w, err := New(Config{
			Redis: rdb, Queue: opt, Name: a.name, Rate: 100, GroupRate: 50,
			App: tim.Config{SDKAppID: a.id, SecretKey: secret, Endpoint: srv.URL},
			Worker: worker.Config{Concurrency: 4, UnservedCheck: 100 * time.Millisecond,
				OnUnserved: func(q map[string]int) {
					mu.Lock()
					defer mu.Unlock()
					for k, v := range q {
						unserved[k] = v
					}
				}},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	defer ws.Close()

	// Five recalls per app, and one for the app nobody serves.
	recall := func(app uint64, i int) tasks.Recall {
		return tasks.Recall{FromAccount: fmt.Sprintf("from%d", app%10), ToAccount: fmt.Sprintf("user%d", i),
			MsgKey: fmt.Sprintf("%d_%d_1572869830", 31906+i, 833502+app%10)}
	}
	for _, id := range []uint64{apps[0].id, apps[1].id, unconfigured} {
		c, err := enqueue.New(enqueue.Config{RedisURL: rs.URL, SDKAppID: id})
		if err != nil {
			t.Fatal(err)
		}
		n := 5
		if id == unconfigured {
			n = 1
		}
		for i := range n {
			if _, err := c.Recall(context.Background(), recall(id, i)); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ws.Run(ctx) }()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		reported := unserved[tasks.AppQueue(tasks.QueueUrgent, unconfigured)]
		mu.Unlock()
		finished := 0
		for _, a := range apps {
			if info, err := insp.GetQueueInfo(tasks.AppQueue(tasks.QueueUrgent, a.id)); err == nil {
				finished += info.Completed
			}
		}
		if finished == 10 && reported == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %d of 10 recalls completed, the unserved task reported %d times", finished, reported)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	for i, a := range apps {
		other := apps[1-i]
		for j := range 5 {
			r := recall(a.id, j)
			if got := a.sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey); len(got) != 1 || got[0] != 0 {
				t.Errorf("app %s's simulator answered %v for its recall %d, want [0]", a.name, got, j)
			}
			if got := other.sim.Fate(r.FromAccount, r.ToAccount, r.MsgKey); got != nil {
				t.Errorf("app %s's simulator was called for app %s's recall %d: %v", other.name, a.name, j, got)
			}
		}
		if st := a.sim.Stats(); st.Calls != 5 || st.Counted != 5 {
			t.Errorf("app %s's simulator saw %d calls (%d authenticated), want 5 of its own", a.name, st.Calls, st.Counted)
		}
		// Each app draws from a bucket of its own.
		keys, err := rdb.Keys(context.Background(), "*{lim:"+limiter.BucketName(a.id, tim.APIWithdraw)+"}*").Result()
		if err != nil || len(keys) == 0 {
			t.Errorf("no Redis key of app %s's bucket %s (%v)", a.name, limiter.BucketName(a.id, tim.APIWithdraw), err)
		}
		// Rate and GroupRate reach their buckets (the rate in force is paced
		// a little below the cap).
		if r := ws[i].Limiter.Stats().Rate; r <= 50 || r > 100 {
			t.Errorf("app %s's admin_msgwithdraw bucket runs at %v calls/s, want its Rate 100", a.name, r)
		}
		if r := ws[i].GroupLimiter.Stats().Rate; r <= 25 || r > 50 {
			t.Errorf("app %s's group_msg_recall bucket runs at %v calls/s, want its GroupRate 50", a.name, r)
		}
		if got := gathered(t, ws[i].Metrics, metrics.RecallsTotal, a.name); got != 5 {
			t.Errorf("%s{app=%q} = %v, want 5", metrics.RecallsTotal, a.name, got)
		}
		if got := gathered(t, ws[i].Metrics, metrics.UnservedTasks, a.name); got != 1 {
			t.Errorf("%s{app=%q} = %v, want 1 (the third app's task)", metrics.UnservedTasks, a.name, got)
		}
	}
	// The third app's task waits, untouched, in its own queue.
	info, err := insp.GetQueueInfo(tasks.AppQueue(tasks.QueueUrgent, unconfigured))
	if err != nil || info.Pending != 1 {
		t.Errorf("the unconfigured app's queue: %+v (%v), want 1 pending", info, err)
	}
	if keys, _ := rdb.Keys(context.Background(), "*{lim:"+limiter.BucketName(unconfigured, tim.APIWithdraw)+"}*").Result(); len(keys) != 0 {
		t.Errorf("a bucket of the unconfigured app exists: %v", keys)
	}
}

// gathered sums the series of name labelled app in m.
func gathered(t *testing.T, m *metrics.Metrics, name, app string) float64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == metrics.AppLabel && lp.GetValue() == app {
					sum += s.GetCounter().GetValue() + s.GetGauge().GetValue()
				}
			}
		}
	}
	return sum
}

// One app's worker that cannot start stops the others, gracefully, and
// Run's error names that app.
func TestWorkersStopTogetherWhenOneCannotStart(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	good, err := New(Config{Redis: rdb, Queue: asynq.RedisClientOpt{Addr: rs.Addr}, Name: "chat-prod", NoFeeder: true,
		App: tim.Config{SDKAppID: 1400000000, SecretKey: "k", Endpoint: "http://127.0.0.1:1"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// A worker whose server cannot start: worker.Run refuses its config
	// at once (New would not build one; Run must cope all the same).
	bad := &Worker{name: "chat-staging", log: slog.New(slog.DiscardHandler)}
	ws := Workers{good, bad}
	defer ws.Close()
	done := make(chan error, 1)
	go func() { done <- ws.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "app chat-staging") {
			t.Fatalf("Run: %v, want an error naming app chat-staging", err)
		}
		if strings.Contains(err.Error(), "chat-prod") {
			t.Errorf("Run: %v; chat-prod stopped cleanly and should not be named", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return: the app that started was not stopped")
	}
}

// /readyz says whether this pod's own environment is broken. A circuit
// opened by the app's setting in the Chat console (group recall disabled,
// 10041), which every pod meets alike and no pod's settings cure, leaves
// the pod ready, its one-to-one recalls going on, and /readyz names the
// open circuit and its fix; a circuit opened by the pod's own
// configuration (a TIM_ADMIN that is no app admin, 90009) makes it
// unready.
func TestReadyzOnAnOpenCircuit(t *testing.T) {
	const id = 1400000000
	for _, tt := range []struct {
		name     string
		admin    string // tim.Config.Admin
		disabled bool   // group recall disabled in the app's console
		wantCode int
		want     []string // in /readyz's body
	}{
		{name: "group recall disabled in the console: ready, naming the circuit", disabled: true, wantCode: http.StatusOK,
			want: []string{"ready", tim.APIGroupRecall, "10041", "enable group message recall for the app in the Chat console"}},
		{name: "this pod's admin is no app admin: not ready", admin: "not-an-admin", wantCode: http.StatusServiceUnavailable,
			want: []string{"not ready", "TIM_ADMIN"}}, // 90009 or, from group_msg_recall, 10007
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := redistest.Start(t)
			sim, err := imsim.New(imsim.Config{SDKAppID: id, SecretKey: "k"})
			if err != nil {
				t.Fatal(err)
			}
			sim.SetGroupSettings(imsim.GroupSettings{RecallDisabled: tt.disabled})
			if err := sim.CreateGroup(imsim.GroupSpec{GroupID: "g", Messages: 10}); err != nil {
				t.Fatal(err)
			}
			api := httptest.NewServer(sim)
			t.Cleanup(api.Close)
			w, err := New(Config{Redis: rs.Client(t), Queue: asynq.RedisClientOpt{Addr: rs.Addr}, Name: "chat-prod", NoFeeder: true,
				App: tim.Config{SDKAppID: id, SecretKey: "k", Endpoint: api.URL, Admin: tt.admin},
				Worker: worker.Config{Concurrency: 4, Handler: worker.HandlerConfig{
					BreakerThreshold: 1, ConfigRetryDelay: 100 * time.Millisecond, GroupUrgentLinger: -1}},
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			msrv, stop, err := w.ServeMetrics(ctx, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
				stop()
			}()

			c, err := enqueue.New(enqueue.Config{RedisURL: rs.URL, SDKAppID: id})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			recall := tasks.Recall{FromAccount: "from", ToAccount: "to", MsgKey: "31906_833502_1572869830"}
			if _, err := c.Recall(ctx, recall); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GroupRecalls(ctx, tasks.GroupRecall{GroupID: "g"}, []uint64{1, 2, 3}); err != nil {
				t.Fatal(err)
			}

			// Wait until /readyz names the open circuit.
			url := "http://" + msrv.Addr() + "/readyz"
			var code int
			var body string
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if code, body = readyz(t, url); strings.Contains(body, "circuit open") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 20 s /readyz = %d %q, still naming no open circuit", code, body)
				}
			}
			if code != tt.wantCode {
				t.Errorf("/readyz = %d %q, want %d", code, body, tt.wantCode)
			}
			for _, want := range tt.want {
				if !strings.Contains(body, want) {
					t.Errorf("/readyz's body %q does not say %q", body, want)
				}
			}
			if tt.disabled {
				// The pod's one-to-one recalls go on.
				for deadline := time.Now().Add(20 * time.Second); !slices.Equal(sim.Fate(recall.FromAccount, recall.ToAccount, recall.MsgKey), []int{0}); time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("after 20 s the one-to-one recall's fate is %v, want [0]", sim.Fate(recall.FromAccount, recall.ToAccount, recall.MsgKey))
					}
				}
			}
		})
	}
}

// readyz GETs url and returns the status code and the body.
func readyz(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
