package faults

import (
	"context"
	"fmt"
	"slices"

	"github.com/hibiken/asynq"

	"github.com/recallq/recallq/internal/fanout"
	"github.com/recallq/recallq/tasks"
	"github.com/recallq/recallq/worker"
)

// Codes the judgement needs.
const (
	codeRecalled        = 0
	codeAlreadyRecalled = 20023
	codeMsgNotFound     = 20022
)

// deadLetterCodes are the answers after which a task must be dead-lettered
// (worker/outcome.go's DeadLetter rows): the recall can never succeed.
var deadLetterCodes = []int{20022, 90054, 90003, 90008, 90001}

// listPageSize is the page size of the Inspector's task lists.
const listPageSize = 1000

// finalState is where a task ended, as asynq's Inspector reports it.
type finalState struct {
	state   asynq.TaskState // TaskStateCompleted or TaskStateArchived
	retried int             // failures counted against its retry budget
	lastErr string          // for archived tasks: why
}

// finalStates lists the completed and archived tasks of the bulk queue,
// page by page, by task ID.
func finalStates(insp *asynq.Inspector) (map[string]finalState, error) {
	out := make(map[string]finalState)
	for _, l := range []struct {
		state asynq.TaskState
		list  func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	}{
		{asynq.TaskStateCompleted, insp.ListCompletedTasks},
		{asynq.TaskStateArchived, insp.ListArchivedTasks},
	} {
		for page := 1; ; page++ {
			infos, err := l.list(tasks.AppQueue(tasks.QueueBulk, sdkAppID), asynq.Page(page), asynq.PageSize(listPageSize))
			if err != nil {
				return nil, fmt.Errorf("list %s tasks, page %d: %w", l.state, page, err)
			}
			for _, ti := range infos {
				if prev, dup := out[ti.ID]; dup {
					return nil, fmt.Errorf("task %s is both %s and %s", ti.ID, prev.state, l.state)
				}
				out[ti.ID] = finalState{state: l.state, retried: ti.Retried, lastErr: ti.LastErr}
			}
			if len(infos) < listPageSize {
				break
			}
		}
	}
	return out, nil
}

// readFates reads the fate of each of items from the simulator with
// fate (simProc.fate, simProc.groupFate), fateWorkers at a time.
func readFates[T any](ctx context.Context, items []T, fate func(context.Context, T) ([]int, error)) ([][]int, error) {
	fates := make([][]int, len(items))
	err := fanout.Each(ctx, len(items), fateWorkers, func(ctx context.Context, i int) error {
		f, err := fate(ctx, items[i])
		fates[i] = f
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the fates from the simulator: %w", err)
	}
	return fates, nil
}

// tally counts where one kind of task ended, against the simulator's
// answers for what it recalls (a message, a group seq).
type tally struct {
	// recalled: completed, and the simulator recalled it: its last answer
	// was 0, or a 0 came after the last "recalled before".
	recalled int
	// already: completed, and the simulator's last answer was "recalled
	// before" (20023; group_msg_recall 10030) after a recall: an earlier
	// call recalled it but its answer never made it into the task (a
	// killed worker, a timeout, a cut connection).
	already int
	// dead: archived, by the simulator's last answer (worker.NoAnswer: it
	// never answered).
	dead       int
	deadByCode map[int]int
	// lost: neither completed nor archived, or completed although the
	// simulator never recalled it.
	lost int
	// wrong: archived although the simulator's last answer is not a code
	// the worker's outcome table dead-letters (91000 exhaustion, timeouts,
	// configuration errors).
	wrong int
	// retried: finished tasks that used at least one retry.
	retried int
	// examples: of lost and wrongly dead-lettered tasks (and, for groups,
	// seqs off plan), a few.
	examples []string
}

func newTally() tally { return tally{deadByCode: map[int]int{}} }

// example notes a finding, up to maxExamples.
func (t *tally) example(format string, a ...any) {
	if len(t.examples) < maxExamples {
		t.examples = append(t.examples, fmt.Sprintf(format, a...))
	}
}

// verdict is the judgement of one run: every queued message's task state
// in asynq against every answer the simulator gave for the message.
type verdict struct {
	tally
	queued, missing int
	// missingNotDead: missing messages whose task did not end archived
	// with 20022; presentDead: messages that exist but were dead-lettered.
	missingNotDead, presentDead int
}

// maxExamples bounds verdict.examples.
const maxExamples = 8

// judge compares the tasks' final states with the simulator's fates.
// fates[i] is every code the simulator answered for msgs[i], in order.
func judge(msgs []message, states map[string]finalState, fates [][]int) verdict {
	v := verdict{tally: newTally(), queued: len(msgs)}
	example := v.example
	for i, m := range msgs {
		fate := fates[i]
		last := lastCode(fate)
		if m.missing {
			v.missing++
		}
		st, ok := states[m.taskID]
		if !ok {
			v.lost++
			example("lost: %s (MsgKey %s) is neither completed nor archived; simulator answered %v", m.taskID, m.key, fate)
			continue
		}
		if st.retried > 0 {
			v.retried++
		}
		switch st.state {
		case asynq.TaskStateCompleted:
			switch {
			case !slices.Contains(fate, codeRecalled) && !slices.Contains(fate, codeAlreadyRecalled):
				v.lost++
				example("lost: %s (MsgKey %s) completed but the simulator never answered 0 or 20023: %v", m.taskID, m.key, fate)
			case last == codeAlreadyRecalled:
				v.already++
			case last == codeRecalled:
				v.recalled++
			case lastIndex(fate, codeRecalled) > lastIndex(fate, codeAlreadyRecalled):
				// Answered again after it completed: a duplicate call.
				v.recalled++
			default:
				v.already++
			}
			if m.missing {
				v.missingNotDead++
			}
		case asynq.TaskStateArchived:
			v.dead++
			v.deadByCode[last]++
			if !slices.Contains(deadLetterCodes, last) {
				v.wrong++
				example("wrongly dead-lettered: %s (MsgKey %s): simulator answered %v; stored error %q", m.taskID, m.key, fate, st.lastErr)
			}
			switch {
			case m.missing && last != codeMsgNotFound:
				v.missingNotDead++
			case !m.missing:
				v.presentDead++
			}
		}
	}
	return v
}

// lastCode is the simulator's last answer in fate, worker.NoAnswer when
// it never answered.
func lastCode(fate []int) int {
	if len(fate) == 0 {
		return worker.NoAnswer
	}
	return fate[len(fate)-1]
}

func lastIndex(s []int, x int) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == x {
			return i
		}
	}
	return -1
}

// Codes of group_msg_recall the group judgement needs.
const (
	// codeGroupRecalledAgain is the simulator's answer for a seq recalled
	// before (its default GroupSettings.RecalledAgain); the worker's table
	// treats it as done.
	codeGroupRecalledAgain = 10030
)

// groupDeadLetter reports whether code dead-letters a group seq's task:
// the worker's outcome table says so (worker.ClassifyGroup).
func groupDeadLetter(code int) bool {
	return worker.ClassifyGroup(code).Class == worker.DeadLetter
}

// groupVerdict is the judgement of a run's group campaign: every group
// seq's task state in asynq against every answer the simulator gave for
// the seq (the done codes: 0, then codeGroupRecalledAgain for a seq
// recalled before; every seq of the campaign exists, so a done task must
// have recalled it once), and against the plan (which seqs were made
// unrecallable).
type groupVerdict struct {
	tally
	queued int
	// planned is how many seqs the plan says must end dead-lettered with
	// codeGroupUnrecallable.
	planned int
	// offPlan: seqs that did not end as planned: a planned dead letter
	// that completed, was recalled (a 0 in its fate) or was archived with
	// another code; a seq to recall that was archived.
	offPlan int
}

// ok reports whether the group campaign ended as planned.
func (v groupVerdict) ok() bool { return v.lost == 0 && v.wrong == 0 && v.offPlan == 0 }

// judgeGroups compares the group seqs' final states with the simulator's
// fates and the plan. fates[i] is every code the simulator answered for
// seqs[i], in order.
func judgeGroups(seqs []groupSeq, states map[string]finalState, fates [][]int) groupVerdict {
	v := groupVerdict{tally: newTally(), queued: len(seqs)}
	example := v.example
	for i, g := range seqs {
		fate := fates[i]
		last := lastCode(fate)
		if g.dead {
			v.planned++
			if slices.Contains(fate, codeRecalled) {
				v.offPlan++
				example("off plan: group %s seq %d was to be dead-lettered with %d but the simulator recalled it: %v", g.group, g.seq, codeGroupUnrecallable, fate)
			}
		}
		st, ok := states[g.taskID]
		if !ok {
			v.lost++
			example("lost: %s (group %s seq %d) is neither completed nor archived; simulator answered %v", g.taskID, g.group, g.seq, fate)
			continue
		}
		if st.retried > 0 {
			v.retried++
		}
		switch st.state {
		case asynq.TaskStateCompleted:
			switch {
			case !slices.Contains(fate, codeRecalled):
				v.lost++
				example("lost: %s (group %s seq %d) completed but the simulator never answered 0: %v", g.taskID, g.group, g.seq, fate)
			case lastIndex(fate, codeRecalled) > lastIndex(fate, codeGroupRecalledAgain):
				v.recalled++
			default:
				v.already++
			}
			if g.dead && !slices.Contains(fate, codeRecalled) {
				v.offPlan++
				example("off plan: %s (group %s seq %d) completed but was to be dead-lettered with %d: %v", g.taskID, g.group, g.seq, codeGroupUnrecallable, fate)
			}
		case asynq.TaskStateArchived:
			v.dead++
			v.deadByCode[last]++
			if !groupDeadLetter(last) {
				v.wrong++
				example("wrongly dead-lettered: %s (group %s seq %d): simulator answered %v; stored error %q", g.taskID, g.group, g.seq, fate, st.lastErr)
			}
			switch {
			case g.dead && last != codeGroupUnrecallable && !slices.Contains(fate, codeRecalled):
				v.offPlan++
				example("off plan: %s (group %s seq %d) dead-lettered after %v, not %d", g.taskID, g.group, g.seq, fate, codeGroupUnrecallable)
			case !g.dead:
				v.offPlan++
				example("off plan: %s (group %s seq %d) was to be recalled but was dead-lettered after %v", g.taskID, g.group, g.seq, fate)
			}
		}
	}
	return v
}
