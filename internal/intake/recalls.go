package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/recallq/recallq/enqueue"
	"github.com/recallq/recallq/internal/strictjson"
	"github.com/recallq/recallq/tasks"
)

// RecallRequest is one recall as a client sends it: the message, by
// Tencent's names, and optionally why. Who asked is the token's name; the
// app is the request's (?sdkappid=, see requestApp).
type RecallRequest struct {
	FromAccount string `json:"From_Account"`
	ToAccount   string `json:"To_Account"`
	MsgKey      string `json:"MsgKey"`
	Reason      string `json:"reason,omitempty"`
}

// BatchRequest is several recalls in one request.
type BatchRequest struct {
	Recalls []RecallRequest `json:"recalls"`
}

// What happened to a recall a request carried.
const (
	// StatusQueued: a new task was queued.
	StatusQueued = "queued"
	// StatusAlreadyQueued: a task for the same message was already there
	// (waiting, running, retrying or finished within the retention), or
	// the same message appears earlier in the batch; nothing new was queued.
	StatusAlreadyQueued = "already_queued"
	// StatusNotQueued, in a 503 answer only: Redis failed before this
	// recall was queued (or while it was, leaving it in doubt). Sending it
	// again queues it, or answers already_queued.
	StatusNotQueued = "not_queued"
)

// Queued is the answer for one recall.
type Queued struct {
	// TaskID is the recall's deterministic task ID, for GET /v1/recalls/{id}.
	TaskID string `json:"task_id"`
	// Status is StatusQueued or StatusAlreadyQueued; in a 503 answer,
	// StatusNotQueued too.
	Status string `json:"status"`
}

// BatchResponse answers a BatchRequest, one Queued per recall, in order.
type BatchResponse struct {
	Recalls []Queued `json:"recalls"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	// Error says what was wrong and what to do.
	Error string `json:"error"`
	// Invalid lists every bad recall of a rejected request.
	Invalid []Problem `json:"invalid,omitempty"`
	// Recalls, in a 503 answer to a POST, says what happened to each
	// recall of the request, in order: some may have been queued before
	// Redis failed.
	Recalls []Queued `json:"recalls,omitempty"`
}

// Problem is what is wrong with one recall of a request.
type Problem struct {
	// Field is the field's path: "MsgKey" for a single recall,
	// "recalls[3].MsgKey" in a batch.
	Field string `json:"field"`
	// Row is the recall's index in a batch; absent for a single recall.
	Row *int `json:"row,omitempty"`
	// Reason says what is wrong and how to fix it.
	Reason string `json:"reason"`
	// malformed marks a problem of JSON shape (an unknown field, a wrong
	// type) rather than of value: it makes the answer a 400, not a 422.
	malformed bool
}

// enqueueConcurrency is how many enqueues of one batch run at once.
const enqueueConcurrency = 16

// recallFields are the fields a recall may have, by exact name.
var recallFields = []string{"From_Account", "To_Account", "MsgKey", "reason"}

// postRecalls queues one recall or a batch, all or nothing: a request with
// any bad recall queues none and lists every bad one.
//
// Answers: 202 with the task IDs; 400 when the body is not JSON or not the
// shape of a recall or batch (unknown or mistyped fields), or ?sdkappid= is
// not a number; 403 when the token may not use the app; 413 when the body
// is too large; 422 when the shape is right but values are not (an empty
// field, one too long, an empty or too large batch, an app missing or not
// served); 503 when Redis fails.
func (s *Server) postRecalls(w http.ResponseWriter, r *http.Request) {
	app, ok := s.requestApp(w, r)
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	recalls, batch, derr := s.decode(body, app, requester(r.Context()))
	if derr != nil {
		writeError(w, derr.status, derr.msg, derr.problems)
		return
	}
	results, ok := s.enqueueEach(w, r, taskIDs(recalls), func(ctx context.Context, i int) (enqueue.Result, error) {
		return s.queue.Recall(ctx, recalls[i])
	})
	if !ok {
		return
	}
	if batch {
		writeJSON(w, http.StatusAccepted, BatchResponse{Recalls: results})
		return
	}
	writeJSON(w, http.StatusAccepted, results[0])
}

// readBody reads a request's body, bounded by ServeHTTP. It answers 413
// for a body over the bound and 400 for one that cannot be read, and then
// returns false.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"the body is larger than %d bytes: split the request into smaller ones", mbe.Limit), nil)
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "cannot read the body: "+err.Error(), nil)
		return nil, false
	}
	return body, true
}

// enqueueEach queues the tasks of a request, whose deterministic IDs are
// ids, by calling queue with each index, a few at a time, and logs what
// was accepted. A task whose ID appears twice is queued once; its later
// rows say already_queued. On the first Redis error the rest are not
// tried: it answers 503 with what happened to each recall (queued,
// already_queued or not_queued, in order) and returns false. A client
// retries the whole request, and what was queued reports already_queued.
func (s *Server) enqueueEach(w http.ResponseWriter, r *http.Request, ids []string,
	queue func(ctx context.Context, i int) (enqueue.Result, error)) ([]Queued, bool) {
	results, err := s.enqueueAll(r.Context(), ids, queue)
	counts := map[string]int{}
	for _, q := range results {
		counts[q.Status]++
	}
	logArgs := []any{"client", requester(r.Context()), "sdkappid", slotOf(r.Context()).app, "path", r.URL.Path,
		"recalls", len(results), "queued", counts[StatusQueued], "already_queued", counts[StatusAlreadyQueued]}
	if err != nil {
		s.log.ErrorContext(r.Context(), "intake: cannot queue recalls",
			append(logArgs, "not_queued", counts[StatusNotQueued], "err", s.logRedisErr(err))...)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Recalls: results, Error: fmt.Sprintf(
			"%d of %d recalls were not queued: %s. Sending the same request again is safe: "+
				"the recalls already queued (listed in \"recalls\") are then reported as already_queued",
			counts[StatusNotQueued], len(results), whyRedisFailed(err))})
		return nil, false
	}
	s.log.InfoContext(r.Context(), "intake: recalls accepted", logArgs...)
	return results, true
}

// taskIDs are the deterministic task IDs of payloads.
func taskIDs[T interface{ TaskID() string }](payloads []T) []string {
	ids := make([]string, len(payloads))
	for i, p := range payloads {
		ids[i] = p.TaskID()
	}
	return ids
}

// enqueueAll runs enqueueEach's queuing. It returns what happened to each
// recall, in order (StatusNotQueued for those Redis failed, or that were
// not tried after it failed), and the first Redis error.
func (s *Server) enqueueAll(ctx context.Context, ids []string, queue func(context.Context, int) (enqueue.Result, error)) ([]Queued, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	defer cancel()
	results := make([]Queued, len(ids))
	first := make(map[string]int, len(ids)) // the row of each ID's first appearance
	jobs := make(chan int, len(ids))
	for i, id := range ids {
		results[i] = Queued{TaskID: id, Status: StatusNotQueued}
		if _, seen := first[id]; !seen {
			first[id] = i
			jobs <- i
		}
	}
	close(jobs)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(enqueueConcurrency, len(first)) {
		wg.Go(func() {
			for i := range jobs {
				if ctx.Err() != nil {
					return
				}
				res, err := queue(ctx, i)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				results[i] = queuedOf(res)
			}
		})
	}
	wg.Wait()
	for i, id := range ids {
		if f := first[id]; f != i && results[f].Status != StatusNotQueued {
			results[i].Status = StatusAlreadyQueued // queued once, by row f
		}
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return results, firstErr
}

func queuedOf(res enqueue.Result) Queued {
	if res.AlreadyQueued {
		return Queued{TaskID: res.TaskID, Status: StatusAlreadyQueued}
	}
	return Queued{TaskID: res.TaskID, Status: StatusQueued}
}

// decodeError is a request the intake refuses before validating values.
type decodeError struct {
	status   int
	msg      string
	problems []Problem
}

const shapeHint = `send one recall {"From_Account":"...","To_Account":"...","MsgKey":"...","reason":"..."} or a batch {"recalls":[...]}`

// decode parses a body into recalls of app, validated, and says whether it
// was a batch. A bad request lists every bad recall, one problem each.
//
// The body is parsed by strictjson, as campaign JSON Lines are: a field
// given twice, invalid UTF-8 (or an escape that is no character) and a
// second JSON value are refused, not resolved. Field names are matched
// exactly; a name that differs from one only in letter case is refused
// with the right spelling.
func (s *Server) decode(body []byte, app uint64, requestedBy string) ([]tasks.Recall, bool, *decodeError) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, false, &decodeError{status: http.StatusBadRequest, msg: "the body is empty: " + shapeHint}
	}
	top, err := strictjson.Object(body)
	if err != nil {
		return nil, false, bodyError(err)
	}
	rawRows, batch := top["recalls"]
	if !batch {
		rc, p := recall(top, "", nil, app, requestedBy)
		if p != nil {
			return nil, false, problemsError(false, 1, []Problem{*p})
		}
		return []tasks.Recall{rc}, false, nil
	}
	var problems []Problem
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "recalls" {
			problems = append(problems, Problem{Field: memberName(k), malformed: true,
				Reason: `is not a field of a batch: a batch is {"recalls":[...]} and nothing else`})
		}
	}
	rows, err := strictjson.Array(rawRows)
	if err != nil {
		problems = append(problems, Problem{Field: "recalls", malformed: true, Reason: "must be an array of recalls"})
	}
	if len(problems) > 0 {
		return nil, true, &decodeError{status: http.StatusBadRequest,
			msg: "the body is not a batch of recalls: " + describeProblems(problems), problems: problems}
	}
	switch {
	case len(rows) == 0:
		p := []Problem{{Field: "recalls", Reason: "is empty: send at least one recall"}}
		return nil, true, &decodeError{status: http.StatusUnprocessableEntity, msg: "recalls: is empty: send at least one recall", problems: p}
	case len(rows) > s.cfg.MaxBatch:
		reason := fmt.Sprintf("has %d recalls; at most %d are allowed in one request: split the batch", len(rows), s.cfg.MaxBatch)
		p := []Problem{{Field: "recalls", Reason: reason}}
		return nil, true, &decodeError{status: http.StatusUnprocessableEntity, msg: "recalls: " + reason, problems: p}
	}
	out := make([]tasks.Recall, len(rows))
	for i, raw := range rows {
		idx := i
		prefix := "recalls[" + strconv.Itoa(i) + "]"
		obj, err := strictjson.Object(raw)
		if err != nil {
			problems = append(problems, Problem{Field: prefix, Row: &idx, malformed: true,
				Reason: "is not a JSON object" + `: a recall is {"From_Account":"...","To_Account":"...","MsgKey":"..."}`})
			continue
		}
		rc, p := recall(obj, prefix+".", &idx, app, requestedBy)
		if p != nil {
			problems = append(problems, *p)
			continue
		}
		out[i] = rc
	}
	if len(problems) > 0 {
		return nil, true, problemsError(true, len(rows), problems)
	}
	return out, true, nil
}

// bodyError answers a body of recalls strictjson refused (see bodyProblem).
func bodyError(err error) *decodeError {
	p, derr := bodyProblem(err, shapeHint, "recalls")
	switch {
	case derr != nil:
		return derr
	case p.Row != nil:
		return problemsError(true, 0, []Problem{*p})
	}
	return problemsError(false, 1, []Problem{*p})
}

// bodyProblem reads a body strictjson refused. Invalid UTF-8 in a value
// is a bad value (422, like an empty or too long one), named by its field;
// a field given twice is a bad shape (400), named too, with its row when
// it lies in an element of the member list; it returns that problem. The
// rest is not JSON or not an object: it returns the 400 answer, which
// gives hint, the body's shape.
func bodyProblem(err error, hint, list string) (*Problem, *decodeError) {
	var se *strictjson.Error
	if !errors.As(err, &se) || se.Field() == "" {
		return nil, &decodeError{status: http.StatusBadRequest, msg: "the body " + err.Error() + ": " + hint}
	}
	p := Problem{Field: se.Field(), Reason: se.Err.Error(), malformed: !errors.Is(err, strictjson.ErrInvalidUTF8)}
	var tokens []string
	for tok := range se.Pointer.Tokens() {
		tokens = append(tokens, tok)
	}
	if len(tokens) >= 2 && tokens[0] == list {
		if row, err := strconv.Atoi(tokens[1]); err == nil {
			p.Row = &row
		}
	}
	return &p, nil
}

// recall reads one recall of app from obj and validates it. It returns the
// first problem, its field named with prefix.
func recall(obj map[string]jsontext.Value, prefix string, row *int, app uint64, requestedBy string) (tasks.Recall, *Problem) {
	rr, p := decodeRecall(obj, prefix, row)
	if p != nil {
		return tasks.Recall{}, p
	}
	rc := tasks.Recall{
		SDKAppID:    app,
		FromAccount: rr.FromAccount,
		ToAccount:   rr.ToAccount,
		MsgKey:      rr.MsgKey,
		Reason:      rr.Reason,
		RequestedBy: requestedBy,
	}
	if err := rc.Validate(); err != nil {
		p := fieldProblem(err)
		p.Field, p.Row = prefix+p.Field, row
		return tasks.Recall{}, &p
	}
	return rc, nil
}

// decodeRecall reads one recall's fields from obj. It returns the first
// problem, its field named with prefix.
func decodeRecall(obj map[string]jsontext.Value, prefix string, row *int) (RecallRequest, *Problem) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(recallFields, k) {
			reason := "is not a field of a recall: use From_Account, To_Account, MsgKey and reason (names are case-sensitive)"
			if want := strictjson.Miscased(k, recallFields); want != "" {
				reason = "is not a field of a recall: names are case-sensitive: write " + want
			}
			return RecallRequest{}, &Problem{Field: prefix + memberName(k), Row: row, malformed: true, Reason: reason}
		}
	}
	var rr RecallRequest
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"From_Account", &rr.FromAccount},
		{"To_Account", &rr.ToAccount},
		{"MsgKey", &rr.MsgKey},
		{"reason", &rr.Reason},
	} {
		raw, ok := obj[f.name]
		if !ok {
			continue
		}
		v, err := strictjson.String(raw)
		if err != nil {
			return RecallRequest{}, &Problem{Field: prefix + f.name, Row: row, malformed: true, Reason: "must be a string"}
		}
		*f.dst = v
	}
	return rr, nil
}

// problemsError is the answer to a request with bad recalls (see refused).
func problemsError(batch bool, total int, problems []Problem) *decodeError {
	what := "the recall is invalid"
	switch {
	case batch && total == 0: // the body could not be read to its end
		what = "a recall of the batch is invalid"
	case batch:
		what = fmt.Sprintf("%d of %d recalls are invalid", len(problems), total)
	}
	return refused(what, problems)
}

// refused is the answer to a request with problems: 400 if any is
// malformed, else 422; what was wrong, every problem listed; nothing
// queued.
func refused(what string, problems []Problem) *decodeError {
	status := http.StatusUnprocessableEntity
	for _, p := range problems {
		if p.malformed {
			status = http.StatusBadRequest
		}
	}
	return &decodeError{status: status, problems: problems,
		msg: what + "; nothing was queued: " + describeProblems(problems)}
}

// describeProblems names the first problem and counts the rest.
func describeProblems(problems []Problem) string {
	s := problems[0].Field + ": " + problems[0].Reason
	if n := len(problems) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more, listed in \"invalid\")", n)
	}
	return s
}

// memberName is how a problem names a member the body should not have: by
// its name, or `""` for the empty name, so that no problem names nothing.
func memberName(k string) string {
	if k == "" {
		return `""`
	}
	return k
}
