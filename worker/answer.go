package worker

import (
	"fmt"
	"strconv"
	"strings"
)

// AnswerError is a failed call as Tencent answered it: its Code (NoAnswer
// when no answer was read) and the code's Meaning from the outcome table.
// The errors the handler returns for a dead letter, a rate limit and a
// transient failure wrap one, so errors.As finds the code in process. asynq
// keeps only an error's text, which then starts with AnswerError's text;
// StoredCode reads the code back from it. No other package reads that text.
type AnswerError struct {
	Code    int
	Meaning string
}

// Error is "tencent <code>: <meaning>", or "no answer".
func (e *AnswerError) Error() string {
	if e.Code == NoAnswer {
		return "no answer"
	}
	return fmt.Sprintf("tencent %d: %s", e.Code, e.Meaning)
}

// answer is o as an AnswerError.
func (o Outcome) answer() *AnswerError { return &AnswerError{Code: o.Code, Meaning: o.Meaning} }

// StoredCode reads Tencent's code from the text of an error the handler
// returned, as asynq stores it (TaskInfo.LastErr): the code of the
// AnswerError it starts with ("tencent 20022: ..."), or NoAnswer when it
// starts with none (no answer, a stop, a configuration error, a bad
// payload).
func StoredCode(lastErr string) int {
	rest, ok := strings.CutPrefix(lastErr, "tencent ")
	if !ok {
		return NoAnswer
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end <= 0 {
		return NoAnswer
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return NoAnswer
	}
	return n
}
