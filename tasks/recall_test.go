package tasks

import (
	"errors"
	"strings"
	"testing"
)

func valid() Recall {
	return Recall{SDKAppID: 1400000000, FromAccount: "vinson", ToAccount: "dramon", MsgKey: "31906_833502_1572869830"}
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Recall)
		field string // "" = valid
	}{
		{"valid", func(*Recall) {}, ""},
		{"opaque msgkey", func(r *Recall) { r.MsgKey = "not-the-usual shape/!" }, ""},
		{"no app", func(r *Recall) { r.SDKAppID = 0 }, "SDKAppID"},
		{"no sender", func(r *Recall) { r.FromAccount = "" }, "From_Account"},
		{"no recipient", func(r *Recall) { r.ToAccount = "" }, "To_Account"},
		{"no msgkey", func(r *Recall) { r.MsgKey = "" }, "MsgKey"},
		{"long sender", func(r *Recall) { r.FromAccount = strings.Repeat("a", MaxAccountLen+1) }, "From_Account"},
		{"sender at limit", func(r *Recall) { r.FromAccount = strings.Repeat("a", MaxAccountLen) }, ""},
		{"long msgkey", func(r *Recall) { r.MsgKey = strings.Repeat("1", MaxMsgKeyLen+1) }, "MsgKey"},
		{"bad utf8", func(r *Recall) { r.ToAccount = "\xff\xfe" }, "To_Account"},
		{"long reason", func(r *Recall) { r.Reason = strings.Repeat("x", MaxNoteLen+1) }, "reason"},
		{"bad utf8 msgkey", func(r *Recall) { r.MsgKey = "1_\xff\xfe_1" }, "MsgKey"},
		{"leading space", func(r *Recall) { r.FromAccount = " u5" }, "From_Account"},
		{"trailing space", func(r *Recall) { r.ToAccount = "u5 " }, "To_Account"},
		{"spaces both ends", func(r *Recall) { r.FromAccount = " u5 " }, "From_Account"},
		{"trailing no-break space", func(r *Recall) { r.MsgKey = "1_1_1\u00a0" }, "MsgKey"},
		{"newline in msgkey", func(r *Recall) { r.MsgKey = "multi\nline" }, "MsgKey"},
		{"tab in account", func(r *Recall) { r.ToAccount = "a\tb" }, "To_Account"},
		{"NUL in account", func(r *Recall) { r.FromAccount = "a\x00" }, "From_Account"},
		{"DEL in msgkey", func(r *Recall) { r.MsgKey = "1\x7f1" }, "MsgKey"},
		{"C1 control in msgkey", func(r *Recall) { r.MsgKey = "1\u00851" }, "MsgKey"},
		{"inner space is opaque data", func(r *Recall) { r.MsgKey = "a b" }, ""},
		{"multi-line reason is free text", func(r *Recall) { r.Reason = "spam\nwave" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.edit(&r)
			err := r.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) {
				t.Fatalf("err = %v, want ErrInvalid with a FieldError", err)
			}
			if fe.Field != tc.field {
				t.Fatalf("field = %q, want %q (%v)", fe.Field, tc.field, err)
			}
		})
	}
}

func TestTaskIDIsDeterministicPerAppAndMessage(t *testing.T) {
	a := valid()
	b := a
	b.RequestedBy, b.Reason = "someone else", "another reason"
	if a.TaskID() != b.TaskID() {
		t.Fatal("who asked and why changed the task ID")
	}
	for name, edit := range map[string]func(*Recall){
		"app":    func(r *Recall) { r.SDKAppID++ },
		"from":   func(r *Recall) { r.FromAccount = "x" },
		"to":     func(r *Recall) { r.ToAccount = "x" },
		"msgkey": func(r *Recall) { r.MsgKey = "1_2_3" },
		// Field boundaries must not blur: ("ab","c") differs from ("a","bc").
		"boundary": func(r *Recall) { r.FromAccount, r.ToAccount = r.FromAccount+"d", r.ToAccount[1:] },
	} {
		c := valid()
		edit(&c)
		if c.TaskID() == a.TaskID() {
			t.Errorf("changing %s kept the task ID", name)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	r := valid()
	r.Reason = "spam wave"
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"From_Account":"vinson"`) {
		t.Fatalf("wire form lost Tencent's field names: %s", b)
	}
	got, err := Decode(b)
	if err != nil || got != r {
		t.Fatalf("Decode = %+v, %v; want %+v", got, err, r)
	}
	if _, err := Decode([]byte("{")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Decode of junk: %v, want ErrInvalid", err)
	}
	if _, err := Decode([]byte(`{"SDKAppID":1,"From_Account":"a","To_Account":"b"}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Decode without MsgKey: %v, want ErrInvalid", err)
	}
}

// A payload from a producer that bypassed NewTask is decoded as strictly
// as the intake decodes a request: no value is changed on the way in.
func TestDecodeChangesNoValue(t *testing.T) {
	for name, payload := range map[string]string{
		"invalid UTF-8":       "{\"SDKAppID\":1,\"From_Account\":\"a\",\"To_Account\":\"b\",\"MsgKey\":\"1_\xff\xfe\"}",
		"lone surrogate":      `{"SDKAppID":1,"From_Account":"a","To_Account":"b","MsgKey":"\ud800"}`,
		"MsgKey twice":        `{"SDKAppID":1,"From_Account":"a","To_Account":"b","MsgKey":"k1","MsgKey":"k2"}`,
		"msgkey for MsgKey":   `{"SDKAppID":1,"From_Account":"a","To_Account":"b","msgkey":"k1"}`,
		"a second JSON value": `{"SDKAppID":1,"From_Account":"a","To_Account":"b","MsgKey":"k1"}{}`,
		"a number for MsgKey": `{"SDKAppID":1,"From_Account":"a","To_Account":"b","MsgKey":1}`,
	} {
		if r, err := Decode([]byte(payload)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode = %+v, %v; want ErrInvalid", name, r, err)
		}
	}
}

func TestNewTaskOptions(t *testing.T) {
	task, err := NewTask(valid(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != TypeRecall {
		t.Fatalf("type = %q", task.Type())
	}
	if _, err := NewTask(valid(), Options{Queue: "default"}); err == nil {
		t.Fatal("an unknown queue was accepted")
	}
	if _, err := NewTask(Recall{}, Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid recall: %v", err)
	}
	if RetryBudget(DefaultMaxRetry) != DefaultMaxRetry {
		t.Fatal("the retry budget is not asynq's limit")
	}
}

func TestIsTaskID(t *testing.T) {
	id := valid().TaskID()
	if !IsTaskID(id) {
		t.Fatalf("IsTaskID(%q) = false", id)
	}
	if strings.Contains(id, "-") {
		t.Fatalf("task ID %q has a '-': asynqmon would cut it there", id)
	}
	for _, bad := range []string{"", "recall_", id[:len(id)-1], strings.ToUpper(id), "recall-" + id[7:], id + "0"} {
		if IsTaskID(bad) {
			t.Errorf("IsTaskID(%q) = true", bad)
		}
	}
}

// TestIdentifierFaultIsValidatesCheck: IdentifierFault, which the capture
// checks Tencent's callbacks with, refuses exactly what Validate refuses in
// that field, for every identifier of both payloads.
func TestIdentifierFaultIsValidatesCheck(t *testing.T) {
	set := map[string]func(v string) error{
		"From_Account": func(v string) error { r := valid(); r.FromAccount = v; return r.Validate() },
		"To_Account":   func(v string) error { r := valid(); r.ToAccount = v; return r.Validate() },
		"MsgKey":       func(v string) error { r := valid(); r.MsgKey = v; return r.Validate() },
		"GroupId":      func(v string) error { g := validGroup(); g.GroupID = v; return g.Validate() },
		// An empty TopicId is a message of the group itself, not a fault.
		"TopicId": func(v string) error { g := validGroup(); g.TopicID = v; return g.Validate() },
	}
	values := []string{"u5", "@TGS#2J4SZEAEL", "31906_833502_1572869830", "用户", "a b",
		" u5", "u5\u00a0", "a\nb", "a\x00", "\xff\xfe",
		strings.Repeat("a", MaxAccountLen), strings.Repeat("a", MaxAccountLen+1),
		strings.Repeat("g", MaxGroupIDLen), strings.Repeat("g", MaxGroupIDLen+1),
		strings.Repeat("k", MaxMsgKeyLen), strings.Repeat("k", MaxMsgKeyLen+1),
		strings.Repeat("t", MaxTopicIDLen), strings.Repeat("t", MaxTopicIDLen+1)}
	for name, validate := range set {
		for _, v := range values {
			what, _ := IdentifierFault(name, v)
			err := validate(v)
			var fe *FieldError
			refused := errors.As(err, &fe) && fe.Field == name
			if (what != "") != refused || (refused && !strings.HasPrefix(fe.Reason, what)) {
				t.Errorf("%s %q: IdentifierFault %q, Validate %v", name, v, what, err)
			}
		}
		if what, fix := IdentifierFault(name, ""); what != "is empty" || fix == "" {
			t.Errorf("%s empty: %q %q, want \"is empty\" and what to give", name, what, fix)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("IdentifierFault of a field that is no identifier did not panic")
		}
	}()
	IdentifierFault("reason", "x")
}
