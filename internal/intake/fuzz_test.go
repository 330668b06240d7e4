package intake

import (
	"bytes"
	"net/http"
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
		recalls, batch, derr := s.decode(body, "fuzz")
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
			for _, v := range []string{r.FromAccount, r.ToAccount, r.MsgKey} {
				if !bytes.Contains(body, []byte(v)) && !bytes.Contains(body, []byte{'\\'}) {
					t.Fatalf("%q: accepted %q, which the body does not hold", body, v)
				}
			}
		}
	})
}
