package tasks

import (
	"testing"
)

// FuzzDecode (seeds in testdata/fuzz/FuzzDecode) feeds arbitrary payloads to the worker's decoder. It must never
// panic; whatever it accepts must be valid, survive a round trip unchanged,
// and keep its task ID.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) { roundTrip(t, payload, Decode) })
}

// FuzzDecodeGroupRecall (seeds in testdata/fuzz/FuzzDecodeGroupRecall)
// does for group recall payloads what FuzzDecode does for one-to-one ones.
func FuzzDecodeGroupRecall(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) { roundTrip(t, payload, DecodeGroupRecall) })
}

// taskPayload is what Recall and GroupRecall have in common.
type taskPayload interface {
	comparable
	Validate() error
	Encode() ([]byte, error)
	TaskID() string
}

// roundTrip checks the property of both fuzz targets for one input.
func roundTrip[P taskPayload](t *testing.T, payload []byte, decode func([]byte) (P, error)) {
	r, err := decode(payload)
	if err != nil {
		return
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("the decoder accepted an invalid payload: %v", err)
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatalf("Encode of a decoded payload: %v", err)
	}
	again, err := decode(b)
	if err != nil || again != r || again.TaskID() != r.TaskID() {
		t.Fatalf("round trip changed the payload: %+v -> %+v (%v)", r, again, err)
	}
}
