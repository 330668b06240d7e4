package campaign

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/worker"
)

// CodeMeaning is what a dead letter's code means, for people: the outcome
// table's meaning, or what no answer (worker.NoAnswer) was. A row with no
// answer may also be of no call at all (a task archived, deleted or
// cancelled by hand before it called): its detail says which.
func CodeMeaning(code int) string {
	if code == worker.NoAnswer {
		return "no answer from Tencent (a network error, timeout or HTTP error), or no call at all: see the detail"
	}
	return outcome(code).Meaning
}

// outcome is the outcome table's row for code, an answer of
// admin_msgwithdraw or of group_msg_recall (a campaign holds tasks of
// both; no code is in both APIs' rows with different meanings).
func outcome(code int) worker.Outcome {
	if o := worker.Classify(code); o.Class != worker.Unknown {
		return o
	}
	return worker.ClassifyGroup(code)
}

// ExportHeader is the header of `campaign export`. The first three columns
// are those of a campaign file of one-to-one messages, the last three those
// of group messages (a row fills the three of its kind): fix what made them
// fail and the export can be imported again as a campaign of its own.
var ExportHeader = []string{colFrom, colTo, colMsgKey, "code", "meaning", "detail", "time", colGroupID, colTopicID, colMsgSeq}

// exportChunk is how many audit rows one round trip reads.
const exportChunk = 1000

// Export writes every dead letter of the campaign as CSV to w, in the
// order they happened, and returns how many. Every cell is safe to open in
// a spreadsheet (see neutralise). It reads recallq's own audit,
// which keeps every row however many (asynq's archive keeps at most 10,000
// tasks and trims the rest). A dead letter that was run again by hand and
// then ended otherwise is not one any more, and is left out; ExportHistory
// writes it too.
func (m *Manager) Export(ctx context.Context, name string, w io.Writer) (int, error) {
	return m.export(ctx, name, w, false)
}

// ExportHistory writes the whole audit: every dead letter, also those run
// again later, and a row for each such re-run that ended otherwise (code
// 0 or 20023; worker.NoAnswer for one deleted by hand, cancelled or
// unaccounted; the detail saying so), at whichever attempt it ended.
func (m *Manager) ExportHistory(ctx context.Context, name string, w io.Writer) (int, error) {
	return m.export(ctx, name, w, true)
}

func (m *Manager) export(ctx context.Context, name string, w io.Writer, all bool) (int, error) {
	md, err := readMeta(ctx, m.rdb, name)
	if err != nil {
		return 0, err
	}
	// Campaigns created before the dead letters were indexed list all.
	all = all || md.audit < auditIndexed
	k := keysFor(name)
	cw := csv.NewWriter(w)
	if err := cw.Write(ExportHeader); err != nil {
		return 0, err
	}
	n := 0
	for start := int64(0); ; start += exportChunk {
		rows, err := m.rdb.LRange(ctx, k.dead, start, start+exportChunk-1).Result()
		if err != nil {
			return n, fmt.Errorf("campaign %s: read the audit: %w", name, err)
		}
		var current []*redis.StringCmd
		if !all {
			pipe := m.rdb.Pipeline()
			for _, s := range rows {
				a, err := decodeAudit(s)
				if err != nil {
					return n, fmt.Errorf("campaign %s: audit row %d: %w", name, n+1, err)
				}
				id, err := a.row.taskID(md.sdkAppID)
				if err != nil {
					return n, fmt.Errorf("campaign %s: audit row %d: %w", name, n+1, err)
				}
				current = append(current, pipe.HGet(ctx, k.deadIDs, id))
			}
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return n, fmt.Errorf("campaign %s: read the dead letters: %w", name, err)
			}
		}
		for i, s := range rows {
			a, err := decodeAudit(s)
			if err != nil {
				return n, fmt.Errorf("campaign %s: audit row %d: %w", name, n+1, err)
			}
			if !all && !isCurrentDead(current[i].Val(), start+int64(i)) {
				continue
			}
			code, _ := strconv.Atoi(a.code)
			r := a.row
			if err := cw.Write(neutraliseAll([]string{r.from, r.to, r.msgKey, a.code, CodeMeaning(code), a.detail, a.at.Format(time.RFC3339Nano),
				r.groupID, r.topicID, r.msgSeq})); err != nil {
				return n, err
			}
			n++
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, err
		}
		if len(rows) < exportChunk {
			return n, nil
		}
	}
}

// isCurrentDead reports whether the dead_ids entry d ("CODE INDEX ROW")
// names the audit row at index: the task is a dead letter now, and this is
// the row of its latest dead-lettering.
func isCurrentDead(d string, index int64) bool {
	_, rest, ok := strings.Cut(d, " ")
	if !ok {
		return false
	}
	idx, _, ok := strings.Cut(rest, " ")
	return ok && idx == strconv.FormatInt(index, 10)
}
