package worker

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recallq/recallq/tasks"
)

// singleAppSetting matches a setting of the single-app environment named
// in a text: every TIM_ variable but TIM_APPS_FILE, and RECALL_RATE.
var singleAppSetting = regexp.MustCompile(`\bTIM_[A-Z_]+\b|\bRECALL_RATE\b`)

func singleAppSettings(text string) []string {
	var names []string
	for _, n := range singleAppSetting.FindAllString(text, -1) {
		if n != "TIM_APPS_FILE" {
			names = append(names, n)
		}
	}
	return names
}

// everyConfigOutcome is every row whose Fix the handler logs and stores: the
// configuration rows of both APIs, the rows of a misconfigured path, and
// the UserSig refused again.
func everyConfigOutcome() []Outcome {
	var all []Outcome
	for _, o := range append(Outcomes(), GroupOutcomes()...) {
		switch o.Class {
		case Configuration:
			all = append(all, o)
		case SigStale:
			all = append(all, refusedAgain(o))
		}
	}
	for _, o := range pathOutcomes {
		all = append(all, o)
	}
	return all
}

// TestAppsFileFixNamesTheFile: a worker run from an apps file names, in
// every configuration error's fix, the app's field in TIM_APPS_FILE, never
// a single-app variable (refused beside the file); a single-app worker's
// texts are unchanged. A new Fix naming a variable the mapping does not
// know fails here.
func TestAppsFileFixNamesTheFile(t *testing.T) {
	t.Parallel()
	named := 0
	for _, o := range everyConfigOutcome() {
		if got := o.inAppsFile(""); got != o {
			t.Errorf("code %d single-app: %+v, want the row unchanged %+v", o.Code, got, o)
		}
		got := o.inAppsFile("chat-staging")
		for _, text := range []string{got.Fix, got.Meaning} {
			if names := singleAppSettings(text); len(names) > 0 {
				t.Errorf("code %d from an apps file: %q still names %v (add them to appsFileFields)", o.Code, text, names)
			}
		}
		if len(singleAppSettings(o.Fix)) > 0 {
			named++
			if !strings.HasSuffix(got.Fix, " (app chat-staging in TIM_APPS_FILE)") {
				t.Errorf("code %d from an apps file: fix %q does not say which app of TIM_APPS_FILE", o.Code, got.Fix)
			}
		} else if got.Fix != o.Fix {
			t.Errorf("code %d from an apps file: fix %q, want %q unchanged (it names no setting)", o.Code, got.Fix, o.Fix)
		}
		if got.Code != o.Code || got.Class != o.Class || got.API != o.API {
			t.Errorf("code %d from an apps file: %+v changed more than the texts of %+v", o.Code, got, o)
		}
	}
	if named < 10 {
		t.Fatalf("only %d fixes name a setting: the table walk missed rows", named)
	}
	want := map[int]string{
		60006: "check sdkappid against the Chat console (app chat-staging in TIM_APPS_FILE)",
		60025: "check sdkappid, admin and the key in secret_key_file (app chat-staging in TIM_APPS_FILE)",
		60026: "set region to the region the app was created in (app chat-staging in TIM_APPS_FILE)",
		60009: "check endpoint: the path is wrong (app chat-staging in TIM_APPS_FILE)",
	}
	for code, fix := range want {
		if got := Classify(code).inAppsFile("chat-staging").Fix; got != fix {
			t.Errorf("code %d from an apps file: fix %q, want %q", code, got, fix)
		}
	}
	if got := Classify(60006).Fix; got != "check TIM_SDKAPPID against the Chat console" {
		t.Errorf("code 60006 single-app: fix %q changed", got)
	}
}

// TestAppsFileFixInLogsAndStoredError: a worker of app chat-staging of an
// apps file answered 60006 logs, stores and reports (OnBreaker) the fix
// naming the file's field; a single-app worker names TIM_SDKAPPID.
func TestAppsFileFixInLogsAndStoredError(t *testing.T) {
	t.Parallel()
	const app = 1400000000
	for _, tc := range []struct{ appsFileApp, fix, not string }{
		{"chat-staging", "check sdkappid against the Chat console (app chat-staging in TIM_APPS_FILE)", "TIM_SDKAPPID"},
		{"", "check TIM_SDKAPPID against the Chat console", "TIM_APPS_FILE"},
	} {
		t.Run("apps file app "+tc.appsFileApp, func(t *testing.T) {
			t.Parallel()
			now := func() time.Time { return time.Unix(1_000_000, 0) }
			var logs bytes.Buffer
			var mu sync.Mutex
			var breakerFix string
			api := &codeAPI{}
			api.withdraw.Store(60006)
			h, err := NewHandler(HandlerConfig{SDKAppID: app, AppsFileApp: tc.appsFileApp, API: api,
				Limiter: freeLimiter{now}, GroupLimiter: freeLimiter{now}, BreakerThreshold: 1,
				OnBreaker: func(_ string, open bool, o Outcome) {
					mu.Lock()
					defer mu.Unlock()
					if open {
						breakerFix = o.Fix
					}
				},
				GroupLinger: -1, GroupUrgentLinger: -1, Now: now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			task, err := tasks.NewTask(tasks.Recall{SDKAppID: app, FromAccount: "a", ToAccount: "b", MsgKey: "1_1_1"}, tasks.Options{})
			if err != nil {
				t.Fatal(err)
			}
			perr := h.ProcessTask(context.Background(), task)
			if perr == nil || !strings.Contains(perr.Error(), "fix: "+tc.fix) || strings.Contains(perr.Error(), tc.not) {
				t.Errorf("stored error %v: want the fix %q", perr, tc.fix)
			}
			out := logs.String()
			if strings.Count(out, `fix="`+tc.fix+`"`) != 2 || strings.Contains(out, tc.not) {
				t.Errorf("logs:\n%s\nwant the fix %q in the configuration error and the circuit's log", out, tc.fix)
			}
			mu.Lock()
			defer mu.Unlock()
			if breakerFix != tc.fix {
				t.Errorf("OnBreaker got fix %q, want %q (readiness shows it)", breakerFix, tc.fix)
			}
		})
	}
}
