package dashboard

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// An open dashboard answers only requests addressed to a loopback name: a
// page on evil.example whose name was rebound to 127.0.0.1 sends
// Host: evil.example (and a matching Origin, so the cross-origin check
// passes), and must not reach asynqmon.
func TestOpenRefusesForeignHost(t *testing.T) {
	d := newTestDashboard(t, Config{Addr: "127.0.0.1:8080", Open: true})
	for _, tc := range []struct {
		method, host, path string
		want               int
	}{
		{"GET", "evil.example", "/", http.StatusForbidden},
		{"GET", "evil.example:8080", "/", http.StatusForbidden},
		{"POST", "evil.example:8080", "/api/queues/recall_urgent:pause", http.StatusForbidden},
		{"GET", "127.0.0.2.nip.io:8080", "/", http.StatusForbidden},
		{"GET", "127.0.0.1:8080", "/", http.StatusOK},
		{"GET", "localhost:8080", "/", http.StatusOK},
		{"GET", "LOCALHOST", "/", http.StatusOK},
		{"GET", "[::1]:8080", "/", http.StatusOK},
		{"GET", "evil.example", HealthPath, http.StatusOK},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Host = tc.host
		if tc.method == "POST" {
			req.Header.Set("Origin", "http://"+tc.host)
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		}
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s with Host %s: %d, want %d (%.100s)", tc.method, tc.path, tc.host, rec.Code, tc.want, rec.Body)
		}
	}
}
