package worker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"
)

// What the handler returns for an answer carries its code both ways: to
// errors.As in process, and to StoredCode from the text asynq keeps.
func TestAnswerCodeSurvivesTheStoredText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		code int
	}{
		{"dead letter", fmt.Errorf("%w: %w", Classify(20022).answer(), asynq.SkipRetry), 20022},
		{"retries spent", fmt.Errorf("%w after %d attempts (%s): %w", Classify(91000).answer(), 11, "no retries left", asynq.SkipRetry), 91000},
		{"will retry", fmt.Errorf("%w (attempt %d failed; %s)", Classify(99999).answer(), 1, "retry 1 of 3 next"), 99999},
		{"rate limited", &retryLater{reason: Classify(60007).answer().Error(), err: Classify(60007).answer()}, 60007},
		{"no answer", fmt.Errorf("%w (attempt %d failed; %s): %w", Classify(NoAnswer).answer(), 1, "retry 1 of 10 next", errors.New("connection refused")), NoAnswer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ae *AnswerError
			if !errors.As(tt.err, &ae) || ae.Code != tt.code {
				t.Errorf("errors.As: %v, want code %d", ae, tt.code)
			}
			if got := StoredCode(tt.err.Error()); got != tt.code {
				t.Errorf("StoredCode(%q) = %d, want %d", tt.err.Error(), got, tt.code)
			}
		})
	}
	for _, text := range []string{"", "worker is stopping", "configuration error, tasks are kept and retried: tencent 90009: x", "tencent x: y"} {
		if got := StoredCode(text); got != NoAnswer {
			t.Errorf("StoredCode(%q) = %d, want NoAnswer", text, got)
		}
	}
}
