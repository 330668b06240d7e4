package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/tasks"
)

// The dashboard's login in the browser tests.
const (
	browserUser     = "oncall"
	browserPassword = "Dash-pw-4b1d"
)

// chromiumTimeout bounds one headless run; each takes about 1.5 s.
const chromiumTimeout = 20 * time.Second

// TestBrowser drives headless Chromium against a dashboard over a real
// redis-server with recalls queued on both lanes, and checks what a person
// would see. It needs Debian's chromium; without it the test is skipped,
// unless CI is set, where a missing browser fails it.
func TestBrowser(t *testing.T) {
	b := findChromium(t)
	rs := startSeededRedis(t)
	rw := serveForBrowser(t, Config{Redis: rs.opt, RedisName: rs.conn.String(), Username: browserUser, Password: browserPassword})
	ro := serveForBrowser(t, Config{Redis: rs.opt, RedisName: rs.conn.String(), Username: browserUser, Password: browserPassword, ReadOnly: true})
	artifacts := artifactDir(t)

	// Every page a test loads; none may show the Redis password.
	var pages []string
	load := func(t *testing.T, url, screenshot string) string {
		t.Helper()
		dom, _ := b.run(t, url, screenshot)
		pages = append(pages, dom)
		return dom
	}

	t.Run("overview shows both lanes and their sizes", func(t *testing.T) {
		shot := filepath.Join(artifacts, "dashboard-queues.png")
		dom := load(t, withLogin(rw, "/"), shot)
		writeArtifact(t, artifacts, "dashboard-queues.html", dom)
		rows := tableRows(dom)
		for _, q := range []struct {
			name string
			size int
		}{
			{urgentQ, urgentPending + urgentArchived},
			{bulkQ, bulkPending + bulkArchived},
		} {
			row, ok := rows[q.name]
			if !ok {
				t.Fatalf("the queue table has no row for %s; rows %v\n(DOM in %s)", q.name, rows, artifacts)
			}
			if got := row["Size"]; got != fmt.Sprint(q.size) {
				t.Errorf("%s: Size column shows %q, want %d (row %v)", q.name, got, q.size, row)
			}
			if got := row["State"]; got != "run" {
				t.Errorf("%s: State column shows %q, want run", q.name, got)
			}
		}
		checkScreenshot(t, shot)
		t.Logf("screenshot of the queues: %s", shot)
	})

	t.Run("queue page shows pending and archived recalls", func(t *testing.T) {
		text := visibleText(load(t, withLogin(rw, "/queues/"+urgentQ+"?status=archived"), ""))
		for _, want := range []string{
			fmt.Sprintf("Pending %d", urgentPending),
			fmt.Sprintf("Archived %d", urgentArchived),
			archivedUrgentMsgKey, // the dead-lettered recall itself
			"Delete All",         // a read-write console offers to change things
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the %s page does not show %q:\n%s", urgentQ, want, text)
			}
		}
	})

	t.Run("redis page shows the address not the password", func(t *testing.T) {
		text := visibleText(load(t, withLogin(rw, "/redis"), ""))
		addr := rs.conn.Options().Addr
		if !strings.Contains(text, "Connected to: "+addr) || !strings.Contains(text, "redis_version:") {
			t.Errorf("the Redis page does not show the server's address %s and INFO:\n%.600s", addr, text)
		}
	})

	t.Run("without credentials the browser is refused", func(t *testing.T) {
		// Headless Chromium cannot show the login prompt: it abandons the
		// page with ERR_INVALID_AUTH_CREDENTIALS and renders nothing.
		for _, url := range []string{rw + "/", strings.Replace(withLogin(rw, "/"), browserPassword, "wrong", 1)} {
			dom, log := b.run(t, url, "")
			pages = append(pages, dom)
			if strings.Contains(dom, urgentQ) || strings.Contains(dom, "Asynq") {
				t.Errorf("%s: a browser without the right credentials sees the console:\n%.600s", redactLogin(url), dom)
			}
			if !strings.Contains(log, "ERR_INVALID_AUTH_CREDENTIALS") && !strings.Contains(dom, "401 Unauthorized") {
				t.Errorf("%s: Chromium reports no authentication failure; DOM %.300q, log:\n%s", redactLogin(url), dom, log)
			}
		}
		res, err := http.Get(rw + "/api/queues")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET /api/queues without credentials: %s, WWW-Authenticate %q, body %q; want 401 with a challenge",
				res.Status, res.Header.Get("WWW-Authenticate"), body)
		}
	})

	t.Run("read-only console hides the buttons and refuses a delete", func(t *testing.T) {
		shot := filepath.Join(artifacts, "dashboard-read-only-archived.png")
		text := visibleText(load(t, withLogin(ro, "/queues/"+urgentQ+"?status=archived"), shot))
		if !strings.Contains(text, archivedUrgentMsgKey) {
			t.Errorf("the read-only console does not show the archived recall:\n%s", text)
		}
		if strings.Contains(text, "Delete All") || strings.Contains(text, "Run All") {
			t.Errorf("the read-only console offers Delete All / Run All:\n%s", text)
		}
		t.Logf("screenshot of the read-only queue page: %s", shot)

		id := tasks.Recall{SDKAppID: testSDKAppID, FromAccount: "vinson", ToAccount: "dramon", MsgKey: archivedUrgentMsgKey}.TaskID()
		path := "/api/queues/" + urgentQ + "/archived_tasks/" + id
		if code := deleteWithLogin(t, ro+path); code != http.StatusMethodNotAllowed {
			t.Errorf("read-only DELETE %s: status %d, want %d", path, code, http.StatusMethodNotAllowed)
		}
		insp := asynq.NewInspector(rs.opt)
		defer insp.Close()
		if _, err := insp.GetTaskInfo(urgentQ, id); err != nil {
			t.Fatalf("the read-only console deleted the task: %v", err)
		}
		// The same call on the read-write console deletes it: the path is
		// right, and read-only is what refused it.
		if code := deleteWithLogin(t, rw+path); code != http.StatusNoContent {
			t.Errorf("read-write DELETE %s: status %d, want %d", path, code, http.StatusNoContent)
		}
		if _, err := insp.GetTaskInfo(urgentQ, id); !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Errorf("after the read-write DELETE the task is still there: %v", err)
		}
	})

	for i, p := range pages {
		if strings.Contains(p, redisPassword) {
			t.Errorf("page %d shows the Redis password", i)
		}
	}
}

// archivedUrgentMsgKey is the MsgKey of the urgent recall startSeededRedis
// archives.
var archivedUrgentMsgKey = urgentMsgKey(0)

type chromium struct{ bin string }

// findChromium returns Debian's chromium, or skips the test when it is
// missing, unless CI is set.
func findChromium(t *testing.T) chromium {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is not installed, and CI is set: the browser test must run in CI (.ci/run installs Debian's chromium)")
		}
		t.Skip("chromium is not installed: install Debian's chromium (apt-get install chromium) to run the browser test; with CI set it is required")
	}
	return chromium{bin: bin}
}

// run loads url in a fresh headless Chromium (its own profile, so no
// login is remembered between runs), lets the app render and returns the
// DOM and Chromium's log; with screenshot set it also saves a 1400x900 PNG
// there. The
// resolver maps every name but 127.0.0.1 to nothing, so the page's web
// fonts are not fetched and the test needs no network.
func (c chromium) run(t *testing.T, url, screenshot string) (dom, log string) {
	t.Helper()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		"--virtual-time-budget=10000", // the React app fetches and renders before the dump
		"--window-size=1400,900",
		"--dump-dom",
	}
	if screenshot != "" {
		args = append(args, "--screenshot="+screenshot)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.bin, append(args, url)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", redactLogin(url), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// serveForBrowser runs a dashboard on a free loopback port until the test
// ends and returns its base URL.
func serveForBrowser(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- d.ListenAndServe(ctx, func(u string) { urls <- u }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard: %v", err)
		}
		d.Close()
	})
	select {
	case u := <-urls:
		return u
	case err := <-done:
		t.Fatalf("dashboard did not start: %v", err)
	}
	return ""
}

// withLogin puts the browser test's credentials into base's URL.
func withLogin(base, path string) string {
	return strings.Replace(base, "http://", "http://"+browserUser+":"+browserPassword+"@", 1) + path
}

func redactLogin(url string) string { return strings.Replace(url, browserPassword, "xxxxx", 1) }

func deleteWithLogin(t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(browserUser, browserPassword)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// artifactDir is where screenshots are kept: $TEST_ARTIFACTS, or a
// temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("TEST_ARTIFACTS: %v", err)
	}
	return dir
}

func writeArtifact(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkScreenshot fails unless path is a 1400x900 PNG.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", path, err)
	}
	if cfg.Width != 1400 || cfg.Height != 900 {
		t.Errorf("screenshot %s is %dx%d, want 1400x900", path, cfg.Width, cfg.Height)
	}
}

var (
	hiddenRe = regexp.MustCompile(`(?is)<(script|style|svg|noscript)\b.*?</(script|style|svg|noscript)>`)
	tagRe    = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRe  = regexp.MustCompile(`\s+`)
	rowRe    = regexp.MustCompile(`(?is)<tr\b[^>]*>(.*?)</tr>`)
	cellRe   = regexp.MustCompile(`(?is)<t[hd]\b[^>]*>(.*?)</t[hd]>`)
)

// visibleText is the text a person reads on the page: tags become spaces,
// scripts, styles and drawings are dropped.
func visibleText(dom string) string {
	s := hiddenRe.ReplaceAllString(dom, " ")
	s = html.UnescapeString(tagRe.ReplaceAllString(s, " "))
	return strings.TrimSpace(spaceRe.ReplaceAllString(s, " "))
}

// tableRows reads the page's tables: for each row, keyed by its first
// cell, the cells keyed by their column's header.
func tableRows(dom string) map[string]map[string]string {
	rows := map[string]map[string]string{}
	var header []string
	for _, m := range rowRe.FindAllStringSubmatch(dom, -1) {
		var cells []string
		for _, c := range cellRe.FindAllStringSubmatch(m[1], -1) {
			cells = append(cells, visibleText(c[1]))
		}
		if len(cells) == 0 {
			continue
		}
		if strings.HasPrefix(cells[0], "Queue") && len(cells) > 1 {
			header = cells
			continue
		}
		row := map[string]string{}
		for i, c := range cells {
			if i < len(header) {
				row[header[i]] = c
			}
		}
		rows[cells[0]] = row
	}
	return rows
}
