package tim

import (
	"strings"
	"testing"
)

// FuzzDecodeResponse (seeds in testdata/fuzz/FuzzDecodeResponse) feeds arbitrary bodies to the response decoder. It must
// never panic, and no body may read as success (code 0) unless Tencent said
// OK: a misread success would mark a message recalled that was not.
func FuzzDecodeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := decodeResponse(body)
		if err != nil {
			return
		}
		if resp.ErrorCode == 0 && !strings.EqualFold(resp.ActionStatus, "OK") {
			t.Fatalf("%q decoded as success with ActionStatus %q", body, resp.ActionStatus)
		}
		if resp.ActionStatus == "" {
			t.Fatalf("%q decoded without an ActionStatus", body)
		}
	})
}
