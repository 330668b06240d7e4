package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/progress"
	"github.com/recallq/recallq/worker"
)

// maxRejectsShown is how many rejects start prints; the rest are in the file.
const maxRejectsShown = 10

func newCampaignCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "campaign",
		Short: "Bulk recall campaigns: start, status, list, export, pause, resume, cancel",
		Long: `A campaign recalls every message of a file (CSV or JSON Lines, any size). The
file is streamed into a backlog in Redis; workers ("recallq worker") feed it to
the bulk lane a few seconds of work at a time, always after single recalls, and
count how each recall ended. Dead letters are kept, all of them, for export.`,
	}
	cmd.AddCommand(
		newCampaignStartCmd(g),
		newCampaignStatusCmd(g),
		newCampaignListCmd(g),
		newCampaignExportCmd(g),
		newCampaignStateCmd(g, "pause"),
		newCampaignStateCmd(g, "resume"),
		newCampaignStateCmd(g, "cancel"),
	)
	return cmd
}

// campaignErr turns the campaign package's input errors into usage errors.
func campaignErr(err error) error {
	for _, target := range []error{campaign.ErrBadName, campaign.ErrNotFound, campaign.ErrBadInput,
		campaign.ErrInputChanged, campaign.ErrState, campaign.ErrOtherApp} {
		if errors.Is(err, target) {
			return usageError{err}
		}
	}
	return err
}

func newCampaignStartCmd(g *globals) *cobra.Command {
	var app appFlags
	var name, format, rejectsPath, requestedBy, reason string
	var q queryFlags
	cmd := &cobra.Command{
		Use:   "start --name NAME (FILE | --sender USER --since 6h | --conversation A,B --since T)",
		Short: "Import a file of messages to recall (CSV, JSON Lines, or - for stdin), or find them by sender or conversation",
		Long: `Import FILE into the campaign NAME, creating it. FILE is CSV with the header
From_Account,To_Account,MsgKey for one-to-one messages, or GroupId,MsgSeq (and
TopicId for a topic's messages) for group messages (any order, other columns
ignored), or JSON Lines with those keys, or - for stdin; the format comes from
the extension (.csv, .jsonl, .ndjson), else from the content. Each row is checked; bad rows are
reported with their line number and written to the rejects file, the others
are queued. Memory stays flat whatever the size.

Run the same command again after a crash or Ctrl-C: the rows already queued are
skipped (and counted as "already queued"), the rest are queued. So are rows
appended to FILE since: a campaign that was done runs again for them.

Instead of FILE, --sender USER finds what USER sent in the window (--since,
--until; --to narrows it to one recipient) in the index "recallq capture" keeps
from Tencent's after-send callbacks, and --conversation A,B finds the
one-to-one history of A and B with admin_getroammsg (its own 200 calls/s in the
shared limiter; messages already recalled are skipped). --dry-run prints how
many messages of each kind would be queued and queues nothing. --sender finds
the user's group messages too, and queues them with the one-to-one ones.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := campaign.ValidateName(name); err != nil {
				return usagef("--name: %v", err)
			}
			if q.active() {
				if len(args) > 0 {
					return usagef("give a FILE or --sender/--conversation, not both")
				}
				return runQueryStart(cmd, g, &app, &q, name, rejectsPath, requestedBy, reason)
			}
			if len(args) != 1 {
				return usagef("give the FILE of messages to recall (or - for stdin), or --sender USER / --conversation A,B with --since")
			}
			one, err := app.oneApp(cmd, "campaign start", false)
			if err != nil {
				return err
			}
			id := one.SDKAppID
			f, err := campaign.ParseFormat(format)
			if err != nil {
				return usagef("--format: %v", err)
			}
			conn, err := app.redis()
			if err != nil {
				return err
			}
			rdb := conn.Client()
			defer rdb.Close()
			// A campaign that cannot take the import (cancelled, another
			// app's) is refused before the input is read or a bar shows.
			if err := campaign.CheckImport(ctx, rdb, name, id); err != nil {
				return campaignErr(err)
			}
			source := args[0]
			var in io.Reader
			size := int64(-1)
			if source == "-" {
				// Ctrl-C must stop the import even while stdin is idle.
				in = interruptible(ctx, cmd.InOrStdin())
			} else {
				file, err := os.Open(source)
				if err != nil {
					return usagef("cannot read %s: %v", source, err)
				}
				defer file.Close()
				if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
					size = st.Size()
				}
				in = file
			}
			input, err := campaign.OpenInput(in, source, f)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("campaign %s: interrupted before any row was read; nothing was queued", name)
				}
				return campaignErr(err)
			}
			what := source
			if source == "-" {
				what = "stdin"
			}
			fmt.Fprintf(g.stdout, "campaign %s: reading %s as %s (%s)\n", name, what, strings.ToUpper(string(input.Format)), input.FormatHow)

			if rejectsPath == "" {
				rejectsPath = campaign.DefaultRejectsPath(name, source)
			}
			rejects := newRejectsOut(g, rejectsPath, true, func(r campaign.Reject) string { return fmt.Sprintf("line %d", r.Line) })
			bar := progress.New(g.stderr, "importing", progress.Options{Total: size})
			started := time.Now()
			res, err := campaign.Import(ctx, campaign.ImportConfig{
				Redis: rdb, Name: name, SDKAppID: id, RequestedBy: requestedBy, Reason: reason,
				Rejects: rejects.add,
				Progress: func(p campaign.ImportProgress) {
					bar.Describe(importLine(p, size, time.Since(started)))
					bar.Set(p.Bytes)
				},
			}, input)
			bar.Done()
			err = rejects.close(err)
			if res.Resumed {
				fmt.Fprintf(g.stdout, "campaign %s: resumed an interrupted import: %d rows were queued by an earlier run and were skipped\n", name, res.Already)
			}
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("campaign %s: interrupted after %d new rows (kept); run the same command again to queue the rest", name, res.New)
				}
				return campaignErr(err)
			}
			elapsed := time.Since(started)
			fmt.Fprintf(g.stdout, "campaign %s: read %d lines (%d rows): %d new, %d already queued, %d rejected%s", name, res.Lines, res.Records, res.New, res.Already, res.Rejected, rejects.listed(res.Rejected))
			fmt.Fprintf(g.stdout, "; %s, %.0f rows/s\n", elapsed.Round(time.Millisecond), float64(res.Records)/max(elapsed.Seconds(), 1e-9))
			rejects.more(res.Rejected)
			reopenedLine(g, name, res)
			fmt.Fprintf(g.stdout, "workers (recallq worker) recall them at the shared rate; follow with: recallq campaign status %s --watch\n", name)
			return nil
		},
	}
	app.register(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "the campaign's name: letters, digits, '.', '_', '-' (required)")
	fl.StringVar(&format, "format", "auto", "auto, csv or jsonl")
	fl.StringVar(&rejectsPath, "rejects", "", "where to write the rejected rows (default NAME.rejects.csv beside FILE, or in the working directory for stdin, --sender and --conversation)")
	fl.StringVar(&requestedBy, "requested-by", "", "who asks for the campaign (kept with each task)")
	fl.StringVar(&reason, "reason", "", "why (kept with each task)")
	q.register(cmd)
	return cmd
}

// rejectsOut reports the rejects of an import, of a file or of a query
// (and those a query's --dry-run finds): the first maxRejectsShown on
// stderr, each named by label (a file's line, a query's message), and
// every one in the rejects file at path (none in a dry run).
type rejectsOut struct {
	g     *globals
	path  string
	file  *campaign.RejectsFile // nil: shown, not written
	label func(campaign.Reject) string
	shown int
}

func newRejectsOut(g *globals, path string, write bool, label func(campaign.Reject) string) *rejectsOut {
	o := &rejectsOut{g: g, path: path, label: label}
	if write {
		o.file = &campaign.RejectsFile{Path: path}
	}
	return o
}

// add is ImportConfig.Rejects.
func (o *rejectsOut) add(r campaign.Reject) error {
	if o.shown < maxRejectsShown {
		o.shown++
		fmt.Fprintf(o.g.stderr, "%s: %s\n", o.label(r), r.Reason)
	}
	if o.file == nil {
		return nil
	}
	return o.file.Write(r)
}

// close closes the rejects file; it returns err, the import's, or else
// the file's.
func (o *rejectsOut) close(err error) error {
	if o.file == nil {
		return err
	}
	if cerr := o.file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", o.path, cerr)
	}
	return err
}

// listed is what the summary line adds when there were rejects.
func (o *rejectsOut) listed(rejected int64) string {
	if rejected == 0 || o.file == nil {
		return ""
	}
	return " (listed in " + o.path + ")"
}

// more says how many rejects were not shown, and where they are.
func (o *rejectsOut) more(rejected int64) {
	if int64(o.shown) >= rejected {
		return
	}
	where := "in " + o.path
	if o.file == nil {
		where = "(the run without --dry-run writes every one to " + o.path + ")"
	}
	fmt.Fprintf(o.g.stderr, "... and %d more rejects %s\n", rejected-int64(o.shown), where)
}

// reopenedLine says that the new rows of a re-run made a done campaign
// running again.
func reopenedLine(g *globals, name string, res campaign.ImportResult) {
	if res.Reopened {
		fmt.Fprintf(g.stdout, "campaign %s was done: it is running again for the %d new rows\n", name, res.New)
	}
}

// importLine describes an import's progress.
func importLine(p campaign.ImportProgress, size int64, elapsed time.Duration) string {
	rate := float64(p.Records) / max(elapsed.Seconds(), 1e-9)
	s := fmt.Sprintf("%d rows, %.0f rows/s", p.Records, rate)
	if p.Already > 0 {
		s += fmt.Sprintf(" (%d already queued)", p.Already)
	}
	if p.Rejected > 0 {
		s += fmt.Sprintf(", %d rejected", p.Rejected)
	}
	if size > 0 && p.Bytes > 0 {
		frac := float64(p.Bytes) / float64(size)
		eta := time.Duration(float64(elapsed) * (1 - frac) / frac)
		s += fmt.Sprintf(", %.0f%%, ETA %s", 100*frac, eta.Round(time.Second))
	}
	return s
}

// manager opens a campaign.Manager for the settings.
func (a *appFlags) manager(rate float64) (*campaign.Manager, func(), error) {
	conn, err := a.redis()
	if err != nil {
		return nil, nil, err
	}
	rdb := conn.Client()
	m, err := campaign.NewManager(campaign.ManagerConfig{Redis: rdb, Queue: conn.AsynqOpt(), Rate: rate})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return m, func() { m.Close(); rdb.Close() }, nil
}

// rateFlag reads RECALL_RATE for ETAs (the limiter's own rate wins when a
// worker publishes it).
func rateFlag(cmd *cobra.Command, rate *float64) {
	def := DefaultRate
	if v, err := strconv.ParseFloat(os.Getenv("RECALL_RATE"), 64); err == nil && v > 0 {
		def = v
	}
	cmd.Flags().Float64Var(rate, "rate", def, "calls per second assumed for the ETA when no worker publishes the shared limiter's (env RECALL_RATE)")
}

func newCampaignStatusCmd(g *globals) *cobra.Command {
	var app appFlags
	var watch, asJSON bool
	var every time.Duration
	var rate float64
	cmd := &cobra.Command{
		Use:   "status NAME [--watch] [--json]",
		Short: "Show a campaign's counts, progress and ETA",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if every <= 0 {
				return usagef("--interval must be positive; got %s", every)
			}
			names, err := appNames()
			if err != nil {
				return err
			}
			m, closeFn, err := app.manager(rate)
			if err != nil {
				return err
			}
			defer closeFn()
			ctx := cmd.Context()
			st, err := m.Status(ctx, args[0])
			if err != nil {
				return campaignErr(err)
			}
			if asJSON {
				return watchJSON(ctx, g.stdout, m, st, watch, every)
			}
			printStatus(g.stdout, st, names)
			if !watch || final(st.State) {
				return nil
			}
			return watchBar(ctx, g, m, st, every, names)
		},
	}
	app.register(cmd, false)
	rateFlag(cmd, &rate)
	cmd.Flags().BoolVar(&watch, "watch", false, "follow live until the campaign ends (Ctrl-C to stop)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (one object per line with --watch)")
	cmd.Flags().DurationVar(&every, "interval", time.Second, "how often --watch refreshes")
	return cmd
}

func final(s campaign.State) bool { return s == campaign.StateDone || s == campaign.StateCancelled }

func watchJSON(ctx context.Context, out io.Writer, m *campaign.Manager, st campaign.Status, watch bool, every time.Duration) error {
	enc := json.NewEncoder(out)
	for {
		if err := enc.Encode(jsonStatus(st)); err != nil {
			return err
		}
		if !watch || final(st.State) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
		var err error
		if st, err = m.Status(ctx, st.Name); err != nil {
			return campaignErr(err)
		}
	}
}

// statusJSON is a campaign.Status as --json prints it: eta_seconds is
// left out while the campaign does not move ("waiting" says why), where
// status prints "not moving" instead of an ETA.
type statusJSON struct {
	campaign.Status
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
}

func jsonStatus(st campaign.Status) statusJSON {
	v := statusJSON{Status: st}
	if st.Waiting == "" {
		v.ETASeconds = &st.ETASeconds
	}
	return v
}

func watchBar(ctx context.Context, g *globals, m *campaign.Manager, st campaign.Status, every time.Duration, names map[uint64]string) error {
	bar := progress.New(g.stderr, st.Name, progress.Options{Total: st.Queued, Every: max(every, 2*time.Second)})
	prev, prevAt := st.Ended(), time.Now()
	measured := 0.0
	for !final(st.State) {
		select {
		case <-ctx.Done():
			bar.Done()
			return nil
		case <-time.After(every):
		}
		var err error
		if st, err = m.Status(ctx, st.Name); err != nil {
			bar.Done()
			return campaignErr(err)
		}
		now := time.Now()
		if dt := now.Sub(prevAt).Seconds(); dt > 0 {
			r := float64(st.Ended()-prev) / dt
			measured = 0.7*measured + 0.3*r
		}
		prev, prevAt = st.Ended(), now
		bar.Describe(fmt.Sprintf("%s; %d recalled, %d already, %d dead, %d retrying, %d pending; %.0f/s now, %s",
			st.State, st.Recalled, st.AlreadyRecalled, st.DeadLettered, st.Retrying, st.Pending, measured, etaText(st)))
		if st.Queued > 0 {
			bar.SetTotal(st.Queued) // grows while the import runs
			bar.Set(st.Ended())
		}
	}
	bar.Done()
	printStatus(g.stdout, st, names)
	return nil
}

func etaText(st campaign.Status) string {
	switch {
	case st.State == campaign.StatePaused:
		return "paused"
	case st.State != campaign.StateRunning:
		return string(st.State)
	case st.Waiting != "":
		return "not moving: " + st.Waiting
	case st.Remaining() == 0 && !st.ImportDone:
		return "waiting for the import"
	}
	return fmt.Sprintf("ETA %s at %.1f calls/s (%s)", st.ETA().Round(time.Second), st.Rate, st.RateSource)
}

// printStatus prints st; names are the configured apps' (appNames).
func printStatus(out io.Writer, st campaign.Status, names map[uint64]string) {
	fmt.Fprintf(out, "campaign %s (app %s): %s\n", st.Name, appLabel(st.SDKAppID, names), st.State)
	imp := "import complete"
	if !st.ImportDone {
		imp = "import still running (or interrupted: run the same start again)"
	}
	fmt.Fprintf(out, "  from %s (%s), created %s, %s\n", st.Source, st.Format, st.Created.Format(time.RFC3339), imp)
	row := func(label string, n int64, note string) {
		fmt.Fprintln(out, strings.TrimRight(fmt.Sprintf("  %-18s %10d  %s", label, n, note), " "))
	}
	rej := ""
	if st.Rejected > 0 {
		rej = fmt.Sprintf("(%d rejected at import)", st.Rejected)
	}
	row("queued", st.Queued, rej)
	row("recalled", st.Recalled, "")
	row("already recalled", st.AlreadyRecalled, "(20023)")
	row("dead-lettered", st.DeadLettered, "(recallq campaign export "+st.Name+")")
	codes := make([]string, 0, len(st.DeadByCode))
	for c := range st.DeadByCode {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		n, err := strconv.Atoi(c)
		if err != nil {
			n = worker.NoAnswer
		}
		// CodeMeaning knows both APIs' codes: a campaign holds one-to-one
		// and group recalls (10015 is group_msg_recall's).
		row("  "+c, st.DeadByCode[c], campaign.CodeMeaning(n))
	}
	row("retrying", st.Retrying, "")
	row("pending", st.Pending, fmt.Sprintf("(backlog %d, in the bulk queue %d)", st.Backlog, st.InQueue))
	if st.Duplicates > 0 {
		row("duplicates", st.Duplicates, "(queued already: twice in the file, or by another campaign)")
	}
	if st.Cancelled > 0 {
		row("cancelled", st.Cancelled, "(removed before they were called)")
	}
	if st.Deleted > 0 {
		row("deleted", st.Deleted, "(deleted by hand in asynqmon or the asynq CLI before they ended)")
	}
	if st.Unaccounted > 0 {
		row("unaccounted", st.Unaccounted, "(left asynq without a recorded end)")
	}
	pct := 100.0
	if st.Queued > 0 {
		pct = 100 * float64(st.Ended()) / float64(st.Queued)
	}
	fmt.Fprintf(out, "  %s %.1f%%, %s\n", textBar(pct, 30), pct, etaText(st))
	if !st.Finished.IsZero() {
		fmt.Fprintf(out, "  finished %s\n", st.Finished.Format(time.RFC3339))
	}
}

func textBar(pct float64, width int) string {
	n := int(pct / 100 * float64(width))
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

func newCampaignListCmd(g *globals) *cobra.Command {
	var app appFlags
	var asJSON bool
	var rate float64
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List campaigns, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names, err := appNames()
			if err != nil {
				return err
			}
			m, closeFn, err := app.manager(rate)
			if err != nil {
				return err
			}
			defer closeFn()
			all, err := m.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]statusJSON, 0, len(all))
				for _, s := range all {
					out = append(out, jsonStatus(s))
				}
				return json.NewEncoder(g.stdout).Encode(out)
			}
			if len(all) == 0 {
				fmt.Fprintln(g.stdout, "no campaigns; start one with: recallq campaign start --name NAME FILE")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tAPP\tQUEUED\tENDED\tRECALLED\tALREADY\tDEAD\tRETRYING\tPENDING\tCREATED\tETA")
			for _, s := range all {
				eta := "-"
				switch {
				case s.State != campaign.StateRunning:
				case s.Waiting != "": // status says why
					eta = "not moving"
				default:
					eta = s.ETA().Round(time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f%%\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.State, appLabel(s.SDKAppID, names), s.Queued,
					100*float64(s.Ended())/float64(max(s.Queued, 1)), s.Recalled, s.AlreadyRecalled, s.DeadLettered,
					s.Retrying, s.Pending, s.Created.Format(time.RFC3339), eta)
			}
			return tw.Flush()
		},
	}
	app.register(cmd, false)
	rateFlag(cmd, &rate)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newCampaignExportCmd(g *globals) *cobra.Command {
	var app appFlags
	var output string
	var history bool
	cmd := &cobra.Command{
		Use:   "export NAME [--output FILE] [--history]",
		Short: "Write every dead-lettered recall of a campaign as CSV",
		Long: `Write every dead-lettered recall of the campaign as CSV: From_Account,
To_Account, MsgKey, code, meaning, detail, time, GroupId, TopicId, MsgSeq (a
one-to-one message fills the first three, a group message the last three).
recallq keeps them all itself (asynq's archive keeps at most 10,000 tasks and
trims the rest). The export is a campaign file: fix the cause and start a new
campaign from it. A dead letter run again (from asynqmon or the asynq CLI) that
then ended otherwise is no longer listed; --history lists every row of the
audit, those too, with a row for how each re-run ended.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, closeFn, err := app.manager(0)
			if err != nil {
				return err
			}
			defer closeFn()
			out := g.stdout
			if output != "" && output != "-" {
				f, err := os.Create(output)
				if err != nil {
					return usagef("--output: %v", err)
				}
				defer f.Close()
				out = f
			}
			export := m.Export
			if history {
				export = m.ExportHistory
			}
			n, err := export(cmd.Context(), args[0], out)
			if err != nil {
				return campaignErr(err)
			}
			if output != "" && output != "-" {
				fmt.Fprintf(g.stderr, "wrote %d dead letters to %s\n", n, output)
			}
			return nil
		},
	}
	app.register(cmd, false)
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default stdout)")
	cmd.Flags().BoolVar(&history, "history", false, "the whole audit: also dead letters run again since, and how each re-run ended")
	return cmd
}

func newCampaignStateCmd(g *globals, verb string) *cobra.Command {
	var app appFlags
	short := map[string]string{
		"pause":  "Stop calling a campaign's recalls; its queued tasks go back to its backlog",
		"resume": "Start calling a paused campaign's recalls again",
		"cancel": "Remove every recall of a campaign not yet called, and say how many",
	}[verb]
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, closeFn, err := app.manager(0)
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, name := cmd.Context(), args[0]
			switch verb {
			case "pause":
				r, err := m.Pause(ctx, name)
				if err != nil {
					return campaignErr(err)
				}
				fmt.Fprintf(g.stdout, "campaign %s paused: %d queued tasks went back to the backlog", name, r.Returned)
				if r.Running > 0 {
					fmt.Fprintf(g.stdout, "; %d being called end normally", r.Running)
				}
				fmt.Fprintf(g.stdout, "\nresume with: recallq campaign resume %s\n", name)
			case "resume":
				was, err := m.Resume(ctx, name)
				if err != nil {
					return campaignErr(err)
				}
				if was {
					fmt.Fprintf(g.stdout, "campaign %s resumed\n", name)
				} else {
					fmt.Fprintf(g.stdout, "campaign %s was not paused; it is running\n", name)
				}
			case "cancel":
				r, err := m.Cancel(ctx, name)
				if err != nil {
					return campaignErr(err)
				}
				fmt.Fprintf(g.stdout, "campaign %s cancelled: removed %d recalls that had not been called (%d from the backlog, %d queued)",
					name, r.Backlog+int64(r.Queued), r.Backlog, r.Queued)
				if r.Retrying > 0 {
					fmt.Fprintf(g.stdout, " and %d waiting to be retried", r.Retrying)
				}
				fmt.Fprintln(g.stdout)
				if r.Ended > 0 {
					fmt.Fprintf(g.stdout, "%d being called when the cancel came ended and are counted\n", r.Ended)
				}
				if r.StillRunning > 0 {
					fmt.Fprintf(g.stdout, "%d are still being called; they end on their own (run cancel again to remove their retries)\n", r.StillRunning)
				}
			}
			return nil
		},
	}
	app.register(cmd, false)
	return cmd
}
