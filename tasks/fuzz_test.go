package tasks

import (
	"testing"
)

// FuzzDecode (seeds in testdata/fuzz/FuzzDecode) feeds arbitrary payloads to the worker's decoder. It must never
// panic; whatever it accepts must be valid, survive a round trip unchanged,
// and keep its task ID.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := Decode(payload)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid recall: %v", err)
		}
		b, err := r.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded recall: %v", err)
		}
		again, err := Decode(b)
		if err != nil || again != r || again.TaskID() != r.TaskID() {
			t.Fatalf("round trip changed the recall: %+v -> %+v (%v)", r, again, err)
		}
	})
}
