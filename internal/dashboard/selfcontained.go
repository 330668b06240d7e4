package dashboard

import (
	"bytes"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// contentSecurityPolicy lets the console load only what this server
// serves. asynqmon's page needs its inline bootstrap script and the inline
// styles its component library writes; nothing else.
const contentSecurityPolicy = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// externalLink matches a <link> to another host: asynqmon's index loads
// the Roboto and Material Icons fonts from fonts.googleapis.com. Without
// them the page uses the system's sans-serif (the component library lists
// Helvetica and Arial after Roboto) and draws its icons as SVG, so it
// loses nothing it needs.
var externalLink = regexp.MustCompile(`(?i)<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//[^>]*>`)

// selfContained serves h's HTML pages without links to other hosts, so
// that opening the dashboard tells no third party who looks at it and
// works offline. Other responses pass through untouched.
func selfContained(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &htmlRewriter{ResponseWriter: w}
		h.ServeHTTP(rw, r)
		rw.flush()
	})
}

// htmlRewriter holds back an HTML response to drop its external links;
// anything else it streams.
type htmlRewriter struct {
	http.ResponseWriter
	wroteHeader bool
	html        bool
	code        int
	buf         bytes.Buffer
}

func (rw *htmlRewriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	rw.wroteHeader, rw.code = true, code
	rw.html = strings.HasPrefix(rw.Header().Get("Content-Type"), "text/html")
	if !rw.html {
		rw.ResponseWriter.WriteHeader(code)
	}
}

func (rw *htmlRewriter) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		if rw.Header().Get("Content-Type") == "" {
			rw.Header().Set("Content-Type", http.DetectContentType(b))
		}
		rw.WriteHeader(http.StatusOK)
	}
	if rw.html {
		return rw.buf.Write(b)
	}
	return rw.ResponseWriter.Write(b)
}

// flush writes a held-back page, rewritten.
func (rw *htmlRewriter) flush() {
	if !rw.html {
		return
	}
	page := externalLink.ReplaceAll(rw.buf.Bytes(), nil)
	rw.Header().Set("Content-Length", strconv.Itoa(len(page)))
	rw.ResponseWriter.WriteHeader(rw.code)
	_, _ = rw.ResponseWriter.Write(page)
}

func (rw *htmlRewriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
