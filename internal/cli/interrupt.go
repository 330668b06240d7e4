package cli

import (
	"context"
	"io"
)

// interruptible returns a reader of r whose Read returns ctx's error as
// soon as ctx ends, even while r is blocked waiting for input (stdin from
// an idle pipe or terminal cannot be unblocked otherwise). A Read that was
// cut short leaves its goroutine blocked on r until r returns: fine for
// stdin in a process that is about to exit.
func interruptible(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

type readResult struct {
	buf []byte
	n   int
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	// Read into a buffer of our own: p must not be written after we return.
	done := make(chan readResult, 1)
	go func(buf []byte) {
		n, err := c.r.Read(buf)
		done <- readResult{buf, n, err}
	}(make([]byte, len(p)))
	select {
	case res := <-done:
		return copy(p, res.buf[:res.n]), res.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}
