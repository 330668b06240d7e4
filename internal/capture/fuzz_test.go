package capture

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/recallq/recallq/tasks"
)

// FuzzReadCallback feeds the callback reader arbitrary bodies: it must
// never panic, must either refuse a body with ErrBadCallback or give a
// message a recall task takes, and that message must come back unchanged
// from its index entry.
func FuzzReadCallback(f *testing.F) {
	f.Add(CommandC2CAfterSend, c2cBody("spammer", "victim", 1, 2, 1700000000, 0))
	f.Add(CommandC2CAfterSend, c2cBody("a", "b", 0, 0, 0, 1))
	f.Add(CommandGroupAfterSend, groupBody("spammer", "@TGS#1", 9, 1700000000))
	f.Add(CommandGroupAfterSend, topicBody("spammer", "@TGS#_@TGS#1", "@TGS#_@TGS#1@TOPIC#_t", 9, 1700000000))
	f.Add(CommandGroupAfterSend, `{"From_Account":"a","GroupId":"g","TopicId":"t\u0000","MsgSeq":1}`)
	f.Add(CommandC2CAfterSend, "{\"From_Account\":\"a\xff\",\"To_Account\":\"b\",\"MsgKey\":\"k\"}")
	f.Add(CommandC2CAfterSend, `{"From_Account":"a","To_Account":"\ud83d\ude00\ud800","MsgKey":"\u006b\/"}`)
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
		if m.Time < 0 || (m.TopicID != "" && m.Kind != Group) {
			t.Fatalf("accepted a message outside the limits: %+v", m)
		}
		if err := taskOf(m); err != nil {
			t.Fatalf("accepted a message no recall task takes: %+v: %v", m, err)
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

// FuzzIdentUnquote: an identifier reads as the JSON decoder reads a
// string when that string is valid UTF-8, and as invalid UTF-8 when it is
// not (where the decoder would replace it).
func FuzzIdentUnquote(f *testing.F) {
	for _, lit := range []string{`"a"`, `null`, `"\u7528\ud83d\ude00\/\"\\\b\f\n\r\t"`, `"\ud800"`, `"\ud800\u0041"`,
		`"\udc00\ud800"`, "\"a\xffb\"", `"\uD83D\uDE00"`, `1`, `"a"x`} {
		f.Add(lit)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		var id ident
		if err := json.Unmarshal([]byte(lit), &id, lenient); err != nil {
			return
		}
		v := bytes.Trim([]byte(lit), " \t\r\n")
		if v[0] != '"' {
			if id != "" {
				t.Fatalf("%s read as %q, want \"\"", lit, id)
			}
			return
		}
		want, err := jsontext.AppendUnquote(nil, v)
		switch {
		case err == nil && string(id) != string(want):
			t.Fatalf("%s read as %q, want %q", lit, id, want)
		case err != nil && utf8.ValidString(string(id)):
			t.Fatalf("%s (%v) read as valid UTF-8 %q", lit, err, id)
		}
	})
}

// taskOf is the error of the recall task of m (nil: a task takes it), and
// of its sender as an account.
func taskOf(m Message) error {
	if what, _ := tasks.IdentifierFault("From_Account", m.From); what != "" {
		return errors.New("From_Account " + what)
	}
	if m.Kind == Group {
		return tasks.GroupRecall{SDKAppID: 1, GroupID: m.GroupID, TopicID: m.TopicID, MsgSeq: m.MsgSeq}.Validate()
	}
	return tasks.Recall{SDKAppID: 1, FromAccount: m.From, ToAccount: m.To, MsgKey: m.MsgKey}.Validate()
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
