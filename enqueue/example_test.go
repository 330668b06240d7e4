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
