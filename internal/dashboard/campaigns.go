package dashboard

import (
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// CampaignsPath is the campaigns page, beside asynqmon: asynq sees only
// the few tasks of a campaign that are queued at a time, the backlog is
// recallq's own.
const CampaignsPath = "/campaigns"

// campaigns serves the campaigns page: every campaign's state, counts,
// progress, recent rate, ETA and dead letters by code, with the export to
// download and pause / resume / cancel buttons (absent, and refused, when
// the dashboard is read-only). It is plain HTML with inline CSS and SVG:
// no script, no external asset.
type campaigns struct {
	mgr      *campaign.Manager
	rdb      redis.UniversalClient
	insp     *asynq.Inspector
	readOnly bool
	appNames map[uint64]string // Config.AppNames
	log      *slog.Logger
}

func newCampaigns(cfg Config) (*campaigns, error) {
	rdb, ok := cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("dashboard: the Redis connection (%T) is not a go-redis client", cfg.Redis)
	}
	mgr, err := campaign.NewManager(campaign.ManagerConfig{Redis: rdb, Queue: cfg.Redis, Logger: cfg.Logger})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return &campaigns{mgr: mgr, rdb: rdb, insp: asynq.NewInspector(cfg.Redis), readOnly: cfg.ReadOnly, appNames: cfg.AppNames, log: cfg.Logger}, nil
}

func (c *campaigns) close() error {
	err := c.mgr.Close()
	if ierr := c.insp.Close(); err == nil {
		err = ierr
	}
	if rerr := c.rdb.Close(); err == nil {
		err = rerr
	}
	return err
}

// withCampaigns routes CampaignsPath and below to c, the rest to next.
func withCampaigns(c *campaigns, next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CampaignsPath, c.list)
	mux.HandleFunc("GET "+CampaignsPath+"/{name}", c.one)
	mux.HandleFunc("GET "+CampaignsPath+"/{name}/export.csv", c.export)
	mux.HandleFunc("POST "+CampaignsPath+"/{name}/{action}", c.act)
	mux.Handle("/", next)
	return mux
}

// page is what the template renders.
type page struct {
	Title     string
	ReadOnly  bool
	Flash     string
	Error     string
	Campaigns []view
	One       *view
	Servers   []server
	Urgent    string
	Bulk      string
	Generated string
}

// view is one campaign as the page shows it.
type view struct {
	campaign.Status
	// App is the campaign's app: "name (SDKAppID)" for a configured app
	// with a name, else the SDKAppID.
	App     string
	Percent float64
	ETAText string
	Dead    []deadCode
	Chart   template.HTML
	Peak    string
	Actions []string
}

type deadCode struct {
	Code    string
	Meaning string
	N       int64
}

// server is one worker process as asynq knows it.
type server struct {
	Host           string
	PID            int
	Concurrency    int
	Queues         string
	StrictPriority bool
	Started        string
}

func (c *campaigns) list(w http.ResponseWriter, r *http.Request) {
	all, err := c.mgr.List(r.Context())
	p := c.base(r, "Campaigns")
	if err != nil {
		p.Error = "cannot read the campaigns: " + err.Error()
	}
	for _, s := range all {
		p.Campaigns = append(p.Campaigns, c.view(s, nil))
	}
	c.render(w, p)
}

func (c *campaigns) one(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st, err := c.mgr.Status(r.Context(), name)
	if errors.Is(err, campaign.ErrNotFound) || errors.Is(err, campaign.ErrBadName) {
		http.Error(w, "404 no campaign "+strconv.Quote(name), http.StatusNotFound)
		return
	}
	p := c.base(r, "Campaign "+name)
	if err != nil {
		p.Error = "cannot read the campaign: " + err.Error()
		c.render(w, p)
		return
	}
	rates, err := c.mgr.Rates(r.Context(), name)
	if err != nil {
		p.Error = err.Error()
	}
	v := c.view(st, rates)
	p.One = &v
	c.render(w, p)
}

func (c *campaigns) export(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := campaign.ValidateName(name); err != nil {
		http.Error(w, "404 no campaign "+strconv.Quote(name), http.StatusNotFound)
		return
	}
	export, file := c.mgr.Export, name+".dead.csv"
	if r.URL.Query().Get("history") == "1" {
		export, file = c.mgr.ExportHistory, name+".audit.csv"
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	if _, err := export(r.Context(), name, w); err != nil {
		if errors.Is(err, campaign.ErrNotFound) {
			http.Error(w, "404 no campaign "+strconv.Quote(name), http.StatusNotFound)
			return
		}
		// Rows may be out already; the truncated file ends with the reason.
		c.log.WarnContext(r.Context(), "dashboard: campaign export failed", "campaign", name, "err", err)
		fmt.Fprintf(w, "\nexport failed: %v\n", err)
	}
}

// act runs pause, resume or cancel, then shows the campaign again.
func (c *campaigns) act(w http.ResponseWriter, r *http.Request) {
	if c.readOnly {
		http.Error(w, "405 the dashboard is read-only: pause, resume and cancel are off", http.StatusMethodNotAllowed)
		return
	}
	name, action := r.PathValue("name"), r.PathValue("action")
	ctx := r.Context()
	var flash string
	var err error
	switch action {
	case "pause":
		var res campaign.PauseResult
		if res, err = c.mgr.Pause(ctx, name); err == nil {
			flash = fmt.Sprintf("paused: %d queued tasks taken back to the backlog, %d being called end normally", res.Returned, res.Running)
		}
	case "resume":
		if _, err = c.mgr.Resume(ctx, name); err == nil {
			flash = "resumed: the workers feed it again"
		}
	case "cancel":
		if r.PostFormValue("confirm") != "yes" {
			http.Error(w, "400 tick the box to confirm the cancel: it cannot be undone", http.StatusBadRequest)
			return
		}
		var res campaign.CancelResult
		if res, err = c.mgr.Cancel(ctx, name); err == nil {
			flash = fmt.Sprintf("cancelled: %d rows removed (%d from the backlog, %d queued, %d retrying); %d still being called end normally",
				res.Removed(), res.Backlog, res.Queued, res.Retrying, res.StillRunning)
		}
	default:
		http.Error(w, "404 no such action: use pause, resume or cancel", http.StatusNotFound)
		return
	}
	if errors.Is(err, campaign.ErrNotFound) || errors.Is(err, campaign.ErrBadName) {
		http.Error(w, "404 no campaign "+strconv.Quote(name), http.StatusNotFound)
		return
	}
	q := url.Values{}
	if err != nil {
		q.Set("error", action+" failed: "+err.Error())
		c.log.WarnContext(ctx, "dashboard: campaign action failed", "campaign", name, "action", action, "err", err)
	} else {
		q.Set("flash", flash)
		c.log.InfoContext(ctx, "dashboard: campaign action", "campaign", name, "action", action, "result", flash)
	}
	http.Redirect(w, r, CampaignsPath+"/"+url.PathEscape(name)+"?"+q.Encode(), http.StatusSeeOther)
}

// base fills what every page shows: the lanes and the servers.
func (c *campaigns) base(r *http.Request, title string) page {
	p := page{Title: title, ReadOnly: c.readOnly, Urgent: tasks.QueueUrgent, Bulk: tasks.QueueBulk,
		Flash: r.URL.Query().Get("flash"), Error: r.URL.Query().Get("error"),
		Generated: time.Now().UTC().Format("2006-01-02 15:04:05 UTC")}
	servers, err := c.insp.Servers()
	if err != nil {
		c.log.WarnContext(r.Context(), "dashboard: cannot list asynq's servers", "err", err)
	}
	for _, s := range servers {
		qs := make([]string, 0, len(s.Queues))
		for q, w := range s.Queues {
			qs = append(qs, fmt.Sprintf("%s:%d", q, w))
		}
		sort.Strings(qs)
		p.Servers = append(p.Servers, server{Host: s.Host, PID: s.PID, Concurrency: s.Concurrency,
			Queues: strings.Join(qs, " "), StrictPriority: s.StrictPriority, Started: s.Started.UTC().Format(time.RFC3339)})
	}
	sort.Slice(p.Servers, func(i, j int) bool {
		a, b := p.Servers[i], p.Servers[j]
		return a.Host+strconv.Itoa(a.PID)+" "+a.Queues < b.Host+strconv.Itoa(b.PID)+" "+b.Queues
	})
	return p
}

func (c *campaigns) view(s campaign.Status, rates []campaign.RatePoint) view {
	v := view{Status: s, App: strconv.FormatUint(s.SDKAppID, 10), Percent: 100}
	if n := c.appNames[s.SDKAppID]; n != "" && n != v.App {
		v.App = n + " (" + v.App + ")"
	}
	if s.Queued > 0 {
		v.Percent = min(100, 100*float64(s.Ended())/float64(s.Queued))
	}
	switch {
	case s.State == campaign.StatePaused:
		v.ETAText = "paused"
	case s.State != campaign.StateRunning:
		v.ETAText = string(s.State)
	case s.Waiting != "":
		v.ETAText = "not moving"
	case s.Remaining() == 0 && !s.ImportDone:
		v.ETAText = "waiting for the import"
	default:
		v.ETAText = fmt.Sprintf("%s at %.1f calls/s (%s)", s.ETA().Round(time.Second), s.Rate, s.RateSource)
	}
	for code, n := range s.DeadByCode {
		x, err := strconv.Atoi(code)
		if err != nil {
			x = worker.NoAnswer
		}
		v.Dead = append(v.Dead, deadCode{Code: code, Meaning: campaign.CodeMeaning(x), N: n})
	}
	sort.Slice(v.Dead, func(i, j int) bool {
		return v.Dead[i].N > v.Dead[j].N || v.Dead[i].N == v.Dead[j].N && v.Dead[i].Code < v.Dead[j].Code
	})
	if !c.readOnly {
		switch s.State {
		case campaign.StateRunning:
			v.Actions = []string{"pause", "cancel"}
		case campaign.StatePaused:
			v.Actions = []string{"resume", "cancel"}
		}
	}
	v.Chart, v.Peak = rateChart(rates)
	return v
}

// Chart size, in CSS pixels.
const chartW, chartH = 640.0, 140.0

// rateChart draws the recent rate as an inline SVG line and returns it
// with its peak, as text.
func rateChart(rates []campaign.RatePoint) (template.HTML, string) {
	if len(rates) < 2 {
		return "", ""
	}
	peak := 1.0
	for _, p := range rates {
		peak = max(peak, p.PerSecond)
	}
	t0, t1 := rates[0].Time, rates[len(rates)-1].Time
	span := max(t1.Sub(t0).Seconds(), 1)
	var pts strings.Builder
	for _, p := range rates {
		x := p.Time.Sub(t0).Seconds() / span * chartW
		y := chartH - p.PerSecond/peak*(chartH-10)
		fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
	}
	svg := fmt.Sprintf(`<svg class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="recalls ended per second">`+
		`<line x1="0" y1="%.0f" x2="%.0f" y2="%.0f" class="axis"/>`+
		`<line x1="0" y1="10" x2="%.0f" y2="10" class="grid"/>`+
		`<polyline points="%s" class="rate"/></svg>`,
		chartW, chartH, chartW, chartH, chartH, chartW, chartH, chartW, strings.TrimSpace(pts.String()))
	return template.HTML(svg), fmt.Sprintf("peak %.1f/s; %s to %s", peak, t0.Format("15:04:05"), t1.Format("15:04:05 UTC"))
}

func (c *campaigns) render(w http.ResponseWriter, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// No script, no external asset: the page's only styles are its own.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'")
	if err := pageTmpl.Execute(w, p); err != nil {
		c.log.Warn("dashboard: render the campaigns page", "err", err)
	}
}

var pageTmpl = template.Must(template.New("campaigns").Funcs(template.FuncMap{
	"pct":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"title": func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
}).Parse(pageHTML))
