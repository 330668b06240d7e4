package capture

import (
	"bytes"
	"testing"
)

// TestGroupEntryTopic: an entry written before topics were kept still
// reads as a message of the community itself; a message without a topic is
// still written so, byte for byte; a topic's message keeps its TopicId and
// stores only what follows the community's GroupId of it.
func TestGroupEntryTopic(t *testing.T) {
	const group = "@TGS#_@TGS#cQVLVHIM62CJ"
	old := []byte{tagGroup, 5, byte(len(group))}
	old = append(append(old, group...), 0xac, 0x02) // MsgTime start+5, MsgSeq 300
	want := Message{Kind: Group, From: "a", GroupID: group, MsgSeq: 300, Time: 3605}
	if got, err := decodeEntry(old, "a", 3600); err != nil || got != want {
		t.Fatalf("an entry of the previous release: %+v %v, want %+v", got, err, want)
	}
	if e := appendEntry(nil, want, 3600); !bytes.Equal(e, old) {
		t.Fatalf("a message without a topic is written % x, want % x as before", e, old)
	}
	for _, topic := range []string{group + "@TOPIC#_TestTopic", "@TOPIC#_elsewhere", "@TGS#_x", group} {
		m := want
		m.TopicID = topic
		e := appendEntry(nil, m, 3600)
		got, err := decodeEntry(e, "a", 3600)
		if err != nil || got != m {
			t.Fatalf("TopicId %q: %+v %v, want %+v", topic, got, err, m)
		}
		if n := len(e) - len(old); n > 2+len(topic)-commonPrefix(group, topic) {
			t.Errorf("TopicId %q costs %d bytes more than no topic", topic, n)
		}
	}
	for name, e := range map[string][]byte{
		"prefix longer than the GroupId": {tagGroupTopic, 0, 1, 'g', 1, 2, 0},
		"empty TopicId":                  {tagGroupTopic, 0, 1, 'g', 1, 0, 0},
	} {
		if _, err := decodeEntry(e, "a", 0); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
