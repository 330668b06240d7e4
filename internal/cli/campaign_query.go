package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/apps"
	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/tim"
)

// queryFlags are the flags of `campaign start` that find the messages
// with a query instead of a file.
type queryFlags struct {
	sender, to, conversation, since, until string
	dryRun                                 bool
	admin, region, endpoint                string
}

func (q *queryFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&q.sender, "sender", "", "recall what USER sent, found in the capture's index (recallq capture)")
	f.StringVar(&q.to, "to", "", "with --sender: only one-to-one messages to this USER")
	f.StringVar(&q.conversation, "conversation", "", "A,B: recall the one-to-one history of A and B, found with admin_getroammsg")
	f.StringVar(&q.since, "since", "", "start of the window: a duration back from now (6h, 90m, 2d) or an RFC 3339 time with its zone (2024-11-05T18:00:00+08:00)")
	f.StringVar(&q.until, "until", "", "end of the window, as --since (default now)")
	f.BoolVar(&q.dryRun, "dry-run", false, "print how many messages of each kind would be queued, and queue nothing")
	f.StringVar(&q.admin, "admin", envOr("TIM_ADMIN", DefaultAdmin), "with --conversation: the app admin account that signs requests (env TIM_ADMIN)")
	f.StringVar(&q.region, "region", envOr("TIM_REGION", tim.DefaultRegion), "with --conversation: regional domain (env TIM_REGION)")
	f.StringVar(&q.endpoint, "endpoint", os.Getenv("TIM_ENDPOINT"), "with --conversation: base URL that overrides the region, e.g. the simulator (env TIM_ENDPOINT)")
}

// active reports whether a query flag was given.
func (q *queryFlags) active() bool { return q.sender != "" || q.conversation != "" }

// parseWhen reads --since or --until: a duration back from now ("6h",
// "2d") or an RFC 3339 time. A time without a zone is refused, not read in
// UTC or the local zone: a recall cannot be undone, and a window read in
// the wrong zone recalls hours the operator did not mean.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return time.Time{}, usagef("--%s %q has no time zone: add Z for UTC or the offset of the zone you mean, e.g. %s or %s",
				flag, s, t.Format("2006-01-02T15:04:05Z"), t.Format("2006-01-02T15:04:05+08:00"))
		}
	}
	return time.Time{}, usagef("--%s %q: give a duration back from now (6h, 90m, 2d) or a time with its zone (2024-11-05T10:00:00Z, 2024-11-05T18:00:00+08:00)", flag, s)
}

// window reads --since and --until.
func (q *queryFlags) window(now time.Time) (since, until time.Time, err error) {
	if q.since == "" {
		return since, until, usagef("--since is required with --sender or --conversation: e.g. --since 6h")
	}
	if since, err = parseWhen("since", q.since, now); err != nil {
		return since, until, err
	}
	until = now
	if q.until != "" {
		if until, err = parseWhen("until", q.until, now); err != nil {
			return since, until, err
		}
	}
	if !since.Before(until) {
		return since, until, usagef("--since %s is not before --until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	return since.Truncate(time.Second), until.Truncate(time.Second), nil
}

// captureIndexConfig reads the index settings the capture and the query
// must share: CAPTURE_RETENTION and CAPTURE_BUCKET.
func captureIndexConfig() (capture.IndexConfig, error) {
	var cfg capture.IndexConfig
	for _, s := range []struct {
		env string
		dst *time.Duration
		def time.Duration
	}{{"CAPTURE_RETENTION", &cfg.Retention, capture.DefaultRetention}, {"CAPTURE_BUCKET", &cfg.Bucket, capture.DefaultBucket}} {
		v := os.Getenv(s.env)
		if v == "" {
			*s.dst = s.def
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return cfg, usagef("%s %q is not a duration of a second or more, such as %s", s.env, v, s.def)
		}
		*s.dst = d
	}
	return cfg, nil
}

// runQueryStart is `campaign start` with --sender or --conversation.
func runQueryStart(cmd *cobra.Command, g *globals, app *appFlags, q *queryFlags, name, rejectsPath, requestedBy, reason string) error {
	ctx := cmd.Context()
	switch {
	case q.sender != "" && q.conversation != "":
		return usagef("--sender and --conversation find different things: give one")
	case q.to != "" && q.sender == "":
		return usagef("--to narrows --sender: give --sender too")
	}
	// --conversation calls Tencent: with an apps file, with the app's own
	// key and settings from the file.
	one, err := app.oneApp(cmd, "campaign start", q.conversation != "" && os.Getenv("TIM_APPS_FILE") != "")
	if err != nil {
		return err
	}
	id := one.SDKAppID
	since, until, err := q.window(time.Now())
	if err != nil {
		return err
	}
	conn, err := app.redis()
	if err != nil {
		return err
	}
	rdb := conn.Client()
	defer rdb.Close()
	// A campaign that cannot take the import (cancelled, another app's)
	// is refused before the query runs, as a file's is before it is read:
	// --conversation pages through admin_getroammsg, minutes of the API's
	// quota, and the import would refuse the rows it found. A dry run is
	// refused too: it would count rows that no run can queue.
	if err := campaign.CheckImport(ctx, rdb, name, id); err != nil {
		return campaignErr(err)
	}

	var rows []campaign.Row
	var what, rerun string
	groups := 0
	span := since.UTC().Format(time.RFC3339) + " .. " + until.UTC().Format(time.RFC3339)
	if q.sender != "" {
		icfg, err := captureIndexConfig()
		if err != nil {
			return err
		}
		icfg.Redis = rdb
		ix, err := capture.NewIndex(icfg)
		if err != nil {
			return usageError{err}
		}
		defer ix.Close()
		rows, groups, err = campaign.SenderRows(ctx, ix, capture.Query{SDKAppID: id, From: q.sender, To: q.to, Since: since, Until: until})
		if err != nil {
			return err
		}
		what = "sender " + q.sender
		if q.to != "" {
			what += " to " + q.to
		}
		what += ", " + span + ", from the capture index"
		rerun = fmt.Sprintf("--sender %s", q.sender)
		if q.to != "" {
			rerun += " --to " + q.to
		}
		if earliest := time.Now().Add(-icfg.Retention); since.Before(earliest) {
			fmt.Fprintf(g.stderr, "note: the capture keeps %s (CAPTURE_RETENTION): nothing before %s is found\n", icfg.Retention, earliest.UTC().Format(time.RFC3339))
		}
	} else {
		a, b, ok := strings.Cut(q.conversation, ",")
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		if !ok || a == "" || b == "" || strings.Contains(b, ",") || a == b {
			return usagef("--conversation %q: give two different accounts, A,B", q.conversation)
		}
		found, res, err := q.readConversation(ctx, g, one, rdb, a, b, since, until)
		if err != nil {
			return err
		}
		rows = found
		what = fmt.Sprintf("conversation %s,%s, %s, from admin_getroammsg (%d pages; %d messages already recalled skipped)", a, b, span, res.Pages, res.AlreadyRecalled)
		rerun = "--conversation " + a + "," + b
	}
	rerun = fmt.Sprintf("recallq campaign start --name %s %s --since %s --until %s", name, rerun, since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))

	if rejectsPath == "" {
		rejectsPath = campaign.DefaultRejectsPath(name, "")
	}
	rejects := newRejectsOut(g, rejectsPath, !q.dryRun, foundMessage)
	cfg := campaign.ImportConfig{Redis: rdb, Name: name, SDKAppID: id, RequestedBy: requestedBy, Reason: reason, Rejects: rejects.add}
	if q.dryRun {
		c, err := campaign.CheckRows(cfg, rows)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "campaign %s (dry run): %s\n", name, what)
		fmt.Fprintf(g.stdout, "  one-to-one messages to queue  %d\n", c.C2C)
		if q.sender != "" {
			fmt.Fprintf(g.stdout, "  group messages to queue       %d\n", c.Group)
		}
		fmt.Fprintf(g.stdout, "  rejected (not queued)         %d\n", c.Rejected)
		rejects.more(int64(c.Rejected))
		fmt.Fprintln(g.stdout, "nothing was queued (--dry-run)")
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintf(g.stdout, "campaign %s: no message found (%s); nothing to queue, no campaign created\n", name, what)
		return nil
	}
	found := fmt.Sprintf("%d one-to-one messages", len(rows)-groups)
	if q.sender != "" {
		found += fmt.Sprintf(" and %d group messages", groups)
	}
	fmt.Fprintf(g.stdout, "campaign %s: %s found (%s)\n", name, found, what)
	res, err := campaign.ImportRows(ctx, cfg, "query: "+strings.TrimPrefix(rerun, "recallq campaign start --name "+name+" "), rows)
	err = rejects.close(err)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("campaign %s: interrupted after %d new rows (kept); to queue the rest run: %s", name, res.New, rerun)
		}
		if errors.Is(err, campaign.ErrInputChanged) {
			return usageError{fmt.Errorf("%w; a query campaign re-run must give the same absolute window, e.g.: %s", err, rerun)}
		}
		return campaignErr(err)
	}
	fmt.Fprintf(g.stdout, "campaign %s: %d new, %d already queued, %d rejected%s\n", name, res.New, res.Already, res.Rejected, rejects.listed(res.Rejected))
	rejects.more(res.Rejected)
	reopenedLine(g, name, res)
	fmt.Fprintf(g.stdout, "workers (recallq worker) recall them at the shared rate; follow with: recallq campaign status %s --watch\n", name)
	fmt.Fprintf(g.stdout, "if interrupted, run again with the same window: %s\n", rerun)
	if res.Rejected > 0 {
		// Unlike a file's, a query's rejects are messages found, and
		// counted by --dry-run, that no run of this query will recall.
		return fmt.Errorf("campaign %s: %d of the %d messages found were rejected and will not be recalled (the others are queued): %s lists each with the reason; fix those that can be and queue them with: recallq campaign start --name NEW-NAME %s",
			name, res.Rejected, len(rows), rejectsPath, rejectsPath)
	}
	return nil
}

// foundMessage names a message a query found, for its reject: its
// number among those found and its identifiers.
func foundMessage(r campaign.Reject) string {
	if r.GroupID != "" || r.MsgSeq != "" {
		return fmt.Sprintf("message %d (GroupId %s, TopicId %s, MsgSeq %s)", r.Line, r.GroupID, r.TopicID, r.MsgSeq)
	}
	return fmt.Sprintf("message %d (%s to %s, MsgKey %s)", r.Line, r.FromAccount, r.ToAccount, r.MsgKey)
}

// readConversation pages through admin_getroammsg under the app's own
// bucket for that API in the shared limiter.
// The app's key and settings are an apps file's when it has a key, else
// the single-app environment's.
func (q *queryFlags) readConversation(ctx context.Context, g *globals, app apps.App, rdb redis.UniversalClient, a, b string, since, until time.Time) ([]campaign.Row, campaign.ConversationResult, error) {
	var res campaign.ConversationResult
	id := app.SDKAppID
	tc := tim.Config{SDKAppID: id, SecretKey: string(app.SecretKey), Admin: app.Admin, Region: app.Region, Endpoint: app.Endpoint}
	if app.SecretKey == "" {
		key, err := secretKey()
		if err != nil {
			return nil, res, err
		}
		tc = tim.Config{SDKAppID: id, SecretKey: key, Admin: q.admin, Region: q.region, Endpoint: q.endpoint}
	}
	api, err := tim.New(tc)
	if err != nil {
		return nil, res, usageError{err}
	}
	log, err := g.logger()
	if err != nil {
		return nil, res, err
	}
	lim, err := limiter.New(limiter.Config{Redis: rdb, App: id, API: tim.APIRoam, Rate: limiter.DefaultRate, Logger: log})
	if err != nil {
		return nil, res, err
	}
	defer lim.Close()
	var rows []campaign.Row
	res, err = campaign.Conversation(ctx, campaign.ConversationConfig{API: api, Limiter: lim, A: a, B: b, Since: since, Until: until, Logger: log},
		func(r campaign.Row) error { rows = append(rows, r); return nil })
	if err != nil {
		if errors.Is(err, campaign.ErrRoam) {
			return nil, res, fmt.Errorf("read the history of %s and %s: %w", a, b, err)
		}
		return nil, res, err
	}
	return rows, res, nil
}
