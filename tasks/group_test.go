package tasks

import (
	"errors"
	"strings"
	"testing"
)

func validGroup() GroupRecall {
	return GroupRecall{SDKAppID: 1400000000, GroupID: "@TGS#2J4SZEAEL", MsgSeq: 100}
}

func TestGroupValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*GroupRecall)
		field string // "" = valid
	}{
		{"valid", func(*GroupRecall) {}, ""},
		{"with topic", func(g *GroupRecall) { g.TopicID = "@TGS#_@TGS#cQVLVHIM62CJ@TOPIC#_TestTopic" }, ""},
		{"no app", func(g *GroupRecall) { g.SDKAppID = 0 }, "SDKAppID"},
		{"no group", func(g *GroupRecall) { g.GroupID = "" }, "GroupId"},
		{"group at limit", func(g *GroupRecall) { g.GroupID = strings.Repeat("g", MaxGroupIDLen) }, ""},
		{"long group", func(g *GroupRecall) { g.GroupID = strings.Repeat("g", MaxGroupIDLen+1) }, "GroupId"},
		{"newline in group", func(g *GroupRecall) { g.GroupID = "@TGS#a\nb" }, "GroupId"},
		{"group with trailing space", func(g *GroupRecall) { g.GroupID = "@TGS#a " }, "GroupId"},
		{"group not UTF-8", func(g *GroupRecall) { g.GroupID = "@TGS#\xff" }, "GroupId"},
		{"long topic", func(g *GroupRecall) { g.TopicID = strings.Repeat("t", MaxTopicIDLen+1) }, "TopicId"},
		{"tab in topic", func(g *GroupRecall) { g.TopicID = "a\tb" }, "TopicId"},
		{"seq 0", func(g *GroupRecall) { g.MsgSeq = 0 }, "MsgSeq"},
		{"long reason", func(g *GroupRecall) { g.Reason = strings.Repeat("x", MaxNoteLen+1) }, "reason"},
		{"multi-line reason is free text", func(g *GroupRecall) { g.Reason = "spam\nwave" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := validGroup()
			tc.edit(&g)
			err := g.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want ErrInvalid naming %s", err, tc.field)
			}
		})
	}
}

func TestGroupTaskID(t *testing.T) {
	base := validGroup()
	id := base.TaskID()
	if !strings.HasPrefix(id, GroupTaskIDPrefix) || len(id) != len(GroupTaskIDPrefix)+32 || IsTaskID(id) {
		t.Fatalf("TaskID %q: want %s and 32 hex digits, not the shape of a one-to-one recall's", id, GroupTaskIDPrefix)
	}
	same := base
	same.RequestedBy, same.Reason, same.Campaign = "mod", "spam", "wave-1"
	if same.TaskID() != id {
		t.Errorf("who asks and why changed the ID")
	}
	for name, edit := range map[string]func(*GroupRecall){
		"app":                  func(g *GroupRecall) { g.SDKAppID++ },
		"group":                func(g *GroupRecall) { g.GroupID += "x" },
		"topic":                func(g *GroupRecall) { g.TopicID = "t" },
		"seq":                  func(g *GroupRecall) { g.MsgSeq++ },
		"group/topic boundary": func(g *GroupRecall) { g.GroupID, g.TopicID = "@TGS#2J4SZEAE", "L" },
	} {
		g := base
		edit(&g)
		if g.TaskID() == id {
			t.Errorf("another %s gives the same ID", name)
		}
	}
	// The one-to-one ID is unchanged by sharing hashID.
	r := Recall{SDKAppID: 1400000000, FromAccount: "vinson", ToAccount: "dramon", MsgKey: "31906_833502_1572869830"}
	if got := r.TaskID(); got != "recall_08c2caecb30bfb08104fc53a0bd6cc26" {
		t.Errorf("Recall.TaskID changed: %s", got)
	}
}

func TestNewGroupTask(t *testing.T) {
	task, err := NewGroupTask(validGroup(), Options{Queue: QueueBulk})
	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != TypeGroupRecall {
		t.Errorf("type %q", task.Type())
	}
	g, err := DecodeGroupRecall(task.Payload())
	if err != nil || g != validGroup() {
		t.Errorf("payload decodes to %+v, %v", g, err)
	}
	if _, err := NewGroupTask(GroupRecall{SDKAppID: 1}, Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid payload: %v", err)
	}
	if _, err := NewGroupTask(validGroup(), Options{Queue: "other"}); err == nil {
		t.Errorf("unknown queue accepted")
	}
}

func TestDecodeGroupRecallIsStrict(t *testing.T) {
	for name, payload := range map[string]string{
		"field twice":     `{"SDKAppID":1,"GroupId":"g","GroupId":"h","MsgSeq":1}`,
		"miscased name":   `{"SDKAppID":1,"groupid":"g","MsgSeq":1}`,
		"seq as string":   `{"SDKAppID":1,"GroupId":"g","MsgSeq":"1"}`,
		"negative seq":    `{"SDKAppID":1,"GroupId":"g","MsgSeq":-1}`,
		"two values":      `{"SDKAppID":1,"GroupId":"g","MsgSeq":1} {}`,
		"a one-to-one":    `{"SDKAppID":1,"From_Account":"a","To_Account":"b","MsgKey":"1_1_1"}`,
		"invalid UTF-8":   "{\"SDKAppID\":1,\"GroupId\":\"g\xff\",\"MsgSeq\":1}",
		"not JSON at all": `GroupId=g`,
	} {
		if _, err := DecodeGroupRecall([]byte(payload)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
