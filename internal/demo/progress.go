package demo

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far a run is: a live bar on a terminal, a plain line
// every few seconds anywhere else (a log file, CI).
type progress struct {
	bar   *progressbar.ProgressBar
	out   io.Writer
	what  string
	total int
	last  time.Time
	n     int
}

func newProgress(out io.Writer, total int, what string) *progress {
	p := &progress{out: out, what: what, total: total, last: time.Now()}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(what), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("recalls"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *progress) set(n int) {
	p.n = n
	if p.bar != nil {
		_ = p.bar.Set(n)
		return
	}
	if time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		fmt.Fprintf(p.out, "%s: %d of %d finished\n", p.what, n, p.total)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	fmt.Fprintf(p.out, "%s: %d of %d finished\n", p.what, p.n, p.total)
}
