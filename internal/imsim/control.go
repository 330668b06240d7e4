package imsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

// maxControlBody bounds the body of a control request.
const maxControlBody = 64 << 10

// serveControl serves the /sim/ endpoints listed in the package comment.
// They answer JSON; a mistake answers 4xx with {"error": "..."}.
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/sim/stats":
		if !allow(w, r, http.MethodGet) {
			return
		}
		st := s.Stats()
		st.PID = os.Getpid()
		writeJSON(w, http.StatusOK, st)
	case "/sim/faults":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, http.StatusOK, toFaultsJSON(s.Faults()))
		case http.MethodPost:
			var in faultsJSON
			if !readJSON(w, r, &in) {
				return
			}
			f := in.faults(s.cfg.Now())
			if err := f.Validate(); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			s.SetFaults(f)
			s.log.InfoContext(r.Context(), "imsim: faults set",
				"fail_rate", f.FailRate, "latency_min", f.LatencyMin, "latency_max", f.LatencyMax,
				"outage_until", f.OutageUntil, "refuse_until", f.RefuseUntil, "code_until", f.CodeUntil, "code", f.Code, "answer_delay", f.AnswerDelay)
			writeJSON(w, http.StatusOK, toFaultsJSON(f))
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, "use GET or POST")
		}
	case "/sim/outside":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, http.StatusOK, map[string]float64{"rate": s.OutsideRate()})
		case http.MethodPost:
			var in struct {
				Rate *float64 `json:"rate"`
			}
			if !readJSON(w, r, &in) {
				return
			}
			if in.Rate == nil {
				writeError(w, http.StatusBadRequest, `rate is required: {"rate": 50} for 50 calls per second, 0 for none`)
				return
			}
			if err := s.SetOutsideRate(*in.Rate); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			s.log.InfoContext(r.Context(), "imsim: outside load set", "rate", *in.Rate)
			writeJSON(w, http.StatusOK, map[string]float64{"rate": s.OutsideRate()})
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, "use GET or POST")
		}
	case "/sim/reset":
		if !allow(w, r, http.MethodPost) {
			return
		}
		s.Reset()
		s.log.InfoContext(r.Context(), "imsim: reset")
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "/sim/force":
		if !allow(w, r, http.MethodPost) {
			return
		}
		var in struct {
			MsgKey string
			Code   int
			Times  int
		}
		if !readJSON(w, r, &in) {
			return
		}
		if in.MsgKey == "" {
			writeError(w, http.StatusBadRequest, "MsgKey is required")
			return
		}
		s.Force(in.MsgKey, in.Code, in.Times)
		writeJSON(w, http.StatusOK, in)
	case "/sim/drop":
		if !allow(w, r, http.MethodPost) {
			return
		}
		var in struct{ Account string }
		if !readJSON(w, r, &in) {
			return
		}
		if in.Account == "" {
			writeError(w, http.StatusBadRequest, "Account is required")
			return
		}
		s.DropAccount(in.Account)
		writeJSON(w, http.StatusOK, in)
	case "/sim/forget":
		if !allow(w, r, http.MethodPost) {
			return
		}
		var in struct {
			From string `json:"From_Account"`
			To   string `json:"To_Account"`
			Key  string `json:"MsgKey"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		s.ForgetMessage(in.From, in.To, in.Key)
		writeJSON(w, http.StatusOK, in)
	case "/sim/fate":
		if !allow(w, r, http.MethodGet) {
			return
		}
		q := r.URL.Query()
		codes := s.Fate(q.Get("from"), q.Get("to"), q.Get("msgkey"))
		if codes == nil {
			codes = []int{}
		}
		writeJSON(w, http.StatusOK, map[string][]int{"codes": codes})
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no control endpoint %q", r.URL.Path))
	}
}

// allow reports whether r uses method, answering 405 when it does not.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, http.StatusMethodNotAllowed, "use "+method)
	return false
}

// readJSON decodes r's body into dst, answering 400 when it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err == nil {
		err = json.Unmarshal(data, dst)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
