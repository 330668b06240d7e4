package imsim

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

func TestValidMsgKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want bool
	}{
		{"31906_833502_1572869830", true},
		{"0_0_0", true},
		{"1_2_3", true},
		{"", false},
		{"1", false},
		{"1_2", false},
		{"1_2_3_4", false},
		{"_1_2", false},
		{"1_2_", false},
		{"1__2", false},
		{"a_b_c", false},
		{"1_2_3\n", false},
		{" 1_2_3", false},
		{"١_٢_٣", false}, // non-ASCII digits
		{"-1_2_3", false},
	}
	for _, tt := range tests {
		if got := validMsgKey(tt.key); got != tt.want {
			t.Errorf("validMsgKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestMsgIDDoesNotCollide(t *testing.T) {
	t.Parallel()
	triples := [][3]string{
		{"ab", "c", "1_1_1"},
		{"a", "bc", "1_1_1"},
		{"a\x00", "b", "1_1_1"},
		{"a", "\x00b", "1_1_1"},
		{"a", "b", "\x011_1_1"},
	}
	seen := map[string][3]string{}
	for _, tr := range triples {
		id := msgID(tr[0], tr[1], tr[2])
		if prev, ok := seen[id]; ok {
			t.Errorf("msgID(%q) == msgID(%q)", tr, prev)
		}
		seen[id] = tr
	}
}

// TestStoreMillion recalls a million messages through the store and checks
// that each answers 0 once, then 20023, within a bounded amount of memory.
func TestStoreMillion(t *testing.T) {
	t.Parallel()
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	st := newStore()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		if code := st.recall("alice", "bob", strconv.Itoa(i)+"_1_1700000000", false); code != codeOK {
			t.Fatalf("message %d: code %d, want 0", i, code)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	perMsg := float64(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc)) / float64(n)
	t.Logf("%d messages: %.0f bytes each", n, perMsg)
	if perMsg > 400 {
		t.Errorf("%.0f bytes a message, want at most 400", perMsg)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if code := st.recall("alice", "bob", fmt.Sprintf("%d_1_1700000000", i), false); code != codeAlreadyRecalled {
			t.Errorf("message %d again: code %d, want 20023", i, code)
		}
	}
}

func BenchmarkRecallParallel(b *testing.B) {
	s, err := New(Config{SDKAppID: testAppID, SecretKey: testKey, Cap: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	q := query(b, nil)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			recall(b, s, q, "a", "b", fmt.Sprintf("%d_%p_1", i, pb))
		}
	})
}
