package intake

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
)

// FuzzDecode (seeds in testdata/fuzz/FuzzDecode) feeds arbitrary bodies to
// the intake's JSON decoder. It must never panic; whatever it accepts must
// be valid recalls within the batch bound; whatever it refuses must be a 400
// or 422 that says why. A value is never changed: in a body without
// escapes, every accepted value appears in the body as given.
func FuzzDecode(f *testing.F) {
	s := &Server{cfg: Config{SDKAppID: 1400000000, MaxBatch: 5}}
	f.Fuzz(func(t *testing.T, body []byte) {
		recalls, batch, derr := s.decode(body, 1400000000, "fuzz")
		if derr != nil {
			if derr.status != http.StatusBadRequest && derr.status != http.StatusUnprocessableEntity {
				t.Fatalf("%q: status %d", body, derr.status)
			}
			if derr.msg == "" {
				t.Fatalf("%q: refused without a reason", body)
			}
			return
		}
		if len(recalls) == 0 || len(recalls) > s.cfg.MaxBatch || (!batch && len(recalls) != 1) {
			t.Fatalf("%q: accepted %d recalls (batch %v)", body, len(recalls), batch)
		}
		for _, r := range recalls {
			if err := r.Validate(); err != nil {
				t.Fatalf("%q: accepted an invalid recall: %v", body, err)
			}
			if r.SDKAppID != 1400000000 {
				t.Fatalf("%q: accepted a recall of app %d, not the request's", body, r.SDKAppID)
			}
			for _, v := range []string{r.FromAccount, r.ToAccount, r.MsgKey} {
				if !bytes.Contains(body, []byte(v)) && !bytes.Contains(body, []byte{'\\'}) {
					t.Fatalf("%q: accepted %q, which the body does not hold", body, v)
				}
			}
		}
	})
}

// FuzzDecodeGroup (seeds in testdata/fuzz/FuzzDecodeGroup) feeds arbitrary
// bodies to the group recall decoder, with FuzzDecode's rules: no panic;
// what it accepts is valid group recalls of one group, one per MsgSeq of
// the body, within the bound; what it refuses is a 400 or 422 that says
// why, each problem naming its field.
func FuzzDecodeGroup(f *testing.F) {
	s := &Server{cfg: Config{SDKAppID: 1400000000, MaxBatch: 5}}
	f.Fuzz(func(t *testing.T, body []byte) {
		recalls, derr := s.decodeGroup(body, 1400000000, "fuzz")
		if derr != nil {
			if derr.status != http.StatusBadRequest && derr.status != http.StatusUnprocessableEntity {
				t.Fatalf("%q: status %d", body, derr.status)
			}
			if derr.msg == "" {
				t.Fatalf("%q: refused without a reason", body)
			}
			for _, p := range derr.problems {
				if p.Field == "" || p.Reason == "" {
					t.Fatalf("%q: a problem without a field or a reason: %+v", body, p)
				}
			}
			return
		}
		if len(recalls) == 0 || len(recalls) > s.cfg.MaxBatch {
			t.Fatalf("%q: accepted %d group recalls", body, len(recalls))
		}
		for _, g := range recalls {
			if err := g.Validate(); err != nil {
				t.Fatalf("%q: accepted an invalid group recall: %v", body, err)
			}
			if g.SDKAppID != 1400000000 {
				t.Fatalf("%q: accepted a group recall of app %d, not the request's", body, g.SDKAppID)
			}
			if g.GroupID != recalls[0].GroupID || g.TopicID != recalls[0].TopicID || g.Reason != recalls[0].Reason {
				t.Fatalf("%q: accepted recalls of more than one group: %+v", body, recalls)
			}
			if !bytes.Contains(body, []byte(g.GroupID)) && !bytes.Contains(body, []byte{'\\'}) {
				t.Fatalf("%q: accepted %q, which the body does not hold", body, g.GroupID)
			}
			if !bytes.Contains(body, []byte(strconv.FormatUint(g.MsgSeq, 10))) {
				t.Fatalf("%q: accepted MsgSeq %d, which the body does not hold", body, g.MsgSeq)
			}
		}
	})
}
