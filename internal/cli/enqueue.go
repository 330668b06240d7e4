package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/tasks"
)

func newEnqueueCmd(g *globals) *cobra.Command {
	var app appFlags
	var r tasks.Recall
	var group groupFlags
	cmd := &cobra.Command{
		Use:   "enqueue --from USER --to USER --msgkey KEY | --group G --seq N[,N...] [--topic T]",
		Short: "Queue one recall (or a group's messages) on the urgent lane",
		Long: `Queue one recall on the urgent lane and print its task ID. Queuing the same
message again prints "already queued" and queues nothing.

With --group, queue the recall of the group's messages --seq names (their
MsgSeqs; of the topic --topic in a topic community): one task per seq,
one line each. The worker recalls up to ten seqs of a group in one call.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			one, err := app.oneApp(cmd, "enqueue", false)
			if err != nil {
				return err
			}
			id := one.SDKAppID
			if cmd.Flags().Changed("group") || cmd.Flags().Changed("seq") || cmd.Flags().Changed("topic") {
				if r.FromAccount != "" || r.ToAccount != "" || r.MsgKey != "" {
					return usagef("--group recalls group messages; --from, --to and --msgkey recall a one-to-one message: give one or the other")
				}
				return group.enqueue(cmd, g, &app, id, r.RequestedBy, r.Reason)
			}
			r.SDKAppID = id
			if err := r.Validate(); err != nil {
				return fieldUsage(err, flagFor)
			}
			c, conn, err := app.enqueuer(id)
			if err != nil {
				return err
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
	f.StringVar(&group.group, "group", "", "recall messages of this group (its GroupId)")
	f.StringVar(&group.seqs, "seq", "", "with --group: the messages' MsgSeqs, comma-separated")
	f.StringVar(&group.topic, "topic", "", "with --group: the topic (TopicId) of a topic community")
	return cmd
}

// groupFlags are enqueue's flags of a group recall.
type groupFlags struct {
	group, seqs, topic string
}

// enqueue queues one group recall per seq and prints each task ID.
func (gf groupFlags) enqueue(cmd *cobra.Command, g *globals, app *appFlags, id uint64, requestedBy, reason string) error {
	seqs, err := parseSeqs(gf.seqs)
	if err != nil {
		return err
	}
	base := tasks.GroupRecall{SDKAppID: id, GroupID: gf.group, TopicID: gf.topic, RequestedBy: requestedBy, Reason: reason}
	for _, seq := range seqs {
		one := base
		one.MsgSeq = seq
		if err := one.Validate(); err != nil {
			return fieldUsage(err, groupFlagFor)
		}
	}
	c, conn, err := app.enqueuer(id)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.GroupRecalls(cmd.Context(), base, seqs)
	for _, r := range res {
		if r.AlreadyQueued {
			fmt.Fprintf(g.stdout, "%s already queued\n", r.TaskID)
		} else {
			fmt.Fprintf(g.stdout, "%s queued\n", r.TaskID)
		}
	}
	if err != nil {
		return redisconn.Explain(err, conn)
	}
	return nil
}

// maxSeqsPerEnqueue bounds --seq: a longer list is a campaign's.
const maxSeqsPerEnqueue = 1000

// parseSeqs reads --seq: MsgSeqs, comma-separated, each at least 1, each
// once.
func parseSeqs(s string) ([]uint64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, usagef("--seq: give the messages' MsgSeqs, comma-separated (e.g. --seq 101,102)")
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxSeqsPerEnqueue {
		return nil, usagef("--seq: %d MsgSeqs; give at most %d (start a campaign for more)", len(parts), maxSeqsPerEnqueue)
	}
	seen := map[uint64]bool{}
	out := make([]uint64, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 64)
		if err != nil || n == 0 {
			return nil, usagef("--seq: %q is not a MsgSeq: give whole numbers from 1, comma-separated", strings.TrimSpace(p))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// groupFlagFor maps a group payload field to the flag that sets it.
func groupFlagFor(field string) string {
	switch field {
	case "GroupId":
		return "group"
	case "TopicId":
		return "topic"
	case "MsgSeq":
		return "seq"
	}
	return flagFor(field)
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

// fieldUsage turns a payload's validation error into a usage error that
// names the flag (flagOf maps the payload field to it).
func fieldUsage(err error, flagOf func(string) string) error {
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		return usagef("--%s: %s", flagOf(fe.Field), fe.Reason)
	}
	return usageError{err}
}

// enqueuer opens the producer client of app id, and the Redis connection
// whose errors redisconn.Explain reads.
func (a *appFlags) enqueuer(id uint64) (*enqueue.Client, *redisconn.Conn, error) {
	conn, err := a.redis()
	if err != nil {
		return nil, nil, err
	}
	c, err := enqueue.New(enqueue.Config{Redis: conn.AsynqOpt(), SDKAppID: id})
	if err != nil {
		return nil, nil, usageError{err}
	}
	return c, conn, nil
}
