package campaign

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Reject is one input record that was not queued.
type Reject struct {
	Line   int    // the input line the record starts on
	Reason string // what is wrong and how to fix it
	// The fields as read (empty when the record could not be parsed, or
	// gives no such field): a one-to-one message's, a group message's.
	FromAccount, ToAccount, MsgKey string
	GroupID, TopicID, MsgSeq       string
}

// rejectOf is the Reject of a record that is not queued.
func rejectOf(r record) Reject {
	return Reject{Line: r.line, Reason: r.reject, FromAccount: echo(r.row.from), ToAccount: echo(r.row.to), MsgKey: echo(r.row.msgKey),
		GroupID: echo(r.row.groupID), TopicID: echo(r.row.topicID), MsgSeq: echo(r.row.msgSeq)}
}

// RejectsHeader is the header of a rejects file. Its first three columns
// and its last three are those of a campaign file of one-to-one messages
// and of group messages, so a fixed rejects file can be imported as a
// campaign of its own (each row is the kind whose columns it fills; line
// and reason are ignored).
var RejectsHeader = []string{colFrom, colTo, colMsgKey, "line", "reason", colGroupID, colTopicID, colMsgSeq}

// DefaultRejectsPath is NAME.rejects.csv beside the input file, or in the
// working directory when the input is stdin.
func DefaultRejectsPath(name, source string) string {
	if source == "" || source == "-" {
		return name + ".rejects.csv"
	}
	return filepath.Join(filepath.Dir(source), name+".rejects.csv")
}

// RejectsFile writes rejects as CSV, every cell safe to open in a
// spreadsheet (see neutralise). The file is created (truncated) on
// the first reject only, so a clean import leaves no empty file behind.
// Every import run rewrites it whole: a re-run reads the input from the
// start, so the file always lists every reject of the input.
type RejectsFile struct {
	Path string
	f    *os.File
	w    *csv.Writer
	n    int
}

// Write records one reject.
func (r *RejectsFile) Write(rej Reject) error {
	if r.w == nil {
		f, err := os.Create(r.Path)
		if err != nil {
			return fmt.Errorf("create the rejects file: %w", err)
		}
		r.f, r.w = f, csv.NewWriter(f)
		if err := r.w.Write(RejectsHeader); err != nil {
			return err
		}
	}
	r.n++
	return r.w.Write(neutraliseAll([]string{rej.FromAccount, rej.ToAccount, rej.MsgKey, strconv.Itoa(rej.Line), rej.Reason,
		rej.GroupID, rej.TopicID, rej.MsgSeq}))
}

// Count is how many rejects were written.
func (r *RejectsFile) Count() int { return r.n }

// Close flushes and closes the file, if one was created.
func (r *RejectsFile) Close() error {
	if r.w == nil {
		return nil
	}
	r.w.Flush()
	err := r.w.Error()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}

var _ io.Closer = (*RejectsFile)(nil)
