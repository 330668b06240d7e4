package dashboard

// pageHTML is the campaigns page: list and detail, one template. Every
// number a test reads carries data-count (the field's name in `recallq
// campaign status --json`) or data-field.
const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="15">
<title>{{.Title}} · recallq</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header{background:#1d2430;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#cfd6e4;text-decoration:none}header a.on{color:#fff;font-weight:600}
header .ro{margin-left:auto;background:#8a5a00;padding:2px 8px;border-radius:4px;font-size:12px}
main{padding:16px 24px;max-width:1280px}
h1{font-size:20px;margin:8px 0 12px}h2{font-size:15px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff;min-width:50%}
th,td{padding:5px 10px;border-bottom:1px solid #e3e6eb;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{width:220px;height:12px;background:#e3e6eb;border-radius:6px;overflow:hidden;display:inline-block;vertical-align:middle}
.bar>i{display:block;height:100%;background:#2f7d4f}
.state{font-weight:600}.running{color:#2f7d4f}.paused{color:#8a5a00}.cancelled{color:#9b1c1c}.done{color:#1d4ed8}
.note{background:#fff;border-left:4px solid #1d4ed8;padding:8px 12px;margin:12px 0;max-width:980px}
.warn{border-left-color:#b45309;background:#fff8eb}.err{border-left-color:#9b1c1c;background:#fdf0f0}
.flash{border-left-color:#2f7d4f;background:#effaf3}
.grid2{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
svg.chart{background:#fff;border:1px solid #e3e6eb}svg .rate{fill:none;stroke:#2f7d4f;stroke-width:2}
svg .axis{stroke:#9aa3b2}svg .grid{stroke:#e3e6eb;stroke-dasharray:4 4}
form{display:inline-block;margin-right:12px}
button{font:inherit;padding:5px 14px;border-radius:4px;border:1px solid #9aa3b2;background:#fff;cursor:pointer}
button.cancel{border-color:#9b1c1c;color:#9b1c1c}
small{color:#5b6472}
</style></head>
<body>
<header><strong>recallq</strong><a href="/">Queues (asynqmon)</a><a href="/campaigns" class="on">Campaigns</a>
{{if .ReadOnly}}<span class="ro">read-only</span>{{end}}</header>
<main>
{{with .Flash}}<div class="note flash" id="flash">{{.}}</div>{{end}}
{{with .Error}}<div class="note err" id="error">{{.}}</div>{{end}}
{{with .One}}
<h1>Campaign {{.Name}} <span class="state {{.State}}" data-field="state">{{.State}}</span></h1>
{{with .Waiting}}<div class="note warn" id="waiting"><strong>Not moving:</strong> {{.}}</div>{{end}}
<p><span class="bar"><i style="width:{{pct .Percent}}%"></i></span> <span data-field="percent">{{pct .Percent}}%</span> ended ·
ETA <span data-field="eta">{{.ETAText}}</span> · app <span data-field="app">{{.App}}</span> · from {{.Source}} ({{.Format}}) · created {{.Created.Format "2006-01-02 15:04:05 UTC"}}
{{if not .ImportDone}} · <strong>import still running</strong>{{end}}</p>
<div class="grid2">
<div><h2>Counts by outcome</h2>
<table id="counts">
<tr><th>Outcome</th><th>Rows</th></tr>
<tr><td>Queued (imported)</td><td class="n" data-count="queued">{{.Queued}}</td></tr>
<tr><td>Recalled</td><td class="n" data-count="recalled">{{.Recalled}}</td></tr>
<tr><td>Already recalled (20023)</td><td class="n" data-count="already_recalled">{{.AlreadyRecalled}}</td></tr>
<tr><td>Dead-lettered</td><td class="n" data-count="dead_lettered">{{.DeadLettered}}</td></tr>
<tr><td>Retrying</td><td class="n" data-count="retrying">{{.Retrying}}</td></tr>
<tr><td>Pending: backlog</td><td class="n" data-count="backlog">{{.Backlog}}</td></tr>
<tr><td>Pending: in the bulk queue</td><td class="n" data-count="in_queue">{{.InQueue}}</td></tr>
<tr><td>Duplicates</td><td class="n" data-count="duplicates">{{.Duplicates}}</td></tr>
<tr><td>Cancelled</td><td class="n" data-count="cancelled">{{.Cancelled}}</td></tr>
<tr><td>Deleted by hand in asynq</td><td class="n" data-count="deleted">{{.Deleted}}</td></tr>
<tr><td>Unaccounted</td><td class="n" data-count="unaccounted">{{.Unaccounted}}</td></tr>
<tr><td>Rejected at import</td><td class="n" data-count="rejected">{{.Rejected}}</td></tr>
</table></div>
<div><h2>Recent rate (recalls ended per second)</h2>
{{if .Chart}}{{.Chart}}<br><small>{{.Peak}}</small>{{else}}<p><small>no samples yet: the feeder notes the progress of running campaigns every 5 s</small></p>{{end}}
<h2>Dead letters by code</h2>
{{if .Dead}}<table id="dead">
<tr><th>Code</th><th>Meaning</th><th>Rows</th></tr>
{{range .Dead}}<tr><td>{{.Code}}</td><td>{{.Meaning}}</td><td class="n" data-dead="{{.Code}}">{{.N}}</td></tr>{{end}}
</table>{{else}}<p>none</p>{{end}}
<p><a href="/campaigns/{{.Name}}/export.csv" id="export">Download the dead letters (CSV)</a> ·
<a href="/campaigns/{{.Name}}/export.csv?history=1">the whole audit, re-runs included</a></p>
</div></div>
{{if .Actions}}<h2>Act</h2>
{{range .Actions}}{{if eq . "cancel"}}<form method="post" action="/campaigns/{{$.One.Name}}/cancel">
<label><input type="checkbox" name="confirm" value="yes" required id="confirm-cancel"> cancel for good: the rows not yet called are dropped</label>
<button class="cancel" id="cancel">Cancel</button></form>
{{else}}<form method="post" action="/campaigns/{{$.One.Name}}/{{.}}"><button id="{{.}}">{{title .}}</button></form>{{end}}{{end}}
{{end}}
<p><a href="/campaigns">All campaigns</a></p>
{{else}}
<h1>Campaigns</h1>
<p><small>A campaign's backlog is recallq's own: asynqmon's queue pages show only the few tasks of it queued at a time. Counts are the workers' records.</small></p>
{{if .Campaigns}}<table id="campaigns">
<tr><th>Campaign</th><th>App</th><th>State</th><th>Progress</th><th>Queued</th><th>Recalled</th><th>Already</th><th>Dead</th><th>Retrying</th><th>Pending</th><th>ETA</th></tr>
{{range .Campaigns}}<tr data-campaign="{{.Name}}"><td><a href="/campaigns/{{.Name}}">{{.Name}}</a></td>
<td data-field="app">{{.App}}</td>
<td class="state {{.State}}" data-field="state">{{.State}}</td>
<td><span class="bar"><i style="width:{{pct .Percent}}%"></i></span> {{pct .Percent}}%</td>
<td class="n" data-count="queued">{{.Queued}}</td><td class="n" data-count="recalled">{{.Recalled}}</td>
<td class="n" data-count="already_recalled">{{.AlreadyRecalled}}</td><td class="n" data-count="dead_lettered">{{.DeadLettered}}</td>
<td class="n" data-count="retrying">{{.Retrying}}</td><td class="n" data-count="pending">{{.Pending}}</td>
<td>{{.ETAText}}{{if .Waiting}} <span title="{{.Waiting}}">(!)</span>{{end}}</td></tr>{{end}}
</table>{{else}}<p>No campaigns yet: <code>recallq campaign start --name NAME FILE</code>.</p>{{end}}
{{end}}
<h2>Lanes: strict priority</h2>
<div class="note" id="priority"><strong>{{.Urgent}} is always served first; {{.Bulk}} gets only what is left.</strong>
Each app has its own pair of queues, <code>{{.Urgent}}:SDKAPPID</code> and <code>{{.Bulk}}:SDKAPPID</code>; the workers of an app
also serve <code>{{.Urgent}}</code> and <code>{{.Bulk}}</code>, where recallq queued before queues carried the app,
on a small second asynq server in the same process (so each worker shows twice below).
The workers run asynq with <em>strict priority</em>: a worker takes a bulk task only when no urgent task waits.
asynq's server list shows the weights <code>{{.Urgent}}:SDKAPPID:2 {{.Bulk}}:SDKAPPID:1</code> and <code>{{.Urgent}}:2 {{.Bulk}}:1</code>; with strict priority on they only set the order,
not a share. Do not "fix" them: urgent recalls would then wait behind campaigns.</div>
{{if .Servers}}<table id="servers"><tr><th>Worker</th><th>PID</th><th>Concurrency</th><th>Queues (weights)</th><th>Strict priority</th><th>Started</th></tr>
{{range .Servers}}<tr><td>{{.Host}}</td><td class="n">{{.PID}}</td><td class="n">{{.Concurrency}}</td><td>{{.Queues}}</td>
<td>{{if .StrictPriority}}on{{else}}<strong>OFF: urgent recalls share workers with campaigns</strong>{{end}}</td><td>{{.Started}}</td></tr>{{end}}
</table>{{else}}<p><small>no worker is running</small></p>{{end}}
<p><small>Generated {{.Generated}}; the page refreshes every 15 s.</small></p>
</main></body></html>
`
