package capture

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// sameShard returns n senders, each with base as a prefix, that all hash to
// one shard (so their messages share a list).
func sameShard(t *testing.T, base string, n int) []string {
	t.Helper()
	out := []string{base}
	for i := 0; len(out) < n && i < 1_000_000; i++ {
		if s := fmt.Sprintf("%s%d", base, i); shardOf(s) == shardOf(base) {
			out = append(out, s)
		}
	}
	if len(out) < n {
		t.Fatalf("found only %d senders in %q's shard", len(out), base)
	}
	return out
}

// TestSendersSharingAListAreTold apart: a query returns its sender's
// messages only, even from a list it shares with senders whose UserIDs
// start with its own.
func TestSendersSharingAListAreToldApart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	senders := sameShard(t, "spam", 3) // "spam", "spam<i>", "spam<j>"
	for i, from := range senders {
		for seq := range uint64(i + 2) {
			e.postC2C(t, from, "victim", 100*uint64(i)+seq, now)
		}
	}
	if ks := e.keys(t); len(ks) != 1 {
		t.Fatalf("%d keys %v, want the one list the senders share", len(ks), ks)
	}
	for i, from := range senders {
		got := e.query(t, Query{SDKAppID: testApp, From: from, Since: now.Add(-time.Minute)})
		if len(got) != i+2 {
			t.Fatalf("%s: %d messages, want %d: %v", from, len(got), i+2, got)
		}
		for _, m := range got {
			if m.From != from || m.MsgSeq/100 != uint64(i) {
				t.Fatalf("%s's query returned %+v", from, m)
			}
		}
	}
}

// TestFirstReleaseListsAreStillRead: after an upgrade, messages the first
// release indexed (one list per sender, entries without the sender) are
// found until they expire, beside the new ones.
func TestFirstReleaseListsAreStillRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	n := floorDiv(now.Unix(), int64(DefaultBucket/time.Second))
	start := n * int64(DefaultBucket/time.Second)
	old := Message{Kind: C2C, From: "spammer", To: "victim", MsgKey: fmt.Sprintf("1_2_%d", now.Unix()-60), Time: now.Unix() - 60}
	oldGroup := Message{Kind: Group, From: "spammer", GroupID: "grp", MsgSeq: 9, Time: now.Unix() - 30}
	k := legacyKey(testApp, n, "spammer")
	if err := e.rdb.RPush(ctx, k, appendEntry(nil, old, start), appendEntry(nil, oldGroup, start)).Err(); err != nil {
		t.Fatal(err)
	}
	e.postC2C(t, "spammer", "victim", 3, now)
	got := e.query(t, Query{SDKAppID: testApp, From: "spammer", Since: now.Add(-time.Hour)})
	keys := make([]string, 0, len(got))
	for _, m := range got {
		keys = append(keys, m.MsgKey+m.GroupID)
	}
	slices.Sort(keys)
	want := []string{"1_2_" + fmt.Sprint(now.Unix()-60), fmt.Sprintf("3_1003_%d", now.Unix()), "grp"}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("found %v, want %v (the old list's two and the new message)", keys, want)
	}
}
