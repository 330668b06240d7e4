package demo

import (
	"io"

	"github.com/recallq/recallq/internal/progress"
)

// bar shows how far the demo is (see package progress).
type bar struct{ b *progress.Bar }

func newProgress(out io.Writer, total int, what string) *bar {
	return &bar{progress.New(out, what, progress.Options{Total: int64(total), Unit: "recalls", ShowCount: true, PredictTime: true})}
}

func (p *bar) set(n int) { p.b.Set(int64(n)) }

func (p *bar) done() { p.b.Done() }
