package imsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Faults are the faults injected at run time (see Sim.SetFaults and
// POST /sim/faults). The zero Faults injects nothing.
type Faults struct {
	// FailRate is the fraction, 0..1, of otherwise-successful calls answered
	// 91000; the message stays unrecalled.
	FailRate float64
	// LatencyMin and LatencyMax bound the uniform random latency every API
	// request sleeps before anything else happens.
	LatencyMin, LatencyMax time.Duration
	// LatencyTail, when set, replaces them with a lognormal latency (tail.go).
	LatencyTail Tail
	// OutageUntil: until then every API call gets HTTP 502 with a non-JSON
	// body, before any check, as a broken gateway would answer.
	OutageUntil time.Time
	// RefuseUntil: until then the endpoint cannot be reached at all.
	// ListenAndServe closes its listener and every open connection, so
	// clients get "connection refused", and listens again on the same port
	// at RefuseUntil; the /sim/ control endpoints are unreachable meanwhile
	// too. A Sim served another way (httptest, a caller's http.Server) cuts
	// the connection of every API request meanwhile without an answer. No
	// refused request is counted or listed in a fate.
	RefuseUntil time.Time
	// CodeUntil: until then every authenticated call that the rate limit
	// lets through is answered with Code (for example only 91000), before
	// the body is looked at. The store is not touched: Code 0 answers
	// success without recalling anything.
	CodeUntil time.Time
	Code      int
	// AnswerDelay holds every JSON answer back this long after the call
	// was decided: it has counted against the cap and taken effect (the
	// message is recalled), as on a slow server, and a client that gives
	// up meanwhile never sees the answer.
	AnswerDelay time.Duration
}

// Validate reports the first field of f that is out of range.
func (f Faults) Validate() error {
	switch {
	case f.FailRate < 0 || f.FailRate > 1:
		return fmt.Errorf("FailRate is %v, must be in [0, 1]", f.FailRate)
	case f.LatencyMin < 0:
		return fmt.Errorf("LatencyMin is %v, must not be negative", f.LatencyMin)
	case f.LatencyMax < f.LatencyMin:
		return fmt.Errorf("LatencyMax is %v, must not be less than LatencyMin %v", f.LatencyMax, f.LatencyMin)
	case f.AnswerDelay < 0:
		return fmt.Errorf("AnswerDelay is %v, must not be negative", f.AnswerDelay)
	}
	return f.LatencyTail.Validate()
}

// faultsJSON is the body of GET and POST /sim/faults, described in the
// package comment. GET writes durations as Go duration strings.
type faultsJSON struct {
	FailRate    float64
	LatencyMin  jsonDuration
	LatencyMax  jsonDuration
	OutageUntil time.Time    `json:",omitzero"`
	OutageFor   jsonDuration `json:",omitzero"`
	RefuseUntil time.Time    `json:",omitzero"`
	RefuseFor   jsonDuration `json:",omitzero"`
	CodeUntil   time.Time    `json:",omitzero"`
	CodeFor     jsonDuration `json:",omitzero"`
	Code        int
	AnswerDelay jsonDuration `json:",omitzero"`
}

func toFaultsJSON(f Faults) faultsJSON {
	return faultsJSON{
		FailRate:    f.FailRate,
		LatencyMin:  jsonDuration(f.LatencyMin),
		LatencyMax:  jsonDuration(f.LatencyMax),
		OutageUntil: f.OutageUntil,
		RefuseUntil: f.RefuseUntil,
		CodeUntil:   f.CodeUntil,
		Code:        f.Code,
		AnswerDelay: jsonDuration(f.AnswerDelay),
	}
}

// faults resolves the relative fields against now.
func (j faultsJSON) faults(now time.Time) Faults {
	f := Faults{
		FailRate:    j.FailRate,
		LatencyMin:  time.Duration(j.LatencyMin),
		LatencyMax:  time.Duration(j.LatencyMax),
		OutageUntil: j.OutageUntil,
		RefuseUntil: j.RefuseUntil,
		CodeUntil:   j.CodeUntil,
		Code:        j.Code,
		AnswerDelay: time.Duration(j.AnswerDelay),
	}
	if j.OutageFor > 0 {
		f.OutageUntil = now.Add(time.Duration(j.OutageFor))
	}
	if j.RefuseFor > 0 {
		f.RefuseUntil = now.Add(time.Duration(j.RefuseFor))
	}
	if j.CodeFor > 0 {
		f.CodeUntil = now.Add(time.Duration(j.CodeFor))
	}
	return f
}

// jsonDuration is a time.Duration that JSON writes as a Go duration string
// and reads from one or from integer nanoseconds.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = jsonDuration(v)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errors.New("a duration is a Go duration string such as \"250ms\" or integer nanoseconds")
	}
	*d = jsonDuration(n)
	return nil
}
