package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/recallq/recallq/internal/httpserve"
)

// The capture serves with fasthttp, not net/http: a busy app's peak is
// tens of thousands of callbacks a second into one process, each answered
// within Tencent's patience, and net/http's per-request cost (a Request, a
// header map, a parsed query, a context) was most of the capture's own CPU
// (`recallq-lab bench-capture --net-http` compares the two). The callback
// path is served natively; the other routes (health, stats, metrics) go
// through fasthttp's adaptor to ServeHTTP, which is also what tests and
// embedders use.

// fastRequest is a callbackRequest of fasthttp.
type fastRequest struct{ c *fasthttp.RequestCtx }

func (f fastRequest) path() string             { return string(f.c.Path()) }
func (f fastRequest) method() string           { return string(f.c.Method()) }
func (f fastRequest) remoteAddr() string       { return f.c.RemoteAddr().String() }
func (f fastRequest) query(name string) string { return string(f.c.QueryArgs().Peek(name)) }
func (f fastRequest) gone() bool               { return false }

func (f fastRequest) body(limit int64) ([]byte, error) {
	b := f.c.PostBody()
	if int64(len(b)) > limit {
		return nil, errTooLong
	}
	return b, nil
}

// fastHandler serves the routes of the package comment: the callback
// path natively, every other path through ServeHTTP (which refuses what is
// not a route of its own as a callback on the wrong path). base is the
// context of every callback's Redis write (not cancelled by a shutdown,
// which lets running callbacks finish).
func (s *Server) fastHandler(base context.Context) fasthttp.RequestHandler {
	other := fasthttpadaptor.NewFastHTTPHandler(s)
	return func(c *fasthttp.RequestCtx) {
		if !bytes.HasPrefix(c.Path(), []byte(CallbackPath)) {
			other(c)
			return
		}
		status, info := s.serveCallback(base, fastRequest{c})
		writeFastAnswer(c, status, info)
	}
}

func writeFastAnswer(c *fasthttp.RequestCtx, status int, info string) {
	c.SetStatusCode(status)
	c.SetContentType("application/json")
	c.SetBody(answerBody(status, info))
}

// newFastServer is the fasthttp server of Serve.
func (s *Server) newFastServer(base context.Context) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: s.fastHandler(base),
		// A body over the limit is refused before the handler runs: count
		// it as the handler would have.
		ErrorHandler: func(c *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				s.refused[RefusedTooLong].Add(1)
				writeFastAnswer(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", s.cfg.MaxBodyBytes))
				c.SetConnectionClose()
				return
			}
			s.log.Debug("capture: a request could not be read", "error", readErrorKind(err), "remote", c.RemoteAddr().String())
			writeFastAnswer(c, http.StatusBadRequest, "the request could not be read as HTTP/1.1 (headers over 8 KiB?)")
			c.SetConnectionClose()
		},
		Name:                  "recallq-capture",
		NoDefaultServerHeader: true,
		MaxRequestBodySize:    int(s.cfg.MaxBodyBytes),
		// The request line and headers must fit: Tencent's callback URL
		// is a few hundred bytes; 8 KiB leaves room for a proxy's headers.
		ReadBufferSize:  8 << 10,
		ReadTimeout:     30 * time.Second,
		WriteTimeout:    30 * time.Second,
		IdleTimeout:     2 * time.Minute,
		CloseOnShutdown: true,
		Logger:          fastLogger{s.log},
	}
}

// fastLogger sends fasthttp's own lines (a connection that broke mid
// request, say) to the log at debug level: a flood of bad clients must not
// flood the log. Their errors are logged by kind only (readErrorKind).
type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = readErrorKind(err)
		}
	}
	l.log.Debug("capture: " + fmt.Sprintf(format, args...))
}

// readErrorKind names what went wrong reading a request without
// fasthttp's text, which quotes the request it could not read: the
// callback URL's path secret and a Sign that anyone could replay with
// another body until it expires.
func readErrorKind(err error) string {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		return "the request line and headers are over the 8 KiB read buffer"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "the body is over the limit"
	case errors.As(err, &ne) && ne.Timeout():
		return "the client was too slow (read timeout)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "the connection closed mid request"
	default:
		return fmt.Sprintf("malformed HTTP/1.1 request (%T)", err)
	}
}

// Serve serves on ln until ctx ends, then shuts down gracefully within
// Config.ShutdownTimeout. Once it serves it calls ready, if not nil, with
// the base URL. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func(url string)) error {
	srv := fastServer{s.newFastServer(context.WithoutCancel(ctx))}
	return httpserve.Run(ctx, s.log, "capture", srv, ln, s.cfg.ShutdownTimeout, ready)
}

// fastServer is a fasthttp server as httpserve runs it.
type fastServer struct{ *fasthttp.Server }

func (f fastServer) Shutdown(ctx context.Context) error { return f.ShutdownWithContext(ctx) }

// Close does nothing: fasthttp cannot cut off a request still running after
// Shutdown gave up, and the process is about to exit.
func (f fastServer) Close() error { return nil }
