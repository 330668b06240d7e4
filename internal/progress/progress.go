// Package progress shows how far a long job is: a live bar on a terminal,
// a plain line every few seconds anywhere else (a log file, CI), so logs
// stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// DefaultEvery is how often a plain line is printed off a terminal.
const DefaultEvery = 2 * time.Second

// Options shapes a Bar.
type Options struct {
	// Total is the amount of work, in Set's unit; -1 when unknown (a
	// spinner on a terminal).
	Total int64
	// Unit names what Set counts ("recalls"), shown with the count and the
	// rate when ShowCount is set.
	Unit string
	// ShowCount shows "n/total" and the rate per second on the bar.
	ShowCount bool
	// PredictTime shows elapsed and remaining time from the bar's own
	// measured rate. Off when the caller puts its own ETA in Describe.
	PredictTime bool
	// Every: default DefaultEvery.
	Every time.Duration
}

// Bar is one progress display. It is not safe for concurrent use.
type Bar struct {
	bar   *progressbar.ProgressBar
	out   io.Writer
	what  string
	o     Options
	last  time.Time
	n     int64
	desc  string
	plain bool
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New starts a Bar that writes to out.
func New(out io.Writer, what string, o Options) *Bar {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	b := &Bar{out: out, what: what, o: o, last: time.Now(), plain: !IsTerminal(out)}
	if !b.plain {
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(out), progressbar.OptionSetDescription(what),
			progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionSetPredictTime(o.PredictTime),
		}
		if o.ShowCount {
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(o.Unit))
		}
		b.bar = progressbar.NewOptions64(o.Total, opts...)
	}
	return b
}

// Set moves the bar to n.
func (b *Bar) Set(n int64) {
	b.n = n
	if b.bar != nil {
		_ = b.bar.Set64(n)
		return
	}
	if time.Since(b.last) >= b.o.Every {
		b.last = time.Now()
		b.line()
	}
}

// SetTotal changes the amount of work (a job whose size grows as it runs).
func (b *Bar) SetTotal(total int64) {
	if total == b.o.Total {
		return
	}
	b.o.Total = total
	if b.bar != nil {
		b.bar.ChangeMax64(total)
	}
}

// Describe sets the text beside the bar (on a terminal) or the plain line.
func (b *Bar) Describe(s string) {
	b.desc = s
	if b.bar != nil {
		b.bar.Describe(b.what + ": " + s)
	}
}

// Done ends the display: the bar is cleared, or a last plain line printed.
func (b *Bar) Done() {
	if b.bar != nil {
		_ = b.bar.Finish()
		return
	}
	b.line()
}

func (b *Bar) line() {
	switch {
	case b.desc != "":
		fmt.Fprintf(b.out, "%s: %s\n", b.what, b.desc)
	case b.o.Total >= 0:
		fmt.Fprintf(b.out, "%s: %d of %d finished\n", b.what, b.n, b.o.Total)
	default:
		fmt.Fprintf(b.out, "%s: %d %s\n", b.what, b.n, b.o.Unit)
	}
}
