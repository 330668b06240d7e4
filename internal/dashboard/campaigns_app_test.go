package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/redistest"
)

// The campaigns page names each campaign's app: its name from the apps
// file when it has one, else its SDKAppID.
func TestCampaignsPageShowsTheApp(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client(t)
	for _, c := range []struct {
		name string
		app  uint64
	}{{"spam-prod", 1400000000}, {"spam-other", 1400000009}} {
		in, err := campaign.OpenInput(strings.NewReader("From_Account,To_Account,MsgKey\nvinson,dramon,31906_833502_1572869830\n"), c.name+".csv", campaign.FormatAuto)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := campaign.Import(context.Background(), campaign.ImportConfig{Redis: rdb, Name: c.name, SDKAppID: c.app}, in); err != nil {
			t.Fatal(err)
		}
	}
	d := newTestDashboard(t, Config{Redis: asynq.RedisClientOpt{Addr: s.Addr}, Username: "oncall", Password: "pw",
		AppNames: map[uint64]string{1400000000: "chat-prod"}})
	get := func(path string) string {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.SetBasicAuth("oncall", "pw")
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	list := get("/campaigns")
	for _, want := range []string{"<th>App</th>", `<td data-field="app">chat-prod (1400000000)</td>`, `<td data-field="app">1400000009</td>`} {
		if !strings.Contains(list, want) {
			t.Errorf("/campaigns lacks %q", want)
		}
	}
	if one := get("/campaigns/spam-prod"); !strings.Contains(one, `app <span data-field="app">chat-prod (1400000000)</span>`) {
		t.Error("/campaigns/spam-prod does not name its app chat-prod")
	}
}
