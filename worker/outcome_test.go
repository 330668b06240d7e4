package worker_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/recallq/recallq/worker"
)

// TestConsoleRows pins which configuration errors are the app's setting in
// the Chat console (Outcome.Console): every worker of the app meets them
// alike and no worker's settings cure them, so the circuit they open
// leaves the worker ready. Every other configuration error (a key, an
// admin, an endpoint, an egress IP of this worker's own) makes it unready.
func TestConsoleRows(t *testing.T) {
	for _, tt := range []struct {
		api  string
		rows []worker.Outcome
		want []int
	}{
		// 60016 app disabled, 60020 plan expired, 60028 trial volume spent.
		{"admin_msgwithdraw", worker.Outcomes(), []int{60016, 60020, 60028}},
		// The same, and 10026 command disabled, 10041 group recall disabled.
		{"group_msg_recall", worker.GroupOutcomes(), []int{10026, 10041, 60016, 60020, 60028}},
	} {
		t.Run(tt.api, func(t *testing.T) {
			got := map[int]bool{}
			for _, o := range tt.rows {
				if !o.Console {
					continue
				}
				got[o.Code] = true
				if o.Class != worker.Configuration {
					t.Errorf("%d is a console row of class %s, want %s", o.Code, o.Class, worker.Configuration)
				}
			}
			if codes := slices.Sorted(maps.Keys(got)); !slices.Equal(codes, tt.want) {
				t.Errorf("console rows %v, want %v", codes, tt.want)
			}
		})
	}
}
