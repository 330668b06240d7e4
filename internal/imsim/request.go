package imsim

import (
	"io"
	"net/http"
	"time"

	"github.com/recallq/recallq/internal/sleep"
)

// prelude is what every recall API (admin_msgwithdraw, group_msg_recall)
// does before it looks at the request, steps 1 and 2 of the package
// comment: a refusal cuts the connection, the body is read (so that
// net/http notices a client that hangs up), the latency is slept, and an
// outage answers HTTP 502. It returns the body, the error reading it, the
// faults in force when the call arrived, and whether the call goes on;
// when it does not, the request was answered (and counted in c) or cut.
func (s *Sim) prelude(w http.ResponseWriter, r *http.Request, c *counters) (data []byte, readErr error, f Faults, at stamp, goOn bool) {
	ctx := r.Context()
	started := s.cfg.Now()
	s.cutIfRefusing(ctx)
	// Read the body before the latency: net/http only notices a client
	// that hangs up once the body has been read to its end (it then
	// watches the connection and cancels ctx).
	data, readErr = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	s.mu.Lock()
	f = s.faults
	latency := f.LatencyMin
	if f.LatencyMax > f.LatencyMin {
		latency += time.Duration(s.rng.Int64N(int64(f.LatencyMax-f.LatencyMin) + 1))
	}
	if f.LatencyTail != (Tail{}) {
		latency = f.LatencyTail.draw(s.rng) // tail.go
	}
	s.mu.Unlock()
	if sleep.For(ctx, latency) != nil {
		s.log.DebugContext(ctx, "imsim: client went away during latency", "latency", latency)
		return nil, nil, f, stamp{}, false
	}
	at = stamp{read: started, latency: latency}
	s.cutIfRefusing(ctx)

	// The gateway is down: nothing behind it runs.
	if now := s.Faults(); s.cfg.Now().Before(now.OutageUntil) {
		c.httpError()
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n")
		s.log.DebugContext(ctx, "imsim: outage", "status", http.StatusBadGateway)
		return nil, nil, f, stamp{}, false
	}
	return data, readErr, f, at, true
}

// gate runs the checks every recall API shares once its method and path
// are right, steps 4 to 8 of the package comment: the query string, the
// UserSig and the admin (checkQuery), then the API's own rate limit m,
// whose rejection answers rateCode, then Faults.CodeUntil. It returns
// codeOK when the call may go on.
func (s *Sim) gate(r *http.Request, m *meter, rateCode int, at stamp) (int, string) {
	if code, detail := s.checkQuery(r.URL.RawQuery); code != codeOK {
		return code, detail
	}
	if !m.arrive(s.cfg.Now, at) {
		return rateCode, ""
	}
	if f := s.Faults(); !f.CodeUntil.IsZero() && s.cfg.Now().Before(f.CodeUntil) {
		return f.Code, "injected fault"
	}
	return codeOK, ""
}
