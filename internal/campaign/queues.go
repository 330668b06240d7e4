package campaign

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/tasks"
)

// bulkQueues are the asynq queues a campaign's tasks can be in: its app's
// bulk queue, where the feeder puts them, and the legacy bulk queue, where
// a feeder of a recallq from before queues carried the app put them (the
// workers still serve it).
func bulkQueues(app uint64) [2]string {
	return [2]string{tasks.AppQueue(tasks.QueueBulk, app), tasks.QueueBulk}
}

// appOf reads the campaign's app from its record.
func appOf(ctx context.Context, rdb redis.UniversalClient, name string) (uint64, error) {
	s, err := rdb.HGet(ctx, keysFor(name).meta, metaSDKAppID).Result()
	if err != nil {
		return 0, fmt.Errorf("campaign %s: read its app: %w", name, err)
	}
	app, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("campaign %s: its record's sdkappid %q is not a number", name, s)
	}
	return app, nil
}

// taskInfo looks the task up in the campaign's bulk queues; the error is
// asynq.ErrTaskNotFound when neither holds it.
func taskInfo(insp *asynq.Inspector, app uint64, id string) (*asynq.TaskInfo, error) {
	for _, q := range bulkQueues(app) {
		info, err := insp.GetTaskInfo(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		return info, err
	}
	return nil, asynq.ErrTaskNotFound
}

// deleteTask deletes the task from whichever of the campaign's bulk queues
// holds it. It returns nil when it deleted it or neither holds it, and
// asynq's error otherwise (the task is active: it ends on its own).
func deleteTask(insp *asynq.Inspector, app uint64, id string) error {
	for _, q := range bulkQueues(app) {
		err := insp.DeleteTask(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		return err
	}
	return nil
}
