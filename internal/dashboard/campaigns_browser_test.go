package dashboard

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/imsim"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/worker"
)

const testSecret = "s3cret-key-0123456789abcdef0123456789abcdef0123456789abcdef"

// campaignRig is a real redis-server, the simulator, a running worker with
// the campaign Recorder and a feeder: campaigns run as in production.
type campaignRig struct {
	opt asynq.RedisConnOpt
	rdb redis.UniversalClient
	sim *imsim.Sim
	mgr *campaign.Manager
}

func startCampaignRig(t *testing.T) *campaignRig {
	t.Helper()
	rs := redistest.Start(t)
	rig := &campaignRig{opt: asynq.RedisClientOpt{Addr: rs.Addr}, rdb: rs.Client(t)}
	log := slog.New(slog.DiscardHandler)
	sim, err := imsim.New(imsim.Config{SDKAppID: testSDKAppID, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	rig.sim = sim
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	api, err := tim.New(tim.Config{SDKAppID: testSDKAppID, SecretKey: testSecret, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	// 40 calls/s: slow enough that a campaign of a few thousand rows is
	// still running while the browser clicks.
	lim, err := limiter.New(limiter.Config{Redis: rig.rdb, App: testSDKAppID, API: tim.APIWithdraw, Rate: 40,
		InitialSpread: time.Millisecond, Horizon: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rig.mgr, err = campaign.NewManager(campaign.ManagerConfig{Redis: rig.rdb, Queue: rig.opt, CancelWait: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	feeder, err := campaign.NewFeeder(campaign.FeederConfig{Redis: rig.rdb, Queue: rig.opt, SDKAppID: testSDKAppID,
		Window: 20, Interval: 20 * time.Millisecond, RateSample: 250 * time.Millisecond, Rate: func() float64 { return 40 }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := worker.Run(ctx, worker.Config{Redis: rig.opt, Concurrency: 8, Logger: log,
			TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
			Handler: worker.HandlerConfig{SDKAppID: testSDKAppID, API: api, Limiter: lim, Secrets: []string{testSecret},
				Recorder: campaign.NewRecorder(campaign.RecorderConfig{Redis: rig.rdb, Logger: log})}})
		if err != nil {
			t.Errorf("worker.Run: %v", err)
		}
	}()
	go func() { defer wg.Done(); _ = feeder.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		feeder.Close()
		rig.mgr.Close()
		lim.Close()
	})
	return rig
}

// start imports a campaign of n messages; forget and badKey make that many
// of them end as 20022 and 90054 dead letters.
func (rig *campaignRig) start(t *testing.T, name string, n, forget, badKey int) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("From_Account,To_Account,MsgKey\n")
	for i := range n {
		from, to, key := fmt.Sprintf("spam-bot-%d", i%7), fmt.Sprintf("%.4s-user%d", name, i), fmt.Sprintf("%d_%d_1700000000", 40100+i, i)
		switch {
		case i < forget:
			rig.sim.ForgetMessage(from, to, key)
		case i < forget+badKey:
			key = fmt.Sprintf("bad-key-%d", i)
		}
		fmt.Fprintf(&b, "%s,%s,%s\n", from, to, key)
	}
	in, err := campaign.OpenInput(&b, name+".csv", campaign.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := campaign.Import(context.Background(), campaign.ImportConfig{Redis: rig.rdb, Name: name, SDKAppID: testSDKAppID,
		RequestedBy: "trust-and-safety", Reason: "spam wave"}, in); err != nil {
		t.Fatal(err)
	}
}

func (rig *campaignRig) status(t *testing.T, name string) campaign.Status {
	t.Helper()
	st, err := rig.mgr.Status(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (rig *campaignRig) waitState(t *testing.T, name string, s campaign.State) campaign.Status {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st := rig.status(t, name)
		if st.State == s {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s is %s after a minute, want %s: %+v", name, st.State, s, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStill waits until nothing of a paused campaign is left in asynq:
// the tasks being called when the pause came have ended.
func (rig *campaignRig) waitStill(t *testing.T, name string) campaign.Status {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st := rig.status(t, name)
		if st.InQueue == 0 && st.Retrying == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s: %d tasks still in asynq a minute after the pause", name, st.InQueue+st.Retrying)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// browser is one headless Chromium driven through the DevTools protocol,
// sending the dashboard's login with every request.
func newBrowser(t *testing.T, bin string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute) // a bound for a loaded CI machine, not a timing
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(browserUser+":"+browserPassword))
	if err := chromedp.Run(ctx, network.Enable(), network.SetExtraHTTPHeaders(network.Headers{"Authorization": auth}),
		chromedp.EmulateViewport(1400, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// TestBrowserCampaignsPage drives headless Chromium through the campaigns
// page over a real Redis, a running worker and feeder: the page shows the
// numbers `campaign status --json` gives, and its buttons act.
func TestBrowserCampaignsPage(t *testing.T) {
	b := findChromium(t)
	rig := startCampaignRig(t)
	rw := serveForBrowser(t, Config{Redis: rig.opt, Username: browserUser, Password: browserPassword})
	ro := serveForBrowser(t, Config{Redis: rig.opt, Username: browserUser, Password: browserPassword, ReadOnly: true})
	artifacts := artifactDir(t)

	rig.start(t, "spam-wave-12", 120, 6, 3)
	rig.waitState(t, "spam-wave-12", campaign.StateDone)
	rig.start(t, "leak-7731", 4000, 4, 2)
	if _, err := rig.mgr.Pause(context.Background(), "leak-7731"); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t, b.bin)

	t.Run("detail shows what campaign status --json gives", func(t *testing.T) {
		var dom string
		if err := chromedp.Run(ctx, chromedp.Navigate(rw+"/campaigns/spam-wave-12"), chromedp.OuterHTML("html", &dom)); err != nil {
			t.Fatal(err)
		}
		writeArtifact(t, artifacts, "campaign-done.html", dom)
		checkNumbers(t, dom, rig.status(t, "spam-wave-12"))
		if !strings.Contains(dom, `<polyline points="`) {
			t.Error("the page draws no rate chart")
		}
		for _, want := range []string{"20022", "the message to recall does not exist", "90054", "invalid MsgKey", "Download the dead letters"} {
			if !strings.Contains(visibleText(dom), want) {
				t.Errorf("the dead letters by code do not show %q", want)
			}
		}
		if strings.Contains(dom, "<form") {
			t.Error("a done campaign offers buttons")
		}
		var csv bytes.Buffer
		if _, err := rig.mgr.Export(context.Background(), "spam-wave-12", &csv); err != nil {
			t.Fatal(err)
		}
		if got := getWithLogin(t, rw+"/campaigns/spam-wave-12/export.csv"); got != csv.String() {
			t.Errorf("the page's export download differs from `campaign export`:\n%s\nwant\n%s", got, csv.String())
		}
	})

	t.Run("buttons resume, pause and cancel", func(t *testing.T) {
		if err := chromedp.Run(ctx, chromedp.Navigate(rw+"/campaigns/leak-7731")); err != nil {
			t.Fatal(err)
		}
		click(t, ctx, "#resume", "resumed")
		if st := rig.status(t, "leak-7731"); st.State != campaign.StateRunning {
			t.Fatalf("after Resume the campaign is %s", st.State)
		}
		time.Sleep(1500 * time.Millisecond) // a few rate samples
		if err := chromedp.Run(ctx, chromedp.Navigate(rw+"/campaigns/leak-7731")); err != nil {
			t.Fatal(err)
		}
		shot := filepath.Join(artifacts, "dashboard-campaign.png")
		screenshot(t, ctx, shot)
		t.Logf("screenshot of a running campaign: %s", shot)
		if dst := os.Getenv("UPDATE_SCREENSHOT"); dst != "" {
			copyFile(t, shot, dst)
		}
		click(t, ctx, "#pause", "paused:")
		// The tasks being called when the pause came end normally; then
		// nothing moves.
		st := rig.waitStill(t, "leak-7731")
		if st.State != campaign.StatePaused || st.Backlog == 0 {
			t.Fatalf("after Pause: %+v", st)
		}
		var dom string
		if err := chromedp.Run(ctx, chromedp.Reload(), chromedp.OuterHTML("html", &dom)); err != nil {
			t.Fatal(err)
		}
		checkNumbers(t, dom, rig.status(t, "leak-7731"))
		if err := chromedp.Run(ctx, chromedp.Click("#confirm-cancel", chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		click(t, ctx, "#cancel", "cancelled:")
		st = rig.waitState(t, "leak-7731", campaign.StateCancelled)
		if st.Cancelled == 0 || st.Backlog != 0 {
			t.Fatalf("after Cancel: %+v", st)
		}
	})

	t.Run("list shows every campaign and names strict priority", func(t *testing.T) {
		var dom string
		if err := chromedp.Run(ctx, chromedp.Navigate(rw+"/campaigns"), chromedp.OuterHTML("html", &dom)); err != nil {
			t.Fatal(err)
		}
		writeArtifact(t, artifacts, "campaigns.html", dom)
		text := visibleText(dom)
		for _, want := range []string{"spam-wave-12 1400000000 done", "leak-7731 1400000000 cancelled",
			"recall_urgent is always served first", "strict priority",
			// asynq's server list: the app's queues, and the legacy ones
			// on the process's second server.
			"recall_bulk:1400000000:1 recall_urgent:1400000000:2", "recall_bulk:1 recall_urgent:2"} {
			if !strings.Contains(text, want) {
				t.Errorf("the list does not show %q:\n%s", want, text)
			}
		}
		if !regexp.MustCompile(`<td>on</td>`).MatchString(dom) {
			t.Error("the servers table does not say strict priority is on")
		}
	})

	t.Run("read-only shows no buttons and refuses actions", func(t *testing.T) {
		rig.start(t, "held-ro", 500, 0, 0)
		if _, err := rig.mgr.Pause(context.Background(), "held-ro"); err != nil {
			t.Fatal(err)
		}
		rig.waitStill(t, "held-ro")
		var dom string
		if err := chromedp.Run(ctx, chromedp.Navigate(ro+"/campaigns/held-ro"), chromedp.OuterHTML("html", &dom)); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(dom, "<form") || strings.Contains(dom, "<button") {
			t.Error("the read-only page offers buttons")
		}
		checkNumbers(t, dom, rig.status(t, "held-ro"))
		if code := postWithLogin(t, ro+"/campaigns/held-ro/resume"); code != http.StatusMethodNotAllowed {
			t.Errorf("read-only POST resume: %d, want 405", code)
		}
		if st := rig.status(t, "held-ro"); st.State != campaign.StatePaused {
			t.Errorf("the read-only dashboard resumed the campaign: %s", st.State)
		}
	})
}

var dataRe = regexp.MustCompile(`data-(count|dead|field)="([^"]+)"[^>]*>([^<]*)<`)

// checkNumbers compares every number on the page with the campaign's
// status as `recallq campaign status --json` prints it (json.Encoder of
// campaign.Status).
func checkNumbers(t *testing.T, dom string, st campaign.Status) {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	byCode, _ := want["dead_lettered_by_code"].(map[string]any)
	seen := 0
	for _, m := range dataRe.FindAllStringSubmatch(dom, -1) {
		kind, key, got := m[1], m[2], strings.TrimSpace(m[3])
		var w any
		switch kind {
		case "count":
			w = want[key]
		case "dead":
			w = byCode[key]
		case "field":
			if key != "state" {
				continue
			}
			w = want[key]
		}
		if fmt.Sprint(w) != got {
			t.Errorf("the page shows %s %s = %q; campaign status --json says %v", kind, key, got, w)
		}
		seen++
	}
	if seen < 13+len(byCode) {
		t.Errorf("the page shows %d numbers, want the state, 12 counts and %d codes", seen, len(byCode))
	}
}

// click clicks sel and waits for the page that follows to say want.
func click(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Click(sel, chromedp.ByQuery)); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var flash string
		_ = chromedp.Run(ctx, chromedp.Evaluate(`(document.getElementById("flash")||document.getElementById("error")||{}).textContent||""`, &flash))
		if strings.Contains(flash, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after clicking %s the page says %q, want %q", sel, flash, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	checkScreenshot(t, path)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func getWithLogin(t *testing.T, u string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(browserUser, browserPassword)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func postWithLogin(t *testing.T, u string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{"confirm": {"yes"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(browserUser, browserPassword)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}
