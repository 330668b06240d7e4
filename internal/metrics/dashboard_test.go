package metrics

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"

	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/redistest"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

const (
	dashboardPath = "../../deploy/grafana/recallq.json"
	readmePath    = "../../README.md"
)

// metricName matches the series a query can name: recallq's and asynq's.
var metricName = regexp.MustCompile(`\b(?:recallq|asynq)_[a-zA-Z0-9_:]+`)

// exported returns every series name a fully wired worker serves, with the
// _bucket, _sum and _count series of its histograms.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	s := redistest.Start(t)
	rdb := s.Client(t)
	c := asynq.NewClientFromRedisClient(rdb)
	if _, err := c.Enqueue(asynq.NewTask(tasks.TypeRecall, []byte("{}")), asynq.Queue(tasks.QueueUrgent)); err != nil {
		t.Fatal(err)
	}
	m := New(Config{})
	if err := m.WatchLimiter(tim.APIWithdraw, &fakeLimiter{s: limiter.Stats{Interval: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchQueues(asynq.NewInspectorFromRedisClient(rdb), func(ctx context.Context) error { return rdb.Ping(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	m.Record(worker.Event{Code: 0, Class: worker.Done, Fate: worker.FateRecalled, Queue: tasks.QueueUrgent})
	m.Record(worker.Event{Group: &tasks.GroupRecall{GroupID: "g"}, Code: 0, Class: worker.Done, Fate: worker.FateRecalled, Queue: tasks.QueueBulk})
	m.GroupCalled(worker.GroupCall{Seqs: 1})
	m.SigRefreshed(tim.SigReasonInitial)
	fams := scrape(t, m.Handler())
	names := map[string]bool{}
	for name, mf := range fams {
		names[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[name+suffix] = true
			}
		}
	}
	return names
}

// dashboardQueries returns every PromQL expression of the dashboard: the
// panels' targets (rows' nested panels too) and the templating queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardPath, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard lacks a title or uid")
	}
	var exprs []string
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.RefID == "" || tg.Expr == "" {
					t.Errorf("panel %q has a target without refId or expr", p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}
	return exprs
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// The dashboard only queries series the program exports, and shows each
// one the operators asked for.
func TestDashboardQueriesExportedSeries(t *testing.T) {
	have := exported(t)
	used := map[string]bool{}
	for _, expr := range dashboardQueries(t) {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("query names no recallq or asynq series: %s", expr)
		}
		for _, n := range names {
			used[n] = true
			if !have[n] {
				t.Errorf("the dashboard queries %s, which recallq does not export: %s", n, expr)
			}
		}
	}
	for _, want := range []string{RecallsTotal, APILatency + "_bucket", TokenWait + "_bucket", "asynq_tasks_enqueued_total",
		RateLimitBackoffs, ConfigErrors, SigRefreshes, LimiterInterval, LimiterSpread} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	if t.Failed() {
		var names []string
		for n := range have {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("exported: %v", names)
	}
}

// Every series the README's table of a worker's metrics names is one a
// worker exports (names only).
func TestREADMEMetricsAreExported(t *testing.T) {
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "\n### Metrics\n")
	if ok {
		table, _, ok = strings.Cut(table, "\nThe capture ")
	}
	if !ok {
		t.Fatal(`README.md: no "### Metrics" section followed by the capture's table`)
	}
	have := exported(t)
	n := 0
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		series, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, name := range metricName.FindAllString(series, -1) {
			n++
			if !have[name] {
				t.Errorf("README.md's metrics table names %s, which a worker does not export", name)
			}
		}
	}
	if n < 10 {
		t.Errorf("README.md's metrics table names %d series; the parse missed the table", n)
	}
}
