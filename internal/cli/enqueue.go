package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/tasks"
)

func newEnqueueCmd(g *globals) *cobra.Command {
	var app appFlags
	var r tasks.Recall
	cmd := &cobra.Command{
		Use:   "enqueue --from USER --to USER --msgkey KEY",
		Short: "Queue one recall on the urgent lane",
		Long: `Queue one recall on the urgent lane and print its task ID. Queuing the same
message again prints "already queued" and queues nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := app.appID("enqueue")
			if err != nil {
				return err
			}
			r.SDKAppID = id
			if err := r.Validate(); err != nil {
				var fe *tasks.FieldError
				if errors.As(err, &fe) {
					return usagef("--%s: %s", flagFor(fe.Field), fe.Reason)
				}
				return usageError{err}
			}
			conn, err := app.redis()
			if err != nil {
				return err
			}
			c, err := enqueue.New(enqueue.Config{Redis: conn.AsynqOpt(), SDKAppID: id})
			if err != nil {
				return usageError{err}
			}
			defer c.Close()
			res, err := c.Recall(cmd.Context(), r)
			if err != nil {
				return redisconn.Explain(err, conn)
			}
			if res.AlreadyQueued {
				fmt.Fprintf(g.stdout, "%s already queued\n", res.TaskID)
			} else {
				fmt.Fprintf(g.stdout, "%s queued\n", res.TaskID)
			}
			return nil
		},
	}
	app.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&r.FromAccount, "from", "", "UserID of the message's sender (From_Account)")
	f.StringVar(&r.ToAccount, "to", "", "UserID of the message's recipient (To_Account)")
	f.StringVar(&r.MsgKey, "msgkey", "", "the message's MsgKey, as Tencent returned it")
	f.StringVar(&r.RequestedBy, "requested-by", "", "who asks for the recall (kept with the task)")
	f.StringVar(&r.Reason, "reason", "", "why (kept with the task)")
	return cmd
}

// flagFor maps a payload field to the enqueue flag that sets it.
func flagFor(field string) string {
	switch field {
	case "From_Account":
		return "from"
	case "To_Account":
		return "to"
	case "MsgKey":
		return "msgkey"
	case "requested_by":
		return "requested-by"
	case "SDKAppID":
		return "sdkappid"
	}
	return field
}
