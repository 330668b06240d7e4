package faults

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/recallq/recallq/worker"
)

// columns are the table's header.
var columns = []string{"fault", "queued", "recalled", "already", "dead-lettered (code:count)", "lost", "wrong_dl",
	"max_1s", "60007s", "retried", "circuit_open", "drain_s", "vs_baseline", "group seqs (queued/recalled/dead-lettered/lost)"}

// cells are the row's cells, in the order of columns.
func (r Row) cells() []string {
	if r.Err != "" && r.Queued == 0 {
		return []string{r.Fault, "error: " + r.Err}
	}
	drain := fmt.Sprintf("%.1f", r.Drain.Seconds())
	if !r.Drained {
		drain = fmt.Sprintf(">%.0f (not drained)", r.Drain.Seconds())
	}
	return []string{
		r.Fault,
		strconv.Itoa(r.Queued),
		strconv.Itoa(r.Recalled),
		strconv.Itoa(r.AlreadyRecalled),
		deadCell(r.DeadLettered, r.DeadByCode),
		strconv.Itoa(r.Lost),
		strconv.Itoa(r.WronglyDeadLettered),
		strconv.Itoa(r.MaxInAnyWindow),
		strconv.FormatInt(r.Rejected60007, 10),
		strconv.Itoa(r.Retried),
		strconv.Itoa(r.CircuitOpen),
		drain,
		r.vsBaseline(),
		r.Group.cell(),
	}
}

// cell is the group campaign's figures in one cell:
// "1000/980/20 (10032:20)/0", recalled counting the already recalled, and
// "off plan N" and "wrong_dl N" after them when they are not 0.
func (g GroupRow) cell() string {
	if g.Queued == 0 {
		return "-"
	}
	c := fmt.Sprintf("%d/%d/%s/%d", g.Queued, g.Recalled+g.AlreadyRecalled, deadCell(g.DeadLettered, g.DeadByCode), g.Lost)
	if g.WronglyDeadLettered > 0 {
		c += fmt.Sprintf(" wrong_dl %d", g.WronglyDeadLettered)
	}
	if g.OffPlan > 0 {
		c += fmt.Sprintf(" off_plan %d", g.OffPlan)
	}
	return c
}

// vsBaseline compares the drain with the baseline's: "x1.59 (+61.2 s)".
func (r Row) vsBaseline() string {
	if r.Fault == FaultNone || r.Baseline <= 0 || !r.Drained {
		return "-"
	}
	return fmt.Sprintf("x%.2f (%+.1f s)", r.Drain.Seconds()/r.Baseline.Seconds(), (r.Drain - r.Baseline).Seconds())
}

// summary is the row in one line, for the progress output.
func (r Row) summary() string {
	if r.Err != "" {
		return "error: " + r.Err
	}
	var b strings.Builder
	for i, c := range r.cells() {
		if i > 0 {
			fmt.Fprintf(&b, " %s=%s", columns[i], c)
		}
	}
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	return verdict + ":" + b.String()
}

// writeTable prints the rows aligned, then each row's notes.
func writeTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
	}
	tw.Flush()
	for _, r := range rows {
		verdict := "PASS"
		if !r.OK() {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "#\n# %s: %s\n", r.Fault, verdict)
		if r.Err != "" {
			fmt.Fprintf(w, "#   error: %s\n", r.Err)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "#   %s\n", n)
		}
	}
}

// deadCell is the dead-lettered count with its codes: "400 (20022:400)".
func deadCell(n int, byCode map[int]int) string {
	if n == 0 {
		return "0"
	}
	codes := make([]int, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		name := strconv.Itoa(c)
		if c == worker.NoAnswer {
			name = "no-answer"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", name, byCode[c]))
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, " "))
}
