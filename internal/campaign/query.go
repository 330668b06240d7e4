package campaign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/limiter"
	"github.com/recallq/recallq/internal/tim"
	"github.com/recallq/recallq/worker"
)

// FormatQuery is the format recorded for a campaign whose rows came from
// a query (the capture index or admin_getroammsg) rather than a file.
const FormatQuery Format = "query"

// Row is one message to recall: a one-to-one message (From, To, MsgKey),
// or a group message (Group true: GroupID, TopicID, MsgSeq).
type Row struct {
	From, To, MsgKey string
	// Group marks a group message.
	Group            bool
	GroupID, TopicID string
	MsgSeq           uint64
}

// ImportRows imports rows found by a query as the campaign cfg.Name, as
// Import does a file (validation, rejects, checkpoint): source names the
// query, e.g. "capture: --sender spammer 2024-11-05T10:00:00Z..2024-11-05T16:00:00Z".
// A re-run of an interrupted import must find the same rows in the same
// order, so a query re-run gives absolute times. Errors are Import's.
func ImportRows(ctx context.Context, cfg ImportConfig, source string, rows []Row) (ImportResult, error) {
	in := &Input{Format: FormatQuery, FormatHow: "from a query", Source: source,
		counter: &countingReader{}, records: &rowReader{rows: rows}}
	return Import(ctx, cfg, in)
}

// SenderRows reads the messages q selects from the capture's index, one-to-one
// and group ones alike, as rows to import, in the index's order; groups is
// how many of the rows are group messages.
func SenderRows(ctx context.Context, ix *capture.Index, q capture.Query) (rows []Row, groups int, err error) {
	err = ix.Each(ctx, q, func(m capture.Message) error {
		if m.Kind == capture.Group {
			groups++
			// A topic's MsgSeq is the topic's own: without its TopicId
			// it names the community's message of that MsgSeq.
			rows = append(rows, Row{Group: true, GroupID: m.GroupID, TopicID: m.TopicID, MsgSeq: m.MsgSeq})
			return nil
		}
		rows = append(rows, Row{From: m.From, To: m.To, MsgKey: m.MsgKey})
		return nil
	})
	return rows, groups, err
}

// rowReader yields rows as records, numbered from 1.
type rowReader struct {
	rows []Row
	i    int
}

func (r *rowReader) next() (record, error) {
	if r.i == len(r.rows) {
		return record{}, io.EOF
	}
	x := r.rows[r.i]
	r.i++
	rec := record{line: r.i, row: row{from: x.From, to: x.To, msgKey: x.MsgKey}}
	if x.Group {
		rec.row = row{kind: kindGroup, groupID: x.GroupID, topicID: x.TopicID, msgSeq: strconv.FormatUint(x.MsgSeq, 10)}
	}
	return rec, nil
}

// RoamAPI reads one-to-one history (*tim.Client).
type RoamAPI interface {
	GetRoamMsg(ctx context.Context, req tim.RoamRequest) (tim.RoamPage, error)
}

// Defaults of ConversationConfig.
const (
	// DefaultRoamPage is how many messages one admin_getroammsg page asks for.
	DefaultRoamPage = 100
	// DefaultRoamAttempts bounds the tries of one page after transient
	// failures (network, 91000, unknown codes).
	DefaultRoamAttempts = 5
	// DefaultRoamSlowDown is how long every caller of the API pauses after
	// a "too many requests" answer.
	DefaultRoamSlowDown = time.Second
)

// ConversationConfig configures Conversation.
type ConversationConfig struct {
	// API reads the history. Required.
	API RoamAPI
	// Limiter is the shared limiter of admin_getroammsg's own bucket
	// ("<sdkappid>:admin_getroammsg", 200 calls/s). Required.
	Limiter worker.Limiter
	// A and B are the two accounts; the history is read as A sees it.
	A, B string
	// Since and Until bound MsgTimeStamp, inclusive. Zero Until is now.
	Since, Until time.Time
	// PageSize: default DefaultRoamPage.
	PageSize int
	// Attempts: default DefaultRoamAttempts.
	Attempts int
	// SlowDown: default DefaultRoamSlowDown.
	SlowDown time.Duration
	// Backoff is the first wait after a transient failure, doubled each
	// time (with jitter). Default 200 ms.
	Backoff time.Duration
	// Logger: default discards.
	Logger *slog.Logger
}

// ConversationResult says what Conversation read.
type ConversationResult struct {
	// Pages read (answers with code 0).
	Pages int
	// Found: messages of the window not yet recalled (passed to fn).
	Found int
	// AlreadyRecalled: messages Tencent marks recalled (MsgFlagBits), skipped.
	AlreadyRecalled int
}

// ErrRoam is wrapped by Conversation's errors that come from Tencent's
// answers (a configuration or dead-letter code, or a page that failed
// Attempts times).
var ErrRoam = errors.New("admin_getroammsg failed")

// Conversation pages through the one-to-one history of A and B with
// admin_getroammsg, each call taking a slot of the shared limiter first,
// until Tencent says Complete, and calls fn with every message not already
// recalled. Answers follow the worker's one outcome table
// (worker.Classify): transient codes and unknown codes are retried up to
// Attempts times with backoff, a rate-limit answer slows every caller down
// and is retried without using an attempt, a refused UserSig is retried
// once with a new one, and a configuration or dead-letter code stops with
// an error wrapping ErrRoam that says what to fix.
func Conversation(ctx context.Context, cfg ConversationConfig, fn func(Row) error) (ConversationResult, error) {
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultRoamPage
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultRoamAttempts
	}
	if cfg.SlowDown <= 0 {
		cfg.SlowDown = DefaultRoamSlowDown
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Until.IsZero() {
		cfg.Until = time.Now()
	}
	var res ConversationResult
	if cfg.API == nil || cfg.Limiter == nil || cfg.A == "" || cfg.B == "" {
		return res, errors.New("campaign: ConversationConfig.API, Limiter, A and B are required")
	}
	req := tim.RoamRequest{Operator: cfg.A, Peer: cfg.B, MaxCnt: cfg.PageSize, MinTime: cfg.Since.Unix(), MaxTime: cfg.Until.Unix()}
	for {
		page, err := roamPage(ctx, cfg, req)
		if err != nil {
			return res, err
		}
		res.Pages++
		for _, m := range page.MsgList {
			if m.Recalled() {
				res.AlreadyRecalled++
				continue
			}
			res.Found++
			if err := fn(Row{From: m.From, To: m.To, MsgKey: m.MsgKey}); err != nil {
				return res, err
			}
		}
		if page.Complete == 1 {
			return res, nil
		}
		if page.LastMsgKey == "" || page.LastMsgKey == req.LastMsgKey {
			return res, fmt.Errorf("%w: page %d of %s and %s says there is more but gives no new LastMsgKey; the history cannot be paged further",
				ErrRoam, res.Pages, cfg.A, cfg.B)
		}
		req.MaxTime, req.LastMsgKey = page.LastMsgTime, page.LastMsgKey
	}
}

// roamPage reads one page, retrying as the outcome table says.
func roamPage(ctx context.Context, cfg ConversationConfig, req tim.RoamRequest) (tim.RoamPage, error) {
	backoff := cfg.Backoff
	sigRetried := false
	slowed := 0
	var last string
	var connCuts limiter.ConnCuts
	for attempt := 1; attempt <= cfg.Attempts; {
		p, err := cfg.Limiter.Wait(ctx, limiter.Bulk)
		if err != nil {
			return tim.RoamPage{}, fmt.Errorf("admin_getroammsg: wait for the limiter: %w", err)
		}
		call, late := connCuts.Go(ctx, p, time.Now)
		if late != nil {
			continue // woken past the lateness cutoff: the slot is lost, ask again
		}
		page, err := cfg.API.GetRoamMsg(call.Context(), req)
		sent, answered, endErr := call.End()
		connCuts.Ended(endErr)
		switch {
		case errors.Is(endErr, limiter.ErrLate):
			continue // no connection by the cutoff: nothing was sent, ask again
		case endErr != nil:
			err = endErr // the connection failed: that is the call's error
		default:
			cfg.Limiter.Observe(sent, answered)
		}
		if err != nil {
			if ctx.Err() != nil {
				return tim.RoamPage{}, ctx.Err()
			}
			last = err.Error()
		} else {
			o := worker.Classify(page.ErrorCode)
			switch o.Class {
			case worker.Done:
				return page, nil
			case worker.RateLimited:
				if slowed++; slowed > 10*cfg.Attempts {
					return tim.RoamPage{}, fmt.Errorf("%w: tencent %d: %s, %d times in a row", ErrRoam, page.ErrorCode, o.Meaning, slowed)
				}
				cfg.Logger.InfoContext(ctx, "campaign: admin_getroammsg is rate limited: slowing down", "code", page.ErrorCode)
				if err := cfg.Limiter.SlowDown(ctx, cfg.SlowDown); err != nil {
					return tim.RoamPage{}, fmt.Errorf("admin_getroammsg: slow down: %w", err)
				}
				continue // no attempt used
			case worker.SigStale:
				if !sigRetried {
					sigRetried = true
					continue // the client carries a new UserSig now
				}
				return tim.RoamPage{}, fmt.Errorf("%w: tencent %d: %s twice in a row: check TIM_SECRET_KEY, TIM_SDKAPPID and TIM_ADMIN", ErrRoam, page.ErrorCode, o.Meaning)
			case worker.Configuration:
				return tim.RoamPage{}, fmt.Errorf("%w: tencent %d: %s: %s", ErrRoam, page.ErrorCode, o.Meaning, o.Fix)
			case worker.DeadLetter:
				return tim.RoamPage{}, fmt.Errorf("%w: tencent %d: %s (%s and %s): check the two accounts", ErrRoam, page.ErrorCode, o.Meaning, req.Operator, req.Peer)
			}
			last = fmt.Sprintf("tencent %d: %s", page.ErrorCode, o.Meaning)
		}
		if attempt == cfg.Attempts {
			break
		}
		attempt++
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff *= 2
		select {
		case <-ctx.Done():
			return tim.RoamPage{}, ctx.Err()
		case <-time.After(wait):
		}
	}
	return tim.RoamPage{}, fmt.Errorf("%w: %d attempts, the last: %s", ErrRoam, cfg.Attempts, last)
}
