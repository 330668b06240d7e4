package dashboard

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// attrURL finds every URL a page makes the browser load or link to.
var attrURL = regexp.MustCompile(`(?i)(?:href|src|action)\s*=\s*["']?([^"' >]+)`)

// No page of the console makes the browser fetch anything from another
// host (asynqmon's index loads its fonts from fonts.googleapis.com: a
// dashboard on an internal network would tell Google who looks at it, and
// break offline), and the Content-Security-Policy forbids it anyway.
func TestPagesAreSelfContained(t *testing.T) {
	d := newTestDashboard(t, Config{Username: "oncall", Password: "pw"})
	for _, path := range []string{"/", "/queues/recall_urgent", "/servers", "/redis", "/no/such/page"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.SetBasicAuth("oncall", "pw")
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, "<title>Asynq - Monitoring</title>") {
			t.Fatalf("GET %s: %d %.200q", path, rec.Code, body)
		}
		for _, m := range attrURL.FindAllStringSubmatch(body, -1) {
			u := strings.ToLower(m[1])
			if strings.HasPrefix(u, "http:") || strings.HasPrefix(u, "https:") || strings.HasPrefix(u, "//") {
				t.Errorf("GET %s: the page loads %s from another host", path, m[1])
			}
		}
		if strings.Contains(body, "googleapis") {
			t.Errorf("GET %s still names googleapis", path)
		}
		if n := rec.Header().Get("Content-Length"); n != "" && n != itoa(len(body)) {
			t.Errorf("GET %s: Content-Length %s for %d bytes", path, n, len(body))
		}
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "font-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", path, csp, want)
			}
		}
	}
	// The scripts themselves are served whole.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("oncall", "pw")
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	js := regexp.MustCompile(`src="(/static/js/main[^"]+)"`).FindStringSubmatch(rec.Body.String())
	if js == nil {
		t.Fatal("the index names no main script")
	}
	req = httptest.NewRequest(http.MethodGet, js[1], nil)
	req.SetBasicAuth("oncall", "pw")
	rec = httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.Len() < 10000 || !strings.Contains(rec.Header().Get("Content-Type"), "javascript") {
		t.Fatalf("GET %s: %d, %d bytes, %s", js[1], rec.Code, rec.Body.Len(), rec.Header().Get("Content-Type"))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
