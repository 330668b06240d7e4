package enqueue_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/tasks"
)

func Example() {
	c, err := enqueue.New(enqueue.Config{RedisURL: redisURL, SDKAppID: 1400000000})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	r := tasks.Recall{FromAccount: "vinson", ToAccount: "dramon", MsgKey: "31906_833502_1572869830",
		RequestedBy: "moderator:ana", Reason: "abuse report 7731"}
	first, err := c.Recall(context.Background(), r)
	if err != nil {
		log.Fatal(err)
	}
	again, err := c.Recall(context.Background(), r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.TaskID, first.AlreadyQueued)
	fmt.Println(again.TaskID == first.TaskID, again.AlreadyQueued)
	// Output:
	// recall_08c2caecb30bfb08104fc53a0bd6cc26 false
	// true true
}

func ExampleClient_Recall_invalid() {
	c, err := enqueue.New(enqueue.Config{RedisURL: redisURL, SDKAppID: 1400000000})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.Recall(context.Background(), tasks.Recall{FromAccount: "vinson", ToAccount: "dramon"})
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		fmt.Println("bad field:", fe.Field)
	}
	fmt.Println(err)
	// Output:
	// bad field: MsgKey
	// invalid recall: MsgKey: is empty: give the MsgKey Tencent returned when the message was sent
}

func ExampleClient_GroupRecalls() {
	c, err := enqueue.New(enqueue.Config{RedisURL: redisURL, SDKAppID: 1400000000})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	g := tasks.GroupRecall{GroupID: "@TGS#2J4SZEAEL", RequestedBy: "moderator:ana", Reason: "spam wave"}
	res, err := c.GroupRecalls(context.Background(), g, []uint64{101, 102})
	if err != nil {
		log.Fatal(err)
	}
	again, err := c.GroupRecalls(context.Background(), g, []uint64{102, 103})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range append(res, again...) {
		fmt.Println(r.TaskID, r.AlreadyQueued)
	}
	// Output:
	// grecall_8a9137e7acee3ec6e6350988cb3f89f2 false
	// grecall_fcca496f308d51dc3aaecb3dc2b3caef false
	// grecall_fcca496f308d51dc3aaecb3dc2b3caef true
	// grecall_ddbd4d68fbf72aeeec400edd611618f6 false
}
