package cli

import (
	"bytes"
	"testing"
)

// The simulator never uses Redis: `recallq imsim --help` offers no
// --redis-url (it would read as if the simulator needed one), but still
// --sdkappid, the app it simulates.
func TestIMSimHasNoRedisFlag(t *testing.T) {
	var out bytes.Buffer
	cmd, _, err := NewRoot(&out, &out).Find([]string{"imsim"})
	if err != nil {
		t.Fatal(err)
	}
	if f := cmd.Flags().Lookup("redis-url"); f != nil {
		t.Errorf("imsim has --redis-url (%q), but the simulator uses no Redis", f.Usage)
	}
	if cmd.Flags().Lookup("sdkappid") == nil {
		t.Error("imsim lost --sdkappid")
	}
}
