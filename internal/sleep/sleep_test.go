package sleep_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recallq/recallq/internal/sleep"
)

var errClosed = errors.New("closed")

func TestFor(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	closed := make(chan struct{})
	close(closed)
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		d      time.Duration
		closed chan struct{}
		want   error
	}{
		{"waits the duration", context.Background(), time.Millisecond, nil, nil},
		{"no wait for a zero duration", context.Background(), 0, nil, nil},
		{"no wait for a negative duration", context.Background(), -time.Second, nil, nil},
		{"an ended context ends the wait", cancelled, time.Hour, nil, context.Canceled},
		{"an ended context wins over a zero duration", cancelled, 0, nil, context.Canceled},
		{"a shutdown ends the wait", context.Background(), time.Hour, closed, errClosed},
		{"a shutdown wins over a zero duration", context.Background(), 0, closed, errClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.closed == nil {
				err = sleep.For(tc.ctx, tc.d)
			} else {
				err = sleep.ForOr(tc.ctx, tc.d, tc.closed, errClosed)
			}
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestForEndsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := sleep.For(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
