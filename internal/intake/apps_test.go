package intake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/apps"
	"github.com/recallq/recallq/tasks"
)

// The apps of a two-app intake; appA is the single-app tests' app.
const (
	appA uint64 = testApp
	appB uint64 = 1400000001
)

var twoApps = []apps.App{{SDKAppID: appA, Name: "prod"}, {SDKAppID: appB, Name: "staging"}}

// twoAppEnv is an intake serving appA and appB, where billingToken may
// use appA only and opsToken every app.
func twoAppEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, func(c *Config) {
		c.SDKAppID, c.Apps = 0, twoApps
		c.Tokens = []Token{opsToken, {Name: billingToken.Name, Secret: billingToken.Secret, Apps: []uint64{appA}}}
	})
}

// queueSize is how many tasks queue holds.
func (e *env) queueSize(t *testing.T, queue string) int {
	t.Helper()
	in := e.inspector(t)
	qs, err := in.Queues()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(qs, queue) {
		return 0 // never used
	}
	qi, err := in.GetQueueInfo(queue)
	if err != nil {
		t.Fatal(err)
	}
	return qi.Size
}

func TestEachAppsRecallsGoToItsQueue(t *testing.T) {
	t.Parallel()
	e := twoAppEnv(t)
	for _, tc := range []struct {
		name, path, body string
		tasks            int
	}{
		{"one recall", "/v1/recalls", recallJSON("a", "b", "1_1_1"), 1},
		{"a batch", "/v1/recalls", batchJSON(recallJSON("a", "b", "1_1_2"), recallJSON("a", "c", "1_1_3")), 2},
		{"a group recall", "/v1/group-recalls", groupJSON("g", "", 7, 8, 9), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, app := range []uint64{appA, appB} {
				urgent := tasks.AppQueue(tasks.QueueUrgent, app)
				before := e.queueSize(t, urgent)
				rec := e.do(t, http.MethodPost, fmt.Sprintf("%s?sdkappid=%d", tc.path, app), opsToken.Secret, tc.body)
				if rec.Code != http.StatusAccepted {
					t.Fatalf("app %d: %d %s", app, rec.Code, rec.Body)
				}
				if got := e.queueSize(t, urgent) - before; got != tc.tasks {
					t.Fatalf("app %d: %s holds %d new tasks, want %d", app, urgent, got, tc.tasks)
				}
				// Each task is the app's, and GET finds it in the app's queue.
				id := strings.Split(strings.Split(rec.Body.String(), `"task_id":"`)[1], `"`)[0]
				info, err := e.inspector(t).GetTaskInfo(urgent, id)
				if err != nil {
					t.Fatal(err)
				}
				if got := payloadApp(t, info); got != app {
					t.Fatalf("a task queued for app %d is app %d's", app, got)
				}
				get := e.do(t, http.MethodGet, "/v1/recalls/"+id, opsToken.Secret, "")
				if got := decodeAs[Task](t, get); got.Queue != urgent {
					t.Fatalf("GET answered %+v, want the task on %s", got, urgent)
				}
			}
		})
	}
	if !strings.Contains(e.logs.String(), fmt.Sprintf(`"sdkappid":%d`, appB)) {
		t.Errorf("the log does not say which app a request queued for:\n%s", e.logs)
	}
}

// payloadApp is the app of a queued task's payload.
func payloadApp(t *testing.T, info *asynq.TaskInfo) uint64 {
	t.Helper()
	if info.Type == tasks.TypeGroupRecall {
		g, err := tasks.DecodeGroupRecall(info.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return g.SDKAppID
	}
	r, err := tasks.Decode(info.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return r.SDKAppID
}

// TestAppMustBeNamedWithSeveralApps: with two apps, a POST names its app;
// a missing, malformed or unknown one is refused, naming the parameter,
// the fix and the apps the token may use.
func TestAppMustBeNamedWithSeveralApps(t *testing.T) {
	t.Parallel()
	e := twoAppEnv(t)
	both := "1400000000 (prod) or 1400000001 (staging)"
	for _, tc := range []refusal{
		{name: "missing", status: 422, message: "sdkappid: is missing: this intake serves several apps: name the app in the query, as in ?sdkappid=1400000000; your token may use " + both},
		{name: "not a number", body: "?sdkappid=prod", status: 400, message: "must be an SDKAppID in digits"},
		{name: "zero", body: "?sdkappid=0", status: 400, message: "must be an SDKAppID in digits"},
		{name: "twice", body: "?sdkappid=1400000000&sdkappid=1400000001", status: 400, message: "is given more than once"},
		{name: "not served", body: "?sdkappid=1400000009", status: 422, message: "1400000009 is not an app this intake serves: use " + both},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fields, tc.rows = []string{"sdkappid"}, []int{-1}
			for _, path := range []string{"/v1/recalls", "/v1/group-recalls"} {
				body := recallJSON("a", "b", "1_1_1")
				if path == "/v1/group-recalls" {
					body = groupJSON("g", "", 1)
				}
				rec := e.do(t, http.MethodPost, path+tc.body, opsToken.Secret, body)
				e.checkRefused(t, rec, tc)
				for _, app := range []uint64{appA, appB} {
					if n := e.queueSize(t, tasks.AppQueue(tasks.QueueUrgent, app)); n != 0 {
						t.Fatalf("%s: a refused request queued %d tasks for app %d", path, n, app)
					}
				}
			}
		})
	}
}

// TestOneAppNeedsNoName: an intake of one app takes requests without the
// app, and with it when it is that app.
func TestOneAppNeedsNoName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for path, want := range map[string]int{
		"/v1/recalls":                           http.StatusAccepted,
		"/v1/recalls?sdkappid=1400000000":       http.StatusAccepted,
		"/v1/recalls?sdkappid=1400000001":       http.StatusUnprocessableEntity,
		"/v1/group-recalls?sdkappid=1400000000": http.StatusAccepted,
	} {
		body := recallJSON("a", "b", "1_1_1")
		if strings.HasPrefix(path, "/v1/group-recalls") {
			body = groupJSON("g", "", 1)
		}
		rec := e.do(t, http.MethodPost, path, opsToken.Secret, body)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d (%s)", path, rec.Code, want, rec.Body)
		}
		if want == http.StatusUnprocessableEntity && !strings.Contains(rec.Body.String(), "use 1400000000") {
			t.Errorf("%s: the refusal does not name the app served: %s", path, rec.Body)
		}
	}
}

// TestTokenLimitedToApps: a token limited to app A may not queue for app
// B (403) nor read B's tasks, and learns nothing of the apps it may not
// use; a client without a token learns nothing of any app.
func TestTokenLimitedToApps(t *testing.T) {
	t.Parallel()
	e := twoAppEnv(t)
	body := recallJSON("a", "b", "1_1_1")
	for _, path := range []string{"/v1/recalls?sdkappid=1400000001", "/v1/group-recalls?sdkappid=1400000001"} {
		b := body
		if strings.HasPrefix(path, "/v1/group-recalls") {
			b = groupJSON("g", "", 1)
		}
		rec := e.do(t, http.MethodPost, path, billingToken.Secret, b)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("%s: %d, want 403 (%s)", path, rec.Code, rec.Body)
		}
		want := `the token "billing" may not use app 1400000001: it may use 1400000000 (prod); nothing was queued. To use another app, ask the intake's operator to add it to the token's apps= in INTAKE_TOKENS_FILE`
		if got := decodeAs[ErrorResponse](t, rec).Error; got != want {
			t.Fatalf("%s: error %q\nwant %q", path, got, want)
		}
	}
	if n := e.queueSize(t, tasks.AppQueue(tasks.QueueUrgent, appB)); n != 0 {
		t.Fatalf("a refused token queued %d tasks for app B", n)
	}
	// The token may not tell a served app from one that is not, nor learn
	// the apps it may not use.
	for _, tc := range []struct {
		name, token, query string
		status             int
	}{
		{"limited token, app not served", billingToken.Secret, "?sdkappid=1400000009", http.StatusForbidden},
		{"limited token, no app", billingToken.Secret, "", http.StatusUnprocessableEntity},
		{"limited token, bad app", billingToken.Secret, "?sdkappid=x", http.StatusBadRequest},
		{"no token", "", "?sdkappid=1400000009", http.StatusUnauthorized},
		{"unknown token", "tok-nobody-00000000000000", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, http.MethodPost, "/v1/recalls"+tc.query, tc.token, body)
			if rec.Code != tc.status {
				t.Fatalf("%d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			for _, other := range []string{"1400000001", "staging"} {
				if strings.Contains(rec.Body.String(), other) {
					t.Fatalf("the answer names app B: %s", rec.Body)
				}
			}
			if tc.token != billingToken.Secret && strings.Contains(rec.Body.String(), "1400000000") {
				t.Fatalf("an unauthenticated answer names an app: %s", rec.Body)
			}
		})
	}
	// The limited token still queues and reads app A's recalls.
	rec := e.do(t, http.MethodPost, "/v1/recalls?sdkappid=1400000000", billingToken.Secret, body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("app A: %d %s", rec.Code, rec.Body)
	}
	if get := e.do(t, http.MethodGet, "/v1/recalls/"+decodeAs[Queued](t, rec).TaskID, billingToken.Secret, ""); get.Code != http.StatusOK {
		t.Fatalf("GET of its app A task: %d %s", get.Code, get.Body)
	}
}

// TestLimitedTokenCannotReadAnotherAppsTask: tasks the token queued for
// app B before it was limited to app A, in B's queue or a legacy queue,
// are no longer its to read; a token of every app finds tasks of each app
// in the legacy queues too.
func TestLimitedTokenCannotReadAnotherAppsTask(t *testing.T) {
	t.Parallel()
	before := newEnv(t, func(c *Config) { c.SDKAppID, c.Apps = 0, twoApps }) // billing may use every app
	rec := before.do(t, http.MethodPost, "/v1/recalls?sdkappid=1400000001", billingToken.Secret, recallJSON("a", "b", "2_2_2"))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST for app B: %d %s", rec.Code, rec.Body)
	}
	inB := decodeAs[Queued](t, rec).TaskID
	legacy := map[string]uint64{} // task ID: app, queued in the legacy urgent queue
	c := asynq.NewClientFromRedisClient(before.redis.Client(t))
	for i, app := range []uint64{appA, appB} {
		r := tasks.Recall{SDKAppID: app, FromAccount: "old", ToAccount: "u", MsgKey: fmt.Sprintf("3_3_%d", i), RequestedBy: billingToken.Name}
		task, err := tasks.NewTask(r, tasks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.EnqueueContext(context.Background(), task, asynq.Queue(tasks.QueueUrgent)); err != nil {
			t.Fatal(err)
		}
		legacy[r.TaskID()] = app
	}
	for id := range legacy {
		if got := decodeAs[Task](t, before.do(t, http.MethodGet, "/v1/recalls/"+id, billingToken.Secret, "")); got.Queue != tasks.QueueUrgent {
			t.Fatalf("GET of a legacy task by a token of every app: %+v, want it found in %s", got, tasks.QueueUrgent)
		}
	}

	// The same Redis, billing now limited to app A.
	s, err := New(Config{RedisURL: before.redis.URL, Apps: twoApps, Logger: before.s.log,
		Tokens: []Token{{Name: billingToken.Name, Secret: billingToken.Secret, Apps: []uint64{appA}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	after := &env{s: s, redis: before.redis, logs: before.logs}
	cases := map[string]int{inB: http.StatusNotFound}
	for id, app := range legacy {
		cases[id] = map[uint64]int{appA: http.StatusOK, appB: http.StatusNotFound}[app]
	}
	for id, want := range cases {
		if got := after.do(t, http.MethodGet, "/v1/recalls/"+id, billingToken.Secret, ""); got.Code != want {
			t.Errorf("GET %s: %d, want %d (%s)", id, got.Code, want, got.Body)
		}
	}
}

func TestNewRefusesBadApps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no app", Config{Tokens: []Token{opsToken}}, "Config.SDKAppID is not set"},
		{"both", Config{SDKAppID: appA, Apps: twoApps, Tokens: []Token{opsToken}}, "both Config.SDKAppID and Config.Apps are set"},
		{"app 0", Config{Apps: []apps.App{{SDKAppID: appA}, {}}, Tokens: []Token{opsToken}}, "Config.Apps[1].SDKAppID is not set"},
		{"app twice", Config{Apps: []apps.App{{SDKAppID: appA}, {SDKAppID: appA}}, Tokens: []Token{opsToken}}, "lists app 1400000000 twice"},
		{"token of an app not served", Config{Apps: twoApps, Tokens: []Token{{Name: "billing", Secret: billingToken.Secret, Apps: []uint64{appA, 7}}}},
			`the token "billing" may use app 7, which the intake does not serve`},
		{"token app twice", Config{Apps: twoApps, Tokens: []Token{{Name: "billing", Secret: billingToken.Secret, Apps: []uint64{appA, appA}}}},
			`the apps of "billing" list 1400000000 twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), billingToken.Secret) {
				t.Fatalf("the error shows a token: %v", err)
			}
		})
	}
}
