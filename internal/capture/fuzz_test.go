package capture

import (
	"errors"
	"testing"
)

// FuzzReadCallback feeds the callback reader arbitrary bodies: it must
// never panic, must either refuse a body with ErrBadCallback or give a
// message within the index's limits, and that message must come back
// unchanged from its index entry.
func FuzzReadCallback(f *testing.F) {
	f.Add(CommandC2CAfterSend, c2cBody("spammer", "victim", 1, 2, 1700000000, 0))
	f.Add(CommandC2CAfterSend, c2cBody("a", "b", 0, 0, 0, 1))
	f.Add(CommandGroupAfterSend, groupBody("spammer", "@TGS#1", 9, 1700000000))
	f.Add(CommandGroupAfterSend, topicBody("spammer", "@TGS#_@TGS#1", "@TGS#_@TGS#1@TOPIC#_t", 9, 1700000000))
	f.Add(CommandGroupAfterSend, `{"From_Account":"a","GroupId":"g","TopicId":"t\u0000","MsgSeq":1}`)
	f.Add(CommandC2CAfterSend, `{"From_Account":"a","To_Account":"b","MsgKey":"01_2_3","MsgTime":3}`)
	f.Add(CommandC2CAfterSend, `{"From_Account":"a","To_Account":"b","MsgKey":"x","MsgTime":-1}`)
	f.Add(CommandGroupAfterSend, `{"From_Account":"a","GroupId":"g","MsgSeq":18446744073709551615,"MsgTime":9223372036854775807}`)
	f.Add("C2C.CallbackBeforeSendMsg", `[]`)
	f.Add(CommandC2CAfterSend, `{} {}`)
	f.Fuzz(func(t *testing.T, command, body string) {
		const now = 1700000000
		m, v, err := readCallback(command, []byte(body), now)
		if err != nil {
			if !errors.Is(err, ErrBadCallback) {
				t.Fatalf("error %v does not wrap ErrBadCallback", err)
			}
			return
		}
		if v == ignored {
			return
		}
		if m.From == "" || len(m.From) > MaxAccountLen || len(m.To) > MaxAccountLen || len(m.MsgKey) > MaxMsgKeyLen || len(m.GroupID) > MaxGroupIDLen || m.Time < 0 ||
			len(m.TopicID) > MaxTopicIDLen || badIdentifier(m.TopicID) != "" || (m.TopicID != "" && m.Kind != Group) {
			t.Fatalf("accepted a message outside the limits: %+v", m)
		}
		const bucket = 3600
		n := floorDiv(m.Time, bucket)
		got, err := decodeEntry(appendEntry(nil, m, n*bucket), m.From, n*bucket)
		if err != nil {
			t.Fatalf("entry of %+v does not decode: %v", m, err)
		}
		if m.Kind == C2C {
			got.MsgSeq, m.MsgSeq = 0, 0 // a C2C entry keeps MsgSeq only inside the MsgKey
		}
		if got != m {
			t.Fatalf("entry round trip: got %+v, want %+v", got, m)
		}
	})
}

// FuzzDecodeEntry: any bytes in a list (a corrupt or foreign entry) give
// an error, never a panic.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntry(nil, Message{Kind: C2C, From: "a", To: "b", MsgKey: "1_2_3600", Time: 3600}, 3600))
	f.Add(appendEntry(nil, Message{Kind: Group, From: "a", GroupID: "g", MsgSeq: 5, Time: 3601}, 3600))
	f.Add(appendEntry(nil, Message{Kind: Group, From: "a", GroupID: "g", TopicID: "g@TOPIC#_t", MsgSeq: 5, Time: 3601}, 3600))
	f.Add([]byte{tagC2CKey, 0, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeEntry(b, "a", 3600)
	})
}
