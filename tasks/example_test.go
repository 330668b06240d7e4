package tasks_test

import (
	"fmt"

	"github.com/recallq/recallq/tasks"
)

func ExampleRecall_Validate() {
	r := tasks.Recall{SDKAppID: 1400000000, FromAccount: "vinson", ToAccount: "", MsgKey: "31906_833502_1572869830"}
	fmt.Println(r.Validate())
	// Output: invalid recall: To_Account: is empty: give the UserID of the message's recipient
}

func ExampleRecall_TaskID() {
	a := tasks.Recall{SDKAppID: 1400000000, FromAccount: "vinson", ToAccount: "dramon", MsgKey: "31906_833502_1572869830"}
	b := a
	b.RequestedBy = "another moderator"
	fmt.Println(a.TaskID() == b.TaskID())
	// Output: true
}

func ExampleGroupRecall_Validate() {
	g := tasks.GroupRecall{SDKAppID: 1400000000, GroupID: "@TGS#2J4SZEAEL", MsgSeq: 0}
	fmt.Println(g.Validate())
	// Output: invalid recall: MsgSeq: is missing or 0: give the MsgSeq Tencent gave the message in the group (they start at 1)
}
