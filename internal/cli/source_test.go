package cli

import (
	"strings"
	"testing"
)

// A bad value is blamed on where it came from: the flag when it was given
// (overriding the environment variable), else the variable.
func TestBadValueNamesItsSource(t *testing.T) {
	enqueueArgs := []string{"enqueue", "--from", "vinson", "--to", "dramon", "--msgkey", "31906_833502_1572869830"}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		want    string
		notWant string
	}{
		{name: "--sdkappid over TIM_SDKAPPID", env: map[string]string{"TIM_SDKAPPID": "1400000000"},
			args: []string{"--sdkappid", "12x"}, want: `--sdkappid "12x" is not a number`, notWant: "TIM_SDKAPPID"},
		{name: "TIM_SDKAPPID", env: map[string]string{"TIM_SDKAPPID": "12x"},
			want: `TIM_SDKAPPID "12x" is not a number`},
		{name: "--redis-url over REDIS_URL", env: map[string]string{"TIM_SDKAPPID": "1400000000", "REDIS_URL": "redis://127.0.0.1:1"},
			args: []string{"--redis-url", "bogus://x"}, want: "--redis-url: ", notWant: "REDIS_URL"},
		{name: "REDIS_URL", env: map[string]string{"TIM_SDKAPPID": "1400000000", "REDIS_URL": "bogus://x"},
			want: "REDIS_URL: "},
		{name: "--rate over RECALL_RATE", env: map[string]string{"TIM_SDKAPPID": "1400000000", "TIM_SECRET_KEY": "k", "RECALL_RATE": "100"},
			args: []string{"worker", "--rate", "500"}, want: "--rate must be a number above 0", notWant: "RECALL_RATE"},
		{name: "RECALL_RATE", env: map[string]string{"TIM_SDKAPPID": "1400000000", "TIM_SECRET_KEY": "k", "RECALL_RATE": "500"},
			args: []string{"worker"}, want: "RECALL_RATE must be a number above 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TIM_APPS_FILE", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append(enqueueArgs, tc.args...)
			if len(tc.args) > 0 && tc.args[0] == "worker" {
				args = tc.args
			}
			code, _, errOut := run(t, args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) || (tc.notWant != "" && strings.Contains(errOut, tc.notWant)) {
				t.Errorf("code %d, stderr %q; want %d naming %q (not %q)", code, errOut, exitUsage, tc.want, tc.notWant)
			}
		})
	}
}
